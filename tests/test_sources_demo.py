"""The built-in demo run: generated once into the cache, atomically, and opened as a run."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from peaknet_gui.sources import demo


@pytest.fixture
def demo_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("PEAKNET_DEMO_DIR", str(d))
    return d


def test_demo_run_is_generated_once_and_cached(demo_dir):
    p = demo.demo_run_path(frames=2, seed=5)
    assert p.is_file() and demo_dir in p.parents
    mtime = p.stat().st_mtime_ns
    assert demo.demo_run_path(frames=2, seed=5) == p
    assert p.stat().st_mtime_ns == mtime  # not generated again
    assert not [x for x in demo_dir.iterdir() if x.name.startswith(".tmp-")]  # no leftovers
    src = demo.open_demo_run(frames=2, seed=5)
    try:
        assert len(src) == 2
        fr = src[1]
        assert fr.data.ndim == 2 and fr.data.dtype == np.float32 and fr.data.max() > 0
        assert fr.event.index == 1
        assert src.metadata(0).photon_energy_ev and src.geometry() is not None
    finally:
        src.close()


def test_two_processes_generating_at_once_agree(demo_dir):
    code = ("import sys; from peaknet_gui.sources import demo; "
            "print(demo.demo_run_path(frames=1, seed=9))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    paths = {o[0].strip() for o in outs}
    assert len(paths) == 1
    src = demo.open_demo_run(frames=1, seed=9)
    assert len(src) == 1
    src.close()
    assert not [x for x in demo_dir.iterdir() if x.name.startswith(".tmp-")]
