"""Export cost per frame (ExportSession.add on the caller's thread, and close), by format.

    python benchmarks/bench_export.py [--size 1920] [--frames 20] [--peaks 60] [--work-ms 300]

Frames are Poisson(5) noise with ``--peaks`` peaks; every other frame is a hit.  ``--work-ms``
sleeps between frames to stand in for the model (the CXI chunks are deflated in a background
thread meanwhile); ``--work-ms 0`` measures throughput instead.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from peaknet_gui.export.session import ExportSession
from peaknet_gui.frame import EventId, Frame, FrameMetadata
from peaknet_gui.geometry import Geometry
from peaknet_gui.peaks.peaklist import PeakList
from peaknet_gui.pipeline.result import FrameResult


def bench(formats, size, n, n_peaks, work_ms, compression="gzip"):
    shape = (size, size)
    geom = Geometry.single_panel(shape, 75e-6, 0.1, size / 2, size / 2, photon_energy_ev=12000.0)
    rng = np.random.default_rng(0)
    data = rng.poisson(5, shape).astype(np.float32)
    art = np.zeros(shape, dtype=bool)
    art[100:120, :] = True
    peaks = PeakList(fs=rng.uniform(0, size - 1, n_peaks), ss=rng.uniform(0, size - 1, n_peaks),
                     intensity=rng.uniform(10, 1000, n_peaks))
    hit_ms, miss_ms = [], []
    with tempfile.TemporaryDirectory() as out:
        s = ExportSession(out, geom, formats=formats, compression=compression)
        for i in range(n):
            time.sleep(work_ms / 1e3)
            fr = Frame(data=data, event=EventId("/data/run.h5", i), serial=i, metadata=FrameMetadata(photon_energy_ev=12000.0))
            res = FrameResult(serial=i, event=fr.event, peaks=peaks, hit=i % 2 == 0, artifact_mask=art)
            t0 = time.perf_counter()
            s.add(fr, res)
            (hit_ms if res.hit else miss_ms).append(1e3 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        s.close()
        close_ms = 1e3 * (time.perf_counter() - t0)
    return np.median(hit_ms[1:] or hit_ms), np.median(miss_ms), close_ms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1920)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--peaks", type=int, default=60)
    ap.add_argument("--work-ms", type=float, default=300.0)
    a = ap.parse_args()
    print(f"{a.size}x{a.size} float32 frames, {a.peaks} peaks, half hits, {a.work_ms:.0f} ms of other work per frame")
    print(f"{'formats':28s} {'hit ms':>8s} {'non-hit ms':>11s} {'close ms':>9s}")
    for formats, comp in ((("stream",), "gzip"), (("lst",), "gzip"), (("mask",), "gzip"), (("cxi",), "gzip"),
                          (("cxi",), None), (("stream", "lst", "cxi", "mask"), "gzip")):
        h, m, c = bench(set(formats), a.size, a.frames, a.peaks, a.work_ms, comp)
        label = ",".join(formats) + ("" if comp == "gzip" else " (uncompressed)")
        print(f"{label:28s} {h:8.1f} {m:11.1f} {c:9.0f}")


if __name__ == "__main__":
    main()
