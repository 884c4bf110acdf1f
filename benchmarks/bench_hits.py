"""Hit finding on simulated runs with truth: reported hits against true hits, peaks on blank frames.

    .venv/bin/python benchmarks/bench_hits.py RUN.cxi... [--weights W] [--no-hot-pixels]

Each run goes through :func:`peaknet_gui.pipeline.run.run_analysis` exactly as ``peaknet find``
runs it (the run's hot pixels primed, the weights' operating point).  A frame is truly a hit
when its truth list holds at least ``min_peaks_for_hit`` peaks; ``blank`` frames are the
simulator's frames without a crystal.  The demo run (``peaknet_gui.sources.demo``) is used when
no run is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from peaknet_gui.pipeline.analyzer import FrameAnalyzer  # noqa: E402
from peaknet_gui.pipeline.run import run_analysis  # noqa: E402
from peaknet_gui.sources import open_run  # noqa: E402


class _Collect:
    def __init__(self):
        self.results = {}

    def add(self, frame, result):
        self.results[frame.serial] = result

    def close(self, *args, **kwargs):
        pass


def bench(path: str, weights, hot_pixels: bool) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        kinds = [k.decode() if isinstance(k, bytes) else str(k) for k in f["entry_1/sim/kind"][:]]
        true_n = f["entry_1/result_1/nPeaks"][:]
    source = open_run(path)
    an = FrameAnalyzer("peaknet", weights=weights, device="cpu", geometry=source.geometry(), hot_pixels=hot_pixels)
    sink = _Collect()
    summary = run_analysis(source, an, sink)
    res = [sink.results[k] for k in sorted(sink.results)]
    need = an.finder.min_peaks_for_hit
    truth = np.array([n >= need for n in true_n])
    hit = np.array([r.hit for r in res])
    blanks = [r.n_peaks for r, k in zip(res, kinds) if k == "blank"]
    return {"run": Path(path).name, "frames": len(res), "true_hits": int(truth.sum()), "reported_hits": int(hit.sum()),
            "hits_agree": int((hit == truth).sum()), "blank_peaks_max": max(blanks) if blanks else None,
            "blank_peaks": blanks, "hot_pixels": summary.hot_pixels}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--no-hot-pixels", action="store_true", help="no hot-pixel statistics (to see what they change)")
    args = ap.parse_args(argv)
    runs = args.runs
    if not runs:
        from peaknet_gui.sources.demo import demo_run_path

        runs = [str(demo_run_path())]
    print(f"{'run':28s} {'frames':>6s} {'true hits':>9s} {'reported':>8s} {'agree':>5s} {'blank peaks':>12s} {'hot px':>6s}")
    for p in runs:
        r = bench(p, args.weights, not args.no_hot_pixels)
        hp = (r["hot_pixels"] or {}).get("hot_pixels")
        print(f"{r['run'][:28]:28s} {r['frames']:6d} {r['true_hits']:9d} {r['reported_hits']:8d} {r['hits_agree']:5d} "
              f"{str(r['blank_peaks']):>12s} {str(hp):>6s}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
