"""Milliseconds per frame, per stage, of the whole peak-finding pipeline; memory; GPU when present.

    nice -n 10 .venv/bin/python benchmarks/bench_pipeline.py [--frames 6] [--size 1920]
        [--config fast|paper] [--weights W] [--device cpu|cuda|auto] [--backend auto|torch|onnxruntime]
        [--batch-size B] [--threads 2]

Writes a simulated run (``--frames`` frames of ``--size``^2 pixels: Poisson background with a
radial fall-off, an ice ring, ~400 Gaussian Bragg spots, module-gap rows reading -1) as a CXI
file, then measures on this machine:

* per stage, frame by frame (no overlap): read (run source), normalise, model, post-process
  (peak mask, components, background, filters, auto-mask), export (ExportSession, when built);
* end to end: ``run_analysis`` over the file with prefetching, as ``peaknet find`` runs it;
* the classical peakfinder8 on the same frames;
* peak resident memory added by the analysis (goal: < 2 GB per 1920x1920 frame);
* with CUDA: the model stage on the GPU (fp16, batches).

With random weights (no ``--weights`` and no shipped model) the network's peak map is noise, so
the post-processing is also timed on the simulation's true peak map ("truth-like"), which is
what a trained model gives.  The machine is shared: compare figures taken in one invocation.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def simulate(rng, size: int, n_spots: int = 400):
    """One frame (float32 counts), its bad-pixel rows and the true peak mask."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    c = size / 2.0
    r = np.hypot(yy - c + 13.0, xx - c - 7.0)
    bg = 3.0 + 40.0 * np.exp(-r / (0.15 * size)) + 25.0 * np.exp(-(((r - 0.33 * size) / 6.0) ** 2))
    signal = np.zeros((size, size), np.float32)
    truth = np.zeros((size, size), bool)
    cy = rng.uniform(10, size - 10, n_spots)
    cx = rng.uniform(10, size - 10, n_spots)
    amp = rng.lognormal(np.log(150.0), 0.8, n_spots)
    g = np.mgrid[-4:5, -4:5]
    for y, x, a in zip(cy, cx, amp):
        iy, ix = int(y), int(x)
        spot = a * np.exp(-((g[0] + iy - y) ** 2 + (g[1] + ix - x) ** 2) / (2 * 0.8**2))
        signal[iy - 4 : iy + 5, ix - 4 : ix + 5] += spot
        truth[iy - 4 : iy + 5, ix - 4 : ix + 5] |= spot > 0.1 * 40
    data = rng.poisson(bg + signal).astype(np.float32)
    gaps = np.zeros((size, size), bool)
    for row in range(size // 8, size, size // 4):
        gaps[row : row + 7] = True
    data[gaps] = -1
    truth &= ~gaps
    return data, truth


def write_cxi(path: Path, frames) -> None:
    import h5py

    n = len(frames)
    h, w = frames[0].shape
    with h5py.File(path, "w") as f:
        d = f.create_dataset("/entry_1/data_1/data", (n, h, w), dtype=np.float32, chunks=(1, h, w), compression="gzip", compression_opts=1)
        for i, fr in enumerate(frames):
            d[i] = fr
        f["/entry_1/instrument_1/source_1/photon_energy_eV"] = np.full(n, 9500.0)
        f["/entry_1/instrument_1/detector_1/distance"] = np.full(n, 0.12)
        f["/entry_1/instrument_1/detector_1/x_pixel_size"] = 75e-6
        f["/entry_1/instrument_1/detector_1/y_pixel_size"] = 75e-6


class _H5Source:
    """Fallback reader when the sources package is not built yet (same Frame semantics)."""

    def __init__(self, path):
        import h5py

        from peaknet_gui.frame import EventId

        self._f = h5py.File(path, "r")
        self._d = self._f["/entry_1/data_1/data"]
        self._path = str(path)
        self._event = EventId

    def __len__(self):
        return self._d.shape[0]

    def event(self, i):
        return self._event(self._path, i)

    def __getitem__(self, i):
        from peaknet_gui.frame import Frame

        data = self._d[i].astype(np.float32)
        return Frame(data=data, event=self.event(i), serial=i, bad=data < 0)

    def geometry(self):
        return None

    def close(self):
        self._f.close()


def open_source(path):
    try:
        from peaknet_gui.sources import open_run

        return open_run(str(path)), "peaknet_gui.sources.open_run"
    except ImportError:
        return _H5Source(path), "h5py (sources package not available)"


def build_model(args):
    from peaknet_gui.model import PeakNet, PeakNetConfig

    if args.weights:
        from peaknet_gui.model.weights import load_weights

        net, info = load_weights(args.weights)
        return net.eval(), f"weights {args.weights}", True
    if args.config == "shipped":
        from peaknet_gui.model.weights import load_weights

        net, info = load_weights(None)
        return net.eval(), f"shipped weights {info.path}", True
    cfg = PeakNetConfig.fast() if args.config == "fast" else PeakNetConfig.paper()
    return PeakNet(cfg).eval(), f"{args.config} config, random weights", False


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def fmt(d: dict) -> str:
    return "  ".join(f"{k} {v:7.1f}" for k, v in d.items())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--size", type=int, default=1920)
    p.add_argument("--config", default="auto", choices=("auto", "shipped", "fast", "paper"))
    p.add_argument("--weights")
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", default="auto")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    if a.config == "auto":
        from peaknet_gui.model.weights import default_weights_path

        a.config = "shipped" if (not a.weights and Path(default_weights_path()).is_file()) else "fast"

    from peaknet_gui.pipeline.analyzer import FrameAnalyzer
    from peaknet_gui.pipeline.run import run_analysis
    from peaknet_gui.pipeline.settings import FinderSettings, MaskSettings
    from peaknet_gui.peaks.peakfinder8 import peakfinder8

    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    frames, truths = zip(*[simulate(rng, a.size) for _ in range(a.frames)])
    write_cxi(tmp / "run.cxi", frames)
    del frames
    net, model_desc, trained = build_model(a)
    finder = FinderSettings(min_peaks_for_hit=10)
    from peaknet_gui.geometry import Geometry

    geom = Geometry.single_panel((a.size, a.size), 75e-6, 0.12, a.size / 2 - 7, a.size / 2 + 13, photon_energy_ev=9500.0)
    an = FrameAnalyzer("peaknet", device=a.device, geometry=geom, finder=finder, mask=MaskSettings(), model=net, backend=a.backend)
    pred = an.predictor  # backend choice / ONNX export happen here, outside the timings
    source, reader = open_source(tmp / "run.cxi")
    print(f"# {a.frames} frames of {a.size}x{a.size}, {a.threads} threads, model: {model_desc}")
    print(f"# device: {pred.device_name}; CPU backend timings (1024x1024): {pred.backend_timings or 'n/a'}")
    print(f"# reader: {reader}")
    an.analyze([source[0]])  # warm-up
    base_rss = rss_mb()

    # --- per stage, frame by frame ---------------------------------------------------------------
    stages = {k: [] for k in ("read", "normalise", "model", "postprocess")}
    truth_post = []
    n_peaks = []
    random_peaks = []
    results = []
    for i in range(len(source)):
        t0 = time.perf_counter()
        frame = source[i]
        stages["read"].append(1e3 * (time.perf_counter() - t0))
        prepared = an.prepare(frame)
        stages["normalise"].append(prepared.timings_ms["normalise"])
        (cm,) = pred.run([prepared])
        stages["model"].append(cm.timings_ms["model"])
        t0 = time.perf_counter()
        res = an._from_probabilities(frame, cm.peak_prob, cm.artifact_prob, an.finder, an.mask)
        stages["postprocess"].append(1e3 * (time.perf_counter() - t0))
        random_peaks.append(res.n_peaks)
        if not trained:
            truth = truths[i]
            t0 = time.perf_counter()
            res = an._from_probabilities(frame, truth.astype(np.float16), np.zeros(truth.shape, np.float16), an.finder, an.mask)
            truth_post.append(1e3 * (time.perf_counter() - t0))
        n_peaks.append(res.n_peaks)
        results.append((frame, res))  # exported below: truth-like peaks when the weights are random
    per_stage = {k: float(np.median(v)) for k, v in stages.items()}
    export_ms = None
    try:
        from peaknet_gui.export.session import ExportSession

        session = ExportSession(tmp / "out", geom, formats={"stream", "lst", "cxi", "mask"})
        ts = []
        for frame, res in results:
            t0 = time.perf_counter()
            session.add(frame, res)
            ts.append(1e3 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        session.close()
        export_ms = float(np.median(ts)) + 1e3 * (time.perf_counter() - t0) / len(results)
    except ImportError:
        pass
    except Exception as e:  # report, keep benchmarking
        print(f"# export failed: {type(e).__name__}: {e}")
    print("\nper stage, median ms per frame (sequential):")
    row = dict(per_stage)
    if export_ms is not None:
        row["export"] = export_ms
    print("  " + fmt(row) + f"  | sum {sum(row.values()):.0f} ms" + ("" if export_ms is not None else "  (export: ExportSession not available)"))
    if truth_post:
        print(f"  post-process on truth-like peak maps: {np.median(truth_post):.1f} ms for {np.median(n_peaks):.0f} peaks/frame"
              f" (random weights give {np.median(random_peaks):.0f} noise 'peaks'; export below uses the truth-like peaks)")
    else:
        print(f"  {np.median(n_peaks):.0f} peaks/frame")

    # --- end to end with prefetching -------------------------------------------------------------------
    if not trained:
        # the network's cost is paid in full, but its (random) peak map is replaced by the truth
        real_post = an._from_probabilities

        def truth_like(frame, peak_prob, artifact_prob, *args, **kw):
            kw.pop("peak_mask", None)
            kw.pop("artifact_mask", None)
            truth = truths[frame.serial]
            return real_post(frame, truth.astype(np.float16), np.zeros(truth.shape, np.float16), *args, **kw)

        an._from_probabilities = truth_like
    for export in (False, True):
        source.close()
        source, _ = open_source(tmp / "run.cxi")
        sink = None
        if export:
            try:
                from peaknet_gui.export.session import ExportSession

                sink = ExportSession(tmp / "out_e2e", geom, formats={"stream", "lst", "cxi", "mask"})
            except ImportError:
                continue
        summary = run_analysis(source, an, sink, batch_size=a.batch_size)
        print(f"\nend to end (run_analysis, prefetch, {'with export' if export else 'no export'}"
              f"{', truth-like peak maps' if not trained else ''}): {summary.ms_per_frame:.0f} ms/frame "
              f"({1e3 / max(summary.ms_per_frame, 1e-9):.2f} frames/s), {summary.mean_peaks:.0f} peaks/frame")
        print("  mean per stage: " + fmt(summary.mean_stage_ms()))
    extra = rss_mb() - base_rss
    print(f"peak memory added by the analysis: {extra:.0f} MB (process peak {rss_mb():.0f} MB; goal < 2048 MB per frame)")

    # --- classical finder ----------------------------------------------------------------------------------
    source.close()
    source, _ = open_source(tmp / "run.cxi")
    pf = []
    npf = []
    for i in range(len(source)):
        frame = source[i]
        t0 = time.perf_counter()
        pk = peakfinder8(frame.data, bad=frame.bad, geometry=geom)
        pf.append(1e3 * (time.perf_counter() - t0))
        npf.append(len(pk))
    print(f"\npeakfinder8 on the same frames: {np.median(pf):.0f} ms/frame, {np.median(npf):.0f} peaks/frame "
          f"(read {per_stage['read']:.0f} ms extra)")

    # --- GPU ----------------------------------------------------------------------------------------------
    from peaknet_gui.inference.device import cuda_available

    if cuda_available() and a.device != "cuda":
        gan = FrameAnalyzer("peaknet", device="cuda", geometry=geom, finder=finder, model=build_model(a)[0])
        gpred = gan.predictor
        frames = [source[i] for i in range(len(source))]
        prepared = [gan.prepare(f) for f in frames]
        gpred.run(prepared[:1])
        import torch

        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = gpred.run(prepared)
        torch.cuda.synchronize()
        ms = 1e3 * (time.perf_counter() - t0) / len(prepared)
        t0 = time.perf_counter()
        for f, cm in zip(frames, out):
            gan._from_probabilities(f, cm.peak_prob, cm.artifact_prob, gan.finder, gan.mask)
        post = 1e3 * (time.perf_counter() - t0) / len(frames)
        print(f"\nGPU {gpred.device_name}: model {ms:.1f} ms/frame (batch {len(prepared)}), CPU post-process {post:.1f} ms/frame, "
              f"max GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MB")
        gs = run_analysis(source, gan, None, batch_size=a.batch_size or 8)
        print(f"GPU end to end: {gs.ms_per_frame:.1f} ms/frame")
    elif a.device != "cuda":
        print("\n(no CUDA GPU: GPU figures skipped)")
    source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
