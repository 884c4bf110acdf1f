"""Frames/s of ``peaknet find`` locally and on Ray workers (1 and 2), and Ray's cost per frame.

    nice -n 10 .venv/bin/python benchmarks/bench_cluster.py [--frames 24] [--crop 384x384]
        [--workers 1,2] [--full 1] [--backend onnxruntime]

One simulated run (``peaknet simulate``: hits, blanks, rings; ``--crop`` of a Rayonix MX340) is
analysed, with the same settings and an ExportSession writing every format, by:

* the local path (``run_analysis`` in this process, all cores);
* ``run_on_ray`` with 1 worker (all cores) and 2 workers (half the cores each), on one local
  Ray instance.  frames/s counts from the first worker ready (model loaded) to the last frame
  written; "wall" includes starting the workers.

Ray's cost per frame: the driver's time submitting calls and fetching results (measured in the
run), the result's size (a CompactResult as pickled), and a sequential round trip of a typical
result through an actor (scheduling + transfer, nothing computed).  ``--full N`` also analyses N
full 1920x1920 Rayonix frames locally to give the per-frame result size and the driver's write
time per hit at full size (the inputs of docs/cluster.md's 16-GPU estimate).
The machine is shared: compare figures from one invocation.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def simulate(path: Path, frames: int, crop, seed: int = 11) -> Path:
    from peaknet_gui.cli.main import main

    args = ["simulate", "--frames", str(frames), "--out", str(path), "--seed", str(seed),
            "--mix", "hits=0.5,blanks=0.25,rings=0.25", "--no-progress"]
    if crop:
        args += ["--crop", crop]
    assert main(args) == 0
    return path


def make(run: Path, out: Path, backend: str, device: str = "cpu"):
    """Source, driver analyzer and export session as peaknet find builds them."""
    from peaknet_gui.export.session import FORMATS, ExportSession
    from peaknet_gui.geometry.crystfel_geom import read_geom
    from peaknet_gui.pipeline.analyzer import FrameAnalyzer
    from peaknet_gui.sources import open_run

    geom = read_geom(run.with_suffix(".geom"))
    source = open_run(str(run), geometry=geom)
    analyzer = FrameAnalyzer("peaknet", device=device, geometry=geom, backend=backend)
    analyzer.predictor
    session = ExportSession(out, geom, formats=set(FORMATS))
    return source, analyzer, session, geom


def local_run(run: Path, out: Path, backend: str) -> dict:
    from peaknet_gui.pipeline.run import run_analysis

    source, analyzer, session, _ = make(run, out, backend)
    s = run_analysis(source, analyzer, session)
    source.close()
    return {"frames": s.frames, "fps": s.frames / s.wall_s, "wall_s": s.wall_s, "device": s.device}


def ray_run(run: Path, out: Path, backend: str, workers: int, cores: int) -> dict:
    from peaknet_gui.cluster.driver import run_on_ray
    from peaknet_gui.cluster.options import ClusterOptions
    from peaknet_gui.cluster.spec import WorkerSpec

    source, analyzer, session, geom = make(run, out, backend)
    cpus = max(1, cores // workers)
    spec = WorkerSpec.from_analyzer(analyzer, device="cpu", backend=backend, read_geometry=geom, cpu_threads=cpus)
    t0 = time.perf_counter()
    s = run_on_ray(source, spec, session, options=ClusterOptions(workers=workers, cpus_per_worker=cpus))
    wall = time.perf_counter() - t0
    source.close()
    return {"frames": s.frames, "fps": s.frames_per_s, "wall_s": wall, "ray_ms": s.ray_ms_per_frame,
            "bytes": s.bytes_per_frame, "write_ms": s.write_ms / max(1, s.frames), "per_worker":
            [round(w.frames_per_s(s.wall_s), 2) for w in s.workers], "device": s.device}


def round_trip(ray, sample, n: int = 200) -> tuple:
    """ms per sequential call returning ``sample`` (a CompactResult), and per empty call."""

    @ray.remote(num_cpus=0)
    class Echo:
        def __init__(self, item):
            self.item = item

        def give(self):
            return self.item

        def nothing(self):
            return None

    a = Echo.remote(sample)
    ray.get(a.give.remote())
    out = []
    for method in (a.give, a.nothing):
        t0 = time.perf_counter()
        for _ in range(n):
            ray.get(method.remote())
        out.append(1e3 * (time.perf_counter() - t0) / n)
    ray.kill(a)
    return tuple(out)


def sample_result(run: Path, backend: str, tmp: Path, index: int = 0):
    """A CompactResult of frame ``index`` and the driver's time to export it (ms)."""
    from peaknet_gui.cluster.compact import CompactResult

    source, analyzer, session, _ = make(run, tmp, backend)
    source[index]
    t0 = time.perf_counter()
    frame = source[index]  # what the driver does for a hit (hits.cxi holds its pixels)
    read_ms = 1e3 * (time.perf_counter() - t0)
    res = analyzer.analyze_one(frame)
    c = CompactResult.from_result(0, index, frame, res)
    t0 = time.perf_counter()
    back = c.result()
    unpack_ms = 1e3 * (time.perf_counter() - t0)
    t0 = time.perf_counter()
    session.add(frame if c.hit else c.frame(), back)
    add_ms = 1e3 * (time.perf_counter() - t0)
    session.close()
    source.close()
    return c, unpack_ms, add_ms, read_ms


