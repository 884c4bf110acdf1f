"""Simulator speed: seconds per frame by detector and frame kind, on one core, and run writing.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sim.py [--frames 6] [--detectors rayonix-mx340,pilatus-6m,cspad]

Goal (issue 3): <= 1 s per 1920x1920 frame (Rayonix MX340) on one core.  Prints, per detector,
the one-off set-up (pixel geometry, Miller tables) and the median / max time per frame of each
kind (hit, blank, rings, calibrant), then the time to write a short mixed run to CXI (simulation +
gzip-1 compression + labels).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from peaknet_gui.sim.detectors import get_detector  # noqa: E402
from peaknet_gui.sim.frame import simulate_frame  # noqa: E402
from peaknet_gui.sim.noise import draw_personality  # noqa: E402
from peaknet_gui.sim.params import draw_frame_params  # noqa: E402
from peaknet_gui.sim.run import RunSpec, simulate_run  # noqa: E402

import numpy as np  # noqa: E402


def bench_detector(name: str, frames: int) -> None:
    det = get_detector(name)
    t = time.perf_counter()
    det.pixels
    setup = time.perf_counter() - t
    pers = draw_personality(det, np.random.default_rng(0))
    print(f"{name}: {det.shape[0]}x{det.shape[1]}, {len(det.geometry.panels)} panel(s); pixel geometry set-up "
          f"{setup:.2f} s (once per run)")
    for kind in ("hit", "blank", "rings", "calibrant"):
        times, peaks = [], []
        for i in range(frames + 1):
            p = draw_frame_params(kind, det, 1000 + i)
            t = time.perf_counter()
            f = simulate_frame(det, p, pers)
            dt = time.perf_counter() - t
            if i:  # the first frame pays for the Miller table / calibrant rings
                times.append(dt)
                peaks.append(len(f.peaks))
        print(f"  {kind:9s} median {statistics.median(times):.3f} s  max {max(times):.3f} s per frame"
              f"  (label-1 peaks per frame: median {int(statistics.median(peaks))})")


def bench_run(name: str, frames: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.cxi"
        t = time.perf_counter()
        simulate_run(RunSpec(n_frames=frames, seed=3, detector=name), out)
        dt = time.perf_counter() - t
        size = out.stat().st_size / 1e6
    print(f"  run of {frames} mixed frames written to CXI: {dt:.1f} s ({dt / frames:.2f} s/frame incl. set-up, "
          f"gzip-1 and labels), {size / frames:.1f} MB/frame")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--detectors", default="rayonix-mx340,pilatus-6m,cspad")
    args = ap.parse_args()
    for name in args.detectors.split(","):
        bench_detector(name, args.frames)
        bench_run(name, args.frames)


if __name__ == "__main__":
    main()
