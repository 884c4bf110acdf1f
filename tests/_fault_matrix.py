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
(a bounded set) and ``benchmarks/bench_faults.py`` (a larger sweep).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REAL = Path(os.environ.get("PEAKNET_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))
CATEGORIES = ("ok", "clean", "skipped", "silent", "crashed")


@dataclass
class Case:
    id: str
    kind: str  # image | dir | geom | weights | cli
    base: str  # base file name in the base directory (or "" for cli)
    mutation: dict = field(default_factory=dict)
    expect_error: bool = False  # an "ok" outcome is "silent" (a bad value accepted)


# --- base inputs ------------------------------------------------------------------------------

def make_bases(folder: Path, real: bool = True) -> dict:
    """Write the base inputs into ``folder``; returns {name: kind}."""
    import h5py
    import numpy as np

    sys.path.insert(0, str(HERE))
    from _sources_files import write_cxi, write_eiger_pair, write_minicbf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    img = rng.poisson(20, (48, 64)).astype(np.int32)
    img[10:12, 20:22] = 900
    bases = {}
    stack = rng.poisson(20, (3, 48, 64)).astype(np.float32)
    write_cxi(folder / "plain.cxi", stack)
    bases["plain.cxi"] = "image"
    write_cxi(folder / "gzip.cxi", stack, compression={"compression": "gzip"})
    bases["gzip.cxi"] = "image"
    with h5py.File(folder / "cheetah.h5", "w") as f:
        f.create_dataset("/data/data", data=stack.astype(np.uint16))
    bases["cheetah.h5"] = "image"
    nx = folder / "nexus"
    nx.mkdir(exist_ok=True)
    master, _ = write_eiger_pair(nx, frames=(2,), shape=(40, 60))
    bases["nexus/" + master.name] = "image"
    write_minicbf(folder / "frame.cbf", img)
    write_minicbf(folder / "frame.cbf.gz", img, compress="gz")
    write_minicbf(folder / "frame.cbf.bz2", img, compress="bz2")
    for n in ("frame.cbf", "frame.cbf.gz", "frame.cbf.bz2"):
        bases[n] = "image"
    import fabio.tifimage

    fabio.tifimage.tifimage(data=img.astype(np.uint16), header={}).write(str(folder / "frame.tif"))
    bases["frame.tif"] = "image"
    (folder / "det.geom").write_text(
        "photon_energy = 9500\nclen = 0.1\nres = 13333.3\nadu_per_photon = 1\n\n"
        "p0/min_fs = 0\np0/max_fs = 63\np0/min_ss = 0\np0/max_ss = 23\np0/corner_x = -32\np0/corner_y = -24\n"
        "p0/fs = +1.0x\np0/ss = +1.0y\n\n"
        "p1/min_fs = 0\np1/max_fs = 63\np1/min_ss = 24\np1/max_ss = 47\np1/corner_x = -32\np1/corner_y = 2\n"
        "p1/fs = +1.0x\np1/ss = +1.0y\n")
    bases["det.geom"] = "geom"
    res = ROOT / "resources"
    shutil.copy(res / "peaknet.safetensors", folder / "w.safetensors")
    shutil.copy(res / "peaknet.json", folder / "w.json")
    bases["w.safetensors"] = "weights"
    bases["w.json"] = "sidecar"
    if real and REAL.is_dir():
        for rel in ("cspad_tile/cxitut13_r10_32_cspad2x1.h5", "agbh_pilatus100k/AgBehenate_228.hdf5",
                    "image_examples/dectris_eiger_master.h5", "cspad_tile/cspad2x1.geom"):
            p = REAL / rel
            if p.exists():
                name = "real_" + p.name
                shutil.copy(p, folder / name)
                bases[name] = "geom" if name.endswith(".geom") else "image"
    return bases


def _hdf5_data_ranges(path: Path) -> list:
    """(start, end) byte ranges of raw dataset storage in an HDF5 file (the rest is metadata)."""
    import h5py

    ranges = []
    try:
        with h5py.File(path, "r") as f:
            def visit(name, obj):
                if not isinstance(obj, h5py.Dataset):
                    return
                try:
                    if obj.chunks is None:
                        off = obj.id.get_offset()
                        if off is not None:
                            ranges.append((off, off + obj.id.get_storage_size()))
                    else:
                        for k in range(obj.id.get_num_chunks()):
                            ci = obj.id.get_chunk_info(k)
                            ranges.append((ci.byte_offset, ci.byte_offset + ci.size))
                except Exception:
                    pass
            f.visititems(visit)
    except Exception:
        pass
    return sorted(ranges)


def _offsets(size: int, n: int, rnd: random.Random) -> list:
    fixed = [0, 1, 8, 64, 256, 512, 1024, 2048, 4096]
    fr = [int(size * x) for x in (0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.97, 0.99)]
    rest = [rnd.randrange(0, max(1, size)) for _ in range(max(0, n - len(fixed) - len(fr)))]
    offs = sorted({o for o in fixed + fr + rest if 0 <= o < size})
    return offs[:n] if n < len(offs) else offs


def file_cases(folder: Path, bases: dict, per_file: int, seed: int = 0) -> list:
    """Truncations and byte flips of every base file (about ``per_file`` of each kind and file)."""
    rnd = random.Random(seed)
    cases = []
    for name, kind in bases.items():
        size = (folder / name).stat().st_size
        for off in _offsets(size, per_file, rnd):
            cases.append(Case(f"{name}:trunc@{off}", kind if kind != "sidecar" else "weights", name, {"truncate": off}))
        if name.endswith((".h5", ".cxi", ".hdf5")):
            data = _hdf5_data_ranges(folder / name)
            meta_offs, data_offs = [], []
            for _ in range(per_file * 4):
                o = rnd.randrange(0, size)
                (data_offs if any(a <= o < b for a, b in data) else meta_offs).append(o)
            flips = [("meta", o) for o in meta_offs[:per_file]] + [("data", o) for o in data_offs[: max(2, per_file // 3)]]
        else:
            head = min(size, 1024 if kind != "geom" else size)
            flips = [("head", rnd.randrange(0, head)) for _ in range(per_file)]
            flips += [("data", rnd.randrange(0, size)) for _ in range(max(2, per_file // 3))]
        for where, off in flips:
            cases.append(Case(f"{name}:flip-{where}@{off}", kind if kind != "sidecar" else "weights", name,
                              {"flip": off, "xor": rnd.choice([0xFF, 0x01, 0x80, 0x5A])}))
    return cases


def special_cases() -> list:
    """Wrong types and shapes, bad values, bad options, bad files among good ones."""
    c = []
    for shape_kind in ("string", "1d", "4d", "complex", "compound", "empty", "huge", "scalar", "bool", "missing_link",
                       "corrupt_gzip", "nan"):
        c.append(Case(f"h5:{shape_kind}", "image", "", {"h5": shape_kind}))
    for g in ("no_clen", "clen_neg", "clen_zero", "overlap", "res_neg", "nan_corner", "empty", "binary", "huge_panel",
              "dup_panel"):
        c.append(Case(f"geom:{g}", "geom", "det.geom", {"geom": g}))
    for w in ("nan", "shape", "sidecar_list", "sidecar_badcfg", "sidecar_sha", "empty", "zero_header"):
        c.append(Case(f"weights:{w}", "weights", "w.safetensors", {"weights": w}))
    for d in ("trunc_cbf", "trunc_cbf_young", "corrupt_h5", "corrupt_h5_young", "trunc_bz2", "empty_h5"):
        c.append(Case(f"dir:{d}", "dir", "", {"dir": d}))
    for name, argv in CLI_CASES.items():
        c.append(Case(f"cli:{name}", "cli", "", {"argv": argv}, expect_error=True))
    return c


# {name: argv}; "{cxi}", "{cbf}", "{geom}", "{out}", "{w}" are filled in by the worker
CLI_CASES = {
    "calibrate_energy_inf": ["calibrate", "{cbf}", "--energy", "inf", "--out", "{out}"],
    "calibrate_energy_neg": ["calibrate", "{cbf}", "--energy", "-12", "--out", "{out}"],
    "calibrate_distance_zero": ["calibrate", "{cbf}", "--energy", "12", "--distance", "0", "--out", "{out}"],
    "calibrate_wavelength_nan": ["calibrate", "{cbf}", "--wavelength", "nan", "--out", "{out}"],
    "find_limit_neg": ["find", "{cxi}", "--algorithm", "peakfinder8", "--limit", "-1", "--out", "{out}", "--no-progress"],
    "find_dilation_neg": ["find", "{cxi}", "--algorithm", "peakfinder8", "--dilation", "-3", "--out", "{out}", "--no-progress"],
    "find_res_order": ["find", "{cxi}", "--algorithm", "peakfinder8", "--min-res", "5", "--max-res", "2", "--out", "{out}",
                       "--no-progress"],
    "find_formats_empty": ["find", "{cxi}", "--algorithm", "peakfinder8", "--formats", "", "--out", "{out}", "--no-progress"],
    "find_min_peaks_neg": ["find", "{cxi}", "--algorithm", "peakfinder8", "--min-peaks", "-2", "--out", "{out}", "--no-progress"],
    "find_res_neg": ["find", "{cxi}", "--algorithm", "peakfinder8", "--min-res", "-1", "--out", "{out}", "--no-progress"],
    "find_weights_shape": ["find", "{cxi}", "--weights", "{w_shape}", "--out", "{out}", "--no-progress"],
    "find_weights_nan": ["find", "{cxi}", "--weights", "{w_nan}", "--out", "{out}", "--no-progress"],
    "find_geom_clen_neg": ["find", "{cxi}", "--algorithm", "peakfinder8", "--geom", "{geom_neg}", "--out", "{out}",
                           "--no-progress"],
    "simulate_frames_neg": ["simulate", "--frames", "-3", "--out", "{out}/sim.cxi"],
    "simulate_energy_inf": ["simulate", "--frames", "1", "--energy", "inf", "--out", "{out}/sim.cxi"],
    "evaluate_truncated": ["evaluate", "--data", "{trunc_cxi}"],
}


def all_cases(folder: Path, bases: dict, per_file: int, seed: int = 0) -> list:
    return file_cases(folder, bases, per_file, seed) + special_cases()


# --- the worker: runs cases, one JSON line per case ------------------------------------------------

def _materialise(case: Case, bases_dir: Path, work: Path) -> Path:
    """The mutated input of a file case, written into ``work``."""
    src = bases_dir / case.base
    m = case.mutation
    dst = work / Path(case.base).name
    if case.base.startswith("nexus/"):
        dst = work / "nexus" / Path(case.base).name
        shutil.copytree(bases_dir / "nexus", work / "nexus")
    elif case.base in ("w.safetensors", "w.json"):
        shutil.copy(bases_dir / "w.safetensors", work / "w.safetensors")
        shutil.copy(bases_dir / "w.json", work / "w.json")
    else:
        shutil.copy(src, dst)
    if "truncate" in m:
        with open(dst, "r+b") as fh:
            fh.truncate(m["truncate"])
    if "flip" in m:
        with open(dst, "r+b") as fh:
            fh.seek(m["flip"])
            b = fh.read(1)
            if b:
                fh.seek(m["flip"])
                fh.write(bytes([b[0] ^ m["xor"]]))
    if case.base == "w.json":
        return work / "w.safetensors"
    return dst


def _special_h5(kind: str, work: Path) -> Path:
    import h5py
    import numpy as np

    p = work / f"{kind}.h5"
    with h5py.File(p, "w") as f:
        path = "/entry_1/data_1/data"
        if kind == "string":
            f[path] = np.array([b"abc", b"def"])
        elif kind == "1d":
            f[path] = np.arange(100, dtype=np.float32)
        elif kind == "4d":
            f[path] = np.ones((2, 2, 16, 16), np.float32)
        elif kind == "complex":
            f[path] = np.ones((2, 16, 16), np.complex64)
        elif kind == "compound":
            f[path] = np.zeros((2, 16, 16), dtype=[("a", "i4"), ("b", "f4")])
        elif kind == "empty":
            f.create_dataset(path, shape=(0, 16, 16), maxshape=(None, 16, 16), dtype=np.float32)
        elif kind == "huge":
            f.create_dataset(path, shape=(1, 100000, 100000), dtype=np.float32, chunks=(1, 1000, 1000))
        elif kind == "scalar":
            f[path] = 3.0
        elif kind == "bool":
            f[path] = np.ones((2, 16, 16), bool)
        elif kind == "missing_link":
            f[path] = h5py.ExternalLink("does_not_exist.h5", "/data")
        elif kind == "corrupt_gzip":
            f.create_dataset(path, data=np.arange(2 * 32 * 32, dtype=np.float32).reshape(2, 32, 32),
                             chunks=(1, 32, 32), compression="gzip")
        elif kind == "nan":
            f[path] = np.full((2, 16, 16), np.nan, np.float32)
    if kind == "corrupt_gzip":
        with h5py.File(p, "r") as f:
            ci = f[path].id.get_chunk_info(1)
        with open(p, "r+b") as fh:
            fh.seek(ci.byte_offset + ci.size // 2)
            fh.write(b"\xde\xad\xbe\xef" * 4)
    return p


def _special_geom(kind: str, bases_dir: Path, work: Path) -> Path:
    text = (bases_dir / "det.geom").read_text()
    p = work / "g.geom"
    if kind == "no_clen":
        text = text.replace("clen = 0.1\n", "")
    elif kind == "clen_neg":
        text = text.replace("clen = 0.1", "clen = -5")
    elif kind == "clen_zero":
        text = text.replace("clen = 0.1", "clen = 0")
    elif kind == "overlap":
        text = text.replace("p1/corner_y = 2", "p1/corner_y = -20")
    elif kind == "res_neg":
        text = text.replace("res = 13333.3", "res = -13333.3")
    elif kind == "nan_corner":
        text = text.replace("p0/corner_x = -32", "p0/corner_x = nan")
    elif kind == "empty":
        text = ""
    elif kind == "binary":
        p.write_bytes(bytes(range(256)) * 4)
        return p
    elif kind == "huge_panel":
        text = text.replace("p1/max_fs = 63", "p1/max_fs = 99999999999")
    elif kind == "dup_panel":
        text = text + "\np0/min_fs = 0\n"
    p.write_text(text)
    return p


def _special_weights(kind: str, bases_dir: Path, work: Path) -> Path:
    p = work / "w.safetensors"
    shutil.copy(bases_dir / "w.safetensors", p)
    shutil.copy(bases_dir / "w.json", work / "w.json")
    if kind in ("nan", "shape"):
        return _derived_weights(kind, bases_dir, work)
    side = json.loads((work / "w.json").read_text())
    if kind == "sidecar_list":
        (work / "w.json").write_text("[1, 2, 3]")
    elif kind == "sidecar_badcfg":
        side["config"] = {"base_channels": "many"}
        (work / "w.json").write_text(json.dumps(side))
    elif kind == "sidecar_sha":
        side["sha256"] = 12345
        (work / "w.json").write_text(json.dumps(side))
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "zero_header":
        with open(p, "r+b") as fh:
            fh.write(b"\xff" * 8)
    return p


def _derived_weights(kind: str, bases_dir: Path, work: Path) -> Path:
    """All-NaN weights without a sidecar, or weights of another shape under the shipped config."""
    import torch
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    src = bases_dir / "w.safetensors"
    with safe_open(str(src), "pt") as fh:
        meta = fh.metadata() or {}
    state = load_file(str(src))
    out = work / f"w_{kind}.safetensors"
    if kind == "nan":
        state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}
    else:
        k0 = sorted(k for k, v in state.items() if v.ndim == 4)[0]
        v = state[k0]
        state[k0] = torch.zeros((v.shape[0] + 3,) + tuple(v.shape[1:]), dtype=v.dtype)
    save_file(state, str(out), metadata=meta)
    return out


def _special_dir(kind: str, bases_dir: Path, work: Path) -> tuple:
    """A directory of good frames plus one bad one; returns (dir, bad file name)."""
    d = work / "frames"
    d.mkdir()
    h5 = kind in ("corrupt_h5", "corrupt_h5_young", "empty_h5")
    good = "plain.cxi" if h5 else "frame.cbf"
    for k in range(2):
        shutil.copy(bases_dir / good, d / f"f_{k}{Path(good).suffix}")
    if kind.startswith("trunc_cbf"):
        bad = d / "f_9.cbf"
        data = (bases_dir / "frame.cbf").read_bytes()
        bad.write_bytes(data[: data.index(b"\x0c\x1a\x04\xd5") + 200])  # cut inside the binary section
    elif kind == "trunc_bz2":
        bad = d / "f_9.cbf.bz2"
        data = (bases_dir / "frame.cbf.bz2").read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "empty_h5":
        bad = d / "f_9.cxi"
        bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    else:
        bad = d / "f_9.cxi"
        data = (bases_dir / "plain.cxi").read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    if not kind.endswith("_young"):
        old = time.time() - 3600
        for f in d.iterdir():
            os.utime(f, (old, old))
    return d, bad.name


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
