"""Reliability (issue 15): the fault matrix, full disks, signals, concurrent runs, transactions.

The matrix (``_fault_matrix.py``) corrupts every input kind systematically and runs each case
in a worker subprocess; here a bounded set (a few hundred cases, well under a minute) must end
in a clean one-line error, a listed skip or a still-usable input -- never a traceback, a hang, a
dead process or a bad value accepted.  ``benchmarks/bench_faults.py`` runs a larger sweep.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import _fault_matrix as fm
from _sources_files import write_cxi

from peaknet_gui.cli.main import main
from peaknet_gui.errors import ExportError
from peaknet_gui.export import transaction as tx
from peaknet_gui.export.transaction import OutputTransaction, clean_stale, sha256_of

PY = sys.executable


# --- the matrix ---------------------------------------------------------------------------------

def test_fault_matrix(tmp_path):
    bases_dir = tmp_path / "bases"
    bases = fm.make_bases(bases_dir)
    cases = fm.all_cases(bases_dir, bases, per_file=6, seed=15)
    assert 200 <= len(cases) <= 600
    outcomes = fm.run_matrix(cases, bases_dir, timeout_s=60)
    counts = fm.counts(outcomes)
    print("fault matrix:", counts)
    bad = [f"[{o.category}] {o.case.id}: {o.detail}" for o in outcomes if o.category in ("crashed", "silent")]
    assert not bad, "\n".join(bad)
    assert counts["tried"] == len(cases) and counts["skipped"] >= 6 and counts["clean"] > 100


# --- helpers ------------------------------------------------------------------------------------

def small_run(path: Path, n: int = 6, shape=(48, 64), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    data = rng.poisson(10, (n,) + shape).astype(np.float32)
    for k in range(n):  # a few bright spots: every frame a hit for --min-peaks 1
        for _ in range(4):
            y, x = rng.integers(5, shape[0] - 5), rng.integers(5, shape[1] - 5)
            data[k, y - 1:y + 2, x - 1:x + 2] += 800
    return write_cxi(path, data, labels=False)


def find_argv(run: Path, out: Path, *extra) -> list:
    return ["find", str(run), "--algorithm", "peakfinder8", "--min-peaks", "1", "--out", str(out), "--no-progress",
            *extra]


def set_is_valid(out: Path) -> dict:
    """The set's manifest matches the files (size and sha256, nothing more, nothing less)."""
    doc = json.loads((out / "summary.json").read_text())
    names = {e["name"] for e in doc["manifest"]}
    on_disk = {p.name for p in out.iterdir() if p.name != "summary.json"}
    assert names == on_disk, (names, on_disk)
    for e in doc["manifest"]:
        p = out / e["name"]
        assert p.stat().st_size == e["size"] and sha256_of(p) == e["sha256"], e["name"]
    return doc


def leftovers(out: Path) -> list:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")
                  and not p.name.endswith(".lock"))


# --- transactions -------------------------------------------------------------------------------

def test_find_writes_a_set_with_a_manifest(tmp_path, capsys):
    run = small_run(tmp_path / "run.cxi")
    out = tmp_path / "out"
    assert main(find_argv(run, out)) == 0
    doc = set_is_valid(out)
    assert doc["status"] == "complete" and doc["complete"] and doc["skipped"] == []
    assert {"peaks.stream", "hits.cxi", "hits.lst", "mask.h5"} <= {e["name"] for e in doc["manifest"]}
    assert leftovers(out) == [] and not (tmp_path / ".out.lock").exists()