def full_size(tmp: Path, n: int, backend: str) -> list:
    run = simulate(tmp / "full.cxi", n, None, seed=12)
    rows = []
    for i in range(n):
        c, unpack_ms, add_ms, read_ms = sample_result(run, backend, tmp / f"full_out{i}", i)
        rows.append((i, c.hit, c.shape, c.nbytes, len(c.mask_bits or b""), len(c.peaks), unpack_ms, add_ms, read_ms))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--crop", default="384x384")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--full", type=int, default=0, help="also measure N full 1920x1920 frames")
    a = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ.setdefault("PEAKNET_CACHE_DIR", str(tmp / "cache"))
        t0 = time.perf_counter()
        run = simulate(tmp / "run.cxi", a.frames, a.crop)
        print(f"run: {a.frames} frames {a.crop} simulated in {time.perf_counter() - t0:.1f} s; {cores} cores; "
              f"backend {a.backend}")
        loc = local_run(run, tmp / "local", a.backend)
        print(f"local       {loc['fps']:6.2f} frames/s  ({1e3 / loc['fps']:.0f} ms/frame, {loc['device']})")
        import ray

        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            for w in (int(x) for x in a.workers.split(",")):
                r = ray_run(run, tmp / f"ray{w}", a.backend, w, cores)
                print(f"ray {w} wkr   {r['fps']:6.2f} frames/s  ({1e3 / r['fps']:.0f} ms/frame; per worker "
                      f"{r['per_worker']}; wall with start-up {r['wall_s']:.1f} s for {r['frames']} frames; "
                      f"driver: Ray {r['ray_ms']:.2f} ms + export {r['write_ms']:.2f} ms per frame; "
                      f"result {r['bytes'] / 1024:.1f} kB/frame)")
            c, unpack_ms, _, _ = sample_result(run, a.backend, tmp / "sample")
            rt, empty = round_trip(ray, c)
            print(f"round trip  {rt:.2f} ms per call returning a {c.nbytes / 1024:.1f} kB result "
                  f"({empty:.2f} ms empty); mask unpack {unpack_ms:.2f} ms")
        finally:
            ray.shutdown()
        if a.full:
            for i, hit, shape, nbytes, mbytes, npk, unpack_ms, add_ms, read_ms in full_size(tmp, a.full, a.backend):
                print(f"full frame {i} {shape[0]}x{shape[1]} {'hit ' if hit else 'miss'} {npk:4d} peaks: result "
                      f"{nbytes / 1024:.1f} kB (mask {mbytes / 1024:.1f} kB of {np.prod(shape) / 8 / 1024:.0f} kB "
                      f"packed bits); driver: unpack {unpack_ms:.1f} ms, export {add_ms:.1f} ms"
                      + (f", re-read for hits.cxi {read_ms:.1f} ms" if hit else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
