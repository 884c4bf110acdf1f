"""Before/after figures of a fine-tune on held-out curated frames (one process, both weights).

    python -m peaknet_gui.curation.compare --before W0 --after W1 --data HELDOUT.cxi --out FIG.json
        [--device cpu] [--threads 2]

Peak precision / recall / F1 (:func:`peaknet_gui.model.evaluate.evaluate_labelled_runs`, match
radius 2 px) of both weights at the *same* operating point -- the ``--before`` weights' (the
fine-tune copies it into the new sidecar, so the window uses the same cut with either).  The
figures go to ``--out`` (JSON, atomically) and to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

KEYS = ("frames", "peak_precision", "peak_recall", "peak_f1", "peak_tp", "peak_fp", "peak_fn", "peaks_per_frame")


def compare(before: str, after: str, data: Sequence[str], *, device: str = "cpu") -> dict:
    from ..model.evaluate import evaluate_labelled_runs
    from ..model.operating_point import OperatingPoint
    from ..model.train import resolve_train_device
    from ..model.weights import load_weights

    dev = resolve_train_device(device)
    out: dict = {"data": list(data)}
    op = None
    for name, path in (("before", before), ("after", after)):
        net, info = load_weights(path, map_location=dev)
        if op is None:
            op = OperatingPoint.from_metadata(info.metadata)
            out["min_confidence"], out["min_pixel_snr"] = op.peak_min_confidence, op.peak_min_pixel_snr
        d = evaluate_labelled_runs(net, list(data), device=dev, min_confidence=op.peak_min_confidence,
                                   min_pixel_snr=op.peak_min_pixel_snr, peak_threshold=op.segmentation_threshold,
                                   photon_floor=op.pixel_snr_photon_floor, confident=op.confident_tier)
        out[name] = {k: d[k] for k in KEYS if k in d}
        out[name]["weights"] = info.path
        out[name]["sha256"] = info.sha256
    return out


def format_figures(fig: dict) -> str:
    """Two lines: precision / recall / F1 before and after, on how many held-out frames."""
    lines = []
    for name in ("before", "after"):
        d = fig.get(name) or {}
        lines.append(f"{name:<6} precision {d.get('peak_precision', float('nan')):.3f}  "
                     f"recall {d.get('peak_recall', float('nan')):.3f}  F1 {d.get('peak_f1', float('nan')):.3f}")
    n = (fig.get("after") or {}).get("frames", 0)
    lines.append(f"on {n} held-out curated frame{'s' * (n != 1)} (not trained on)")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m peaknet_gui.curation.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--before", required=True)
    p.add_argument("--after", required=True)
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    from ..errors import PeakNetError
    from ..export.atomic import atomic_write

    try:
        import torch

        torch.set_num_threads(max(1, args.threads))
        fig = compare(args.before, args.after, args.data, device=args.device)
        with atomic_write(args.out) as fh:
            json.dump(fig, fh, indent=2, default=float)
    except PeakNetError as e:
        print(f"peaknet: {e}", file=sys.stderr)
        return 2
    print(format_figures(fig))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