def test_a_second_run_into_the_same_output_is_refused(tmp_path, capsys):
    from peaknet_gui.export.lock import OutputLock

    run = small_run(tmp_path / "run.cxi")
    out = tmp_path / "out"
    with OutputLock(out):
        assert main(find_argv(run, out)) == 2
    err = capsys.readouterr().err
    assert "another run is writing this output" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_concurrent_runs_never_mix_sets(tmp_path):
    run_a = small_run(tmp_path / "a.cxi", n=40, seed=1)
    run_b = small_run(tmp_path / "b.cxi", n=40, seed=2)
    out = tmp_path / "out"
    for _ in range(3):
        procs = [subprocess.Popen([PY, "-m", "peaknet_gui.cli.main", *find_argv(r, out)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for r in (run_a, run_b)]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
        for rc, err in results:
            assert rc in (0, 2) and "Traceback" not in err
            if rc == 2:
                assert "another run is writing this output" in err
        doc = set_is_valid(out)
        sources = {f["file"] for f in doc["frames"]}
        assert len(sources) == 1  # every file of the set from one run
        stream = (out / "peaks.stream").read_text()
        assert ("a.cxi" in stream) != ("b.cxi" in stream) and next(iter(sources)) in stream
        assert leftovers(out) == []


def test_in_place_commit_keeps_foreign_files(tmp_path, capsys):
    run = small_run(tmp_path / "run.cxi")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    assert main(find_argv(run, out)) == 0
    assert main(find_argv(run, out, "--formats", "stream")) == 0
    assert (out / "notes.txt").read_text() == "my notes"
    doc = json.loads((out / "summary.json").read_text())
    assert [e["name"] for e in doc["manifest"]] == ["peaks.stream"]
    assert not (out / "hits.cxi").exists()  # the previous set's files went with it


def test_stale_staging_is_removed_and_an_interrupted_swap_restored(tmp_path):
    out = tmp_path / "out"
    (tmp_path / ".out.staging-1-x").mkdir()
    (tmp_path / ".out.staging-1-x" / "peaks.stream").write_text("half")
    (tmp_path / ".out.old-7").mkdir()
    (tmp_path / ".out.old-7" / "summary.json").write_text("{}")
    removed = clean_stale(out)
    assert out.is_dir() and (out / "summary.json").exists()  # the old set back in place
    assert [p.name for p in removed] == [".out.staging-1-x"] and leftovers(out) == []


def test_transaction_abort_keeps_the_previous_set(tmp_path):
    out = tmp_path / "out"
    with OutputTransaction(out, {"a.txt"}) as stage:
        (stage / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with OutputTransaction(out, {"a.txt"}) as stage:
            (stage / "a.txt").write_text("new")
            raise RuntimeError("boom")
    assert (out / "a.txt").read_text() == "old" and leftovers(out) == []


# --- full disk and I/O errors -------------------------------------------------------------------

def test_full_disk_keeps_the_previous_set(tmp_path, monkeypatch, capsys):
    run = small_run(tmp_path / "run.cxi", n=12)
    out = tmp_path / "out"
    assert main(find_argv(run, out, "--limit", "1")) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = {"n": 0}
    real = tx.free_bytes

    def filling(path):  # the disk fills up after a few frames
        calls["n"] += 1
        return real(path) if calls["n"] < 6 else 4096

    monkeypatch.setattr(tx, "free_bytes", filling)
    capsys.readouterr()
    assert main(find_argv(run, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left on the device" in err[0] and "bytes needed" in err[0]
    assert str(out) in err[0] and "previous output is left as it was" in err[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert leftovers(out) == []


def test_io_error_is_one_line(tmp_path, monkeypatch, capsys):
    from peaknet_gui.export import textfile

    run = small_run(tmp_path / "run.cxi")
    out = tmp_path / "out"

    class FailingDevice:  # every write fails as on a disk with a hardware fault
        def write(self, text):
            raise OSError(errno.EIO, "Input/output error")

        def flush(self):
            pass

        def close(self):
            pass

    real_write = textfile.IncrementalText.write

    def eio(self, text):
        self.fh = FailingDevice()
        return real_write(self, text)

    monkeypatch.setattr(textfile.IncrementalText, "write", eio)
    assert main(find_argv(run, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "input/output error" in err[0] and "hits.lst" in err[0]
    assert not out.exists() and leftovers(out) == []


def _tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


@pytest.mark.slow
def test_full_tmpfs_no_crash(tmp_path):
    """A real full disk (400 KiB tmpfs): the issue's reproduction -- a segfault before."""
    mnt = tmp_path / "small"
    if not _tmpfs(mnt, "400k"):
        pytest.skip("cannot mount a tmpfs here (not root or no permission): the injected-ENOSPC tests cover it")
    try:
        run = small_run(tmp_path / "run.cxi", n=12, shape=(256, 256))
        out = mnt / "o"
        cmd = [PY, "-m", "peaknet_gui.cli.main", *find_argv(run, out)]
        first = subprocess.run(cmd + ["--limit", "1"], capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        second = subprocess.run(cmd, capture_output=True, text=True)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "no space left" in lines[0] and "Traceback" not in second.stderr
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        assert sorted(p.name for p in mnt.iterdir()) == ["o"]
        sim = subprocess.run([PY, "-m", "peaknet_gui.cli.main", "simulate", "--frames", "40", "--out",
                              str(mnt / "sim.cxi"), "--detector", "pilatus-6m", "--crop", "256x256", "--no-progress"],
                             capture_output=True, text=True)
        assert sim.returncode == 2 and "no space left" in sim.stderr and "Traceback" not in sim.stderr
        assert sorted(p.name for p in mnt.iterdir()) == ["o"]
        free = tx.free_bytes(mnt)
        (mnt / "filler").write_bytes(b"\0" * max(0, free - 30000))  # leave 30 kB: less than calibrate's set needs
        cal = subprocess.run([PY, "-m", "peaknet_gui.cli.main", "calibrate", str(_agbh(tmp_path)), "--calibrant", "AgBh",
                              "--distance", "420", "--beam-center", "10", "80", "--pixel-size", "0.172",
                              "--out", str(mnt / "cal")], capture_output=True, text=True)
        assert cal.returncode == 2 and "no space left" in cal.stderr and "Traceback" not in cal.stderr, cal.stderr
        assert sorted(p.name for p in mnt.iterdir()) == ["filler", "o"]
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def _agbh(tmp_path: Path) -> Path:
    import h5py

    from peaknet_gui.geometry.detector import Geometry
    from peaknet_gui.sim.powder import simulate_calibrant_frame

    frame = simulate_calibrant_frame(Geometry.single_panel((195, 487), 172e-6, 0.45, -8.3, 97.4), "AgBh", 0.8, seed=9,
                                     peak_photons=500)
    path = tmp_path / "agbh.h5"
    with h5py.File(path, "w") as f:
        f["entry/data/data"] = np.where(frame.bad, -1, frame.data).astype(np.int32)
        f["entry/instrument/monochromator/wavelength"] = [0.8]
    return path


# --- signals ------------------------------------------------------------------------------------

def _start_find(run: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([PY, "-m", "peaknet_gui.cli.main", *find_argv(run, out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_started(out: Path, proc, timeout=60.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        if list(out.parent.glob(f".{out.name}.staging-*/peaks.stream")) or list(
                out.parent.glob(f".{out.name}.staging-*/.peaks.stream.*.tmp")):
            return
        time.sleep(0.02)


@pytest.mark.slow
def test_sigterm_keeps_the_frames_done(tmp_path):
    run = small_run(tmp_path / "run.cxi", n=3000, shape=(32, 32))
    out = tmp_path / "out"
    rnd = random.Random(4)
    for _ in range(3):  # random moments: while the first hit's file is created, mid-run, near the end
        proc = _start_find(run, out)
        _wait_started(out, proc)
        time.sleep(rnd.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            continue  # finished before the signal: nothing to check
        assert proc.returncode == 143, err
        assert "Traceback" not in err
        doc = set_is_valid(out)
        assert doc["status"] == "interrupted" and 0 < doc["totals"]["frames"] < 3000
        assert leftovers(out) == []


@pytest.mark.slow
def test_sigkill_leaves_the_previous_set_and_the_next_run_cleans_up(tmp_path):
    run = small_run(tmp_path / "run.cxi", n=3000, shape=(32, 32))
    small = small_run(tmp_path / "small.cxi", n=3)
    out = tmp_path / "out"
    assert main(find_argv(small, out)) == 0
    rnd = random.Random(9)
    for _ in range(2):
        before = set_is_valid(out)
        proc = _start_find(run, out)
        _wait_started(out, proc)
        time.sleep(rnd.uniform(0.0, 0.5))
        proc.kill()
        proc.communicate(timeout=60)
        after = set_is_valid(out)  # the old set or (had it finished) the new one, complete either way
        assert after["totals"]["frames"] in (before["totals"]["frames"], 3000)
    assert main(find_argv(small, out)) == 0
    assert leftovers(out) == []


# --- skipped inputs -----------------------------------------------------------------------------

def test_a_bad_file_among_good_ones_is_listed_and_the_exit_status_says_so(tmp_path, capsys, caplog):
    d = tmp_path / "frames"
    d.mkdir()
    for k in range(2):
        small_run(d / f"f_{k}.cxi", n=2, seed=k)
    data = (d / "f_0.cxi").read_bytes()
    (d / "f_9.cxi").write_bytes(data[: len(data) // 3])
    for young in (False, True):  # the same whatever the file's age
        t = time.time() - (0 if young else 3600)
        for f in d.iterdir():
            os.utime(f, (t, t))
        out = tmp_path / f"out_{young}"
        assert main(find_argv(d, out)) == 3
        assert "skipped" in capsys.readouterr().err
        assert "f_9.cxi" in caplog.text and "corrupt or truncated" in caplog.text
        caplog.clear()
        doc = set_is_valid(out)
        assert [Path(s["input"]).name for s in doc["skipped"]] == ["f_9.cxi"]
        assert doc["totals"]["frames"] == 4 and doc["status"] == "complete"


# --- the GUI's exports and training use the same mechanism ------------------------------------------

def test_gui_frame_mask_export_is_one_transaction(tmp_path):
    from peaknet_gui.export.lock import OutputLock
    from peaknet_gui.gui.exports import write_frame_mask
    from peaknet_gui.sources import open_run

    run = small_run(tmp_path / "run.cxi", n=1)
    with open_run(str(run)) as src:
        frame = src[0]
    out = tmp_path / "masks" / "m.h5"
    mask, geom = write_frame_mask(out, frame, None)
    assert mask.exists() and geom.exists() and str(mask) in geom.read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.geom", "m.h5"]
    with OutputLock(out):
        with pytest.raises(ExportError, match="another run is writing"):
            write_frame_mask(out, frame, None)


def test_gui_export_into_a_locked_directory_is_refused(tmp_path):
    from peaknet_gui.export.lock import OutputLock
    from peaknet_gui.export.session import ExportSession

    with OutputLock(tmp_path / "out"):
        with pytest.raises(ExportError, match="another run is writing this output"):
            ExportSession(tmp_path / "out")
    assert leftovers(tmp_path / "out") == []


def test_training_into_a_locked_directory_is_refused(tmp_path, capsys):
    from peaknet_gui.export.lock import OutputLock

    out = tmp_path / "train"
    with OutputLock(out):
        rc = main(["train", "--data", str(small_run(tmp_path / "r.cxi", n=2)), "--out", str(out), "--steps", "1",
                   "--device", "cpu", "--no-progress"])
    assert rc == 2 and "another run is writing this output" in capsys.readouterr().err
