"""Fault matrix: corrupt inputs systematically and check that every case ends cleanly.

A *case* is a base input (an HDF5/CXI run, a NeXus master + data file, a CBF plain/.gz/.bz2,
a TIFF, a ``.geom``, a weights file and its sidecar, a directory of frames, a command line)
plus one mutation (truncation at an offset, a byte flipped in the header/metadata/data, a
wrong type or shape, a bad option value).  Each case runs the public entry point that a user
would reach (``open_run`` + reading every frame, ``read_geom``, ``load_weights``,
``peaknet ...``) and is classified:

    ok       the input still works (a flipped pixel byte is still an image)
    clean    a PeakNetError / ``peaknet: error:`` of at most two lines naming the problem
    skipped  a bad file among good ones was listed in summary.json ``skipped`` (and warned)
    silent   a bad input accepted without a word (bad option values, a file dropped silently)
    crashed  a traceback (any other exception), a dead process (segfault, abort) or a hang

Cases run in a worker subprocess, one after another; a worker that dies or hangs marks its
case ``crashed`` and a new worker goes on with the next case.  Used by ``tests/test_faults.py``
(a bounded set) and ``benchmarks/bench_faults.py`` (a larger sweep); the cases come from
:mod:`_fault_cases`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from _fault_cases import (  # noqa: F401 -- re-exported for the test and the benchmark
    CLI_CASES, HERE, REAL, ROOT, Case, _materialise, _special_dir, _special_geom, _special_h5, _special_weights,
    _derived_weights, all_cases, file_cases, make_bases, special_cases,
)

CATEGORIES = ("ok", "clean", "skipped", "silent", "crashed")


def _cli(argv: list) -> tuple:
    """(exit status, stderr text) of ``peaknet ARGV`` run in this process."""
    from peaknet_gui.cli.main import main

    err, out = io.StringIO(), io.StringIO()
    import logging

    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                rc = main(argv)
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else 2
    finally:
        root.removeHandler(handler)
    return rc, err.getvalue()


def _error_lines(text: str) -> list:
    """The lines of an error report (log warnings and progress lines left out)."""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(("WARNING", "INFO", "DEBUG"))
            and "it/s" not in ln and "frame/s" not in ln]


# a clean error must also say the right thing: case id -> words one of which the message holds
DIAGNOSIS = {
    "h5:corrupt_gzip": ("corrupt",),
    "cli:evaluate_truncated": ("truncated", "corrupt"),
    "h5:huge": ("too large", "too big", "memory"),
}


def _one_line(msg: str) -> bool:
    return len(msg.splitlines()) <= 2 and len(msg) < 600 and "Traceback" not in msg


def _read_all(path, **kw) -> None:
    from peaknet_gui.sources import open_run

    src = open_run(str(path), **kw)
    try:
        for i in range(min(len(src), 4)):
            src[i]
            src.metadata(i)
        src.geometry()
    finally:
        src.close()


def run_case(case: Case, bases_dir: Path, work: Path) -> tuple:
    """(category, detail) of one case, in this process."""
    from peaknet_gui.errors import PeakNetError

    m = case.mutation
    try:
        if case.kind == "cli":
            return _run_cli_case(case, bases_dir, work)
        if case.kind == "dir":
            return _run_dir_case(case, bases_dir, work)
        if case.kind == "image":
            path = _special_h5(m["h5"], work) if "h5" in m else _materialise(case, bases_dir, work)
            _read_all(path)
        elif case.kind == "geom":
            from peaknet_gui.geometry.crystfel_geom import read_geom

            path = _special_geom(m["geom"], bases_dir, work) if "geom" in m else _materialise(case, bases_dir, work)
            g = read_geom(path)
            if "geom" in m and m["geom"] in ("clen_neg", "clen_zero", "overlap", "res_neg", "nan_corner", "huge_panel"):
                return "silent", f"accepted a geometry with {m['geom']}"
            del g
        elif case.kind == "weights":
            from peaknet_gui.model.weights import load_weights

            path = _special_weights(m["weights"], bases_dir, work) if "weights" in m else _materialise(case, bases_dir, work)
            load_weights(path)
            # sidecar_badcfg loads: the weights file's own metadata holds the configuration used
            if m.get("weights") in ("nan", "shape", "sidecar_list", "sidecar_sha", "empty", "zero_header"):
                return "silent", f"accepted weights with {m['weights']}"
        return "ok", ""
    except PeakNetError as e:
        msg = str(e)
        if not _one_line(msg):
            return "crashed", "error message too long: " + msg[:300]
        return _diagnosed(case, msg)
    except BaseException as e:  # noqa: BLE001 -- the point is to see every escape
        if isinstance(e, KeyboardInterrupt):
            raise
        return "crashed", "".join(traceback.format_exception_only(type(e), e)).strip()[:300]


def _diagnosed(case: Case, msg: str) -> tuple:
    words = DIAGNOSIS.get(case.id)
    if words and not any(w in msg.lower() for w in words):
        return "silent", "wrong diagnosis: " + msg[:300]
    return "clean", msg


def _run_cli_case(case: Case, bases_dir: Path, work: Path) -> tuple:
    out = work / "out"
    fill = {"cxi": str(bases_dir / "plain.cxi"), "cbf": str(bases_dir / "frame.cbf"), "out": str(out)}
    argv = case.mutation["argv"]
    if any("{w_shape}" in a for a in argv):
        fill["w_shape"] = str(_derived_weights("shape", bases_dir, work))
    if any("{w_nan}" in a for a in argv):
        fill["w_nan"] = str(_derived_weights("nan", bases_dir, work))
    if any("{geom_neg}" in a for a in argv):
        g = _special_geom("clen_neg", bases_dir, work)
        fill["geom_neg"] = str(g)
    if any("{trunc_cxi}" in a for a in argv):
        data = (bases_dir / "plain.cxi").read_bytes()
        t = work / "trunc.cxi"
        t.write_bytes(data[: len(data) // 2])
        fill["trunc_cxi"] = str(t)
    argv = [a.format(**fill) for a in argv]
    rc, err = _cli(argv)
    if "Traceback" in err:
        return "crashed", err.strip().splitlines()[-1][:300]
    if rc == 0:
        return "silent", "accepted (exit 0): " + " ".join(argv[:1])
    lines = _error_lines(err)
    if rc == 2 and lines and len(lines) <= 2 and _one_line(lines[0]):
        return _diagnosed(case, lines[0][:300])
    return "crashed", f"exit {rc}, {len(lines)} lines: {err.strip()[-300:]}"


def _run_dir_case(case: Case, bases_dir: Path, work: Path) -> tuple:
    d, bad = _special_dir(case.mutation["dir"], bases_dir, work)
    out = work / "out"
    rc, err = _cli(["find", str(d), "--algorithm", "peakfinder8", "--out", str(out), "--no-progress"])
    if "Traceback" in err:
        return "crashed", err.strip().splitlines()[-1][:300]
    summary = out / "summary.json"
    listed = False
    if summary.exists():
        doc = json.loads(summary.read_text())
        listed = any(bad in str(s.get("input", "")) for s in doc.get("skipped", []) or [])
    warned = bad in err
    analysed = summary.exists() and any(bad in str(f.get("file", "")) for f in doc.get("frames", []))
    if rc == 0 and analysed:
        return "ok", f"{bad} still readable: analysed"
    if rc == 0 and not listed:
        return "silent", f"{bad} dropped without a word (exit 0)"
    if listed and warned and rc != 0:
        return "skipped", f"{bad} listed in summary.json, exit {rc}"
    if rc == 2 and err.strip():
        return "silent", f"the whole run stopped on {bad}: " + err.strip().splitlines()[-1][:200]
    return "silent", f"exit {rc}, listed {listed}, warned {warned}"


def worker(cases_file: str, bases_dir: str, start: int) -> None:
    import logging

    logging.disable(logging.CRITICAL)  # messages of skipped files are checked through the CLI's handler
    cases = [Case(**c) for c in json.loads(Path(cases_file).read_text())]
    bases = Path(bases_dir)
    for k in range(start, len(cases)):
        case = cases[k]
        print(json.dumps({"start": k}), flush=True)
        work = Path(tempfile.mkdtemp(prefix="fault_"))
        logging.disable(logging.NOTSET)
        try:
            cat, detail = run_case(case, bases, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps({"end": k, "category": cat, "detail": detail}), flush=True)


# --- the driver ----------------------------------------------------------------------------------

@dataclass
class Outcome:
    case: Case
    category: str
    detail: str


def run_matrix(cases: list, bases_dir: Path, timeout_s: float = 60.0, python: str = sys.executable,
               log=None) -> list:
    """Run ``cases`` in worker subprocesses; returns one :class:`Outcome` per case."""
    cases_file = Path(tempfile.mkstemp(prefix="fault_cases_", suffix=".json")[1])
    cases_file.write_text(json.dumps([c.__dict__ for c in cases]))
    outcomes: dict = {}
    k = 0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="")
    try:
        while k < len(cases):
            proc = subprocess.Popen(
                [python, "-c", "import sys, _fault_matrix as m; m.worker(sys.argv[1], sys.argv[2], int(sys.argv[3]))",
                 str(cases_file), str(bases_dir), str(k)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1)
            current = None
            deadline = time.monotonic() + timeout_s * 3  # the first case pays the imports
            buf = ""
            while True:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([proc.stdout], [], [], max(0.0, left))
                if not ready:
                    proc.kill()
                    proc.wait()
                    bad = current if current is not None else k
                    outcomes[bad] = Outcome(cases[bad], "crashed", f"hang (> {timeout_s:.0f} s)")
                    k = bad + 1
                    break
                line = proc.stdout.readline()
                if not line:
                    rc = proc.wait()
                    if current is not None:
                        outcomes[current] = Outcome(cases[current], "crashed", f"process died (exit {rc})")
                        k = current + 1
                    else:
                        k = len(cases)
                    break
                buf = line
                try:
                    msg = json.loads(buf)
                except ValueError:
                    continue
                if "start" in msg:
                    current = msg["start"]
                    if current > k:
                        deadline = time.monotonic() + timeout_s
                else:
                    outcomes[msg["end"]] = Outcome(cases[msg["end"]], msg["category"], msg["detail"])
                    if log is not None:
                        log(outcomes[msg["end"]])
                    current = None
                    k = msg["end"] + 1
                    deadline = time.monotonic() + timeout_s
            with contextlib.suppress(Exception):
                proc.kill()
    finally:
        cases_file.unlink(missing_ok=True)
    return [outcomes[i] for i in sorted(outcomes)]


def counts(outcomes: list) -> dict:
    c = {k: 0 for k in CATEGORIES}
    for o in outcomes:
        c[o.category] += 1
    c["tried"] = len(outcomes)
    return c
