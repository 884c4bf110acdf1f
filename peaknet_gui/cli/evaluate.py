"""``peaknet evaluate``: score weights on labelled runs and on real frames with spot lists.

    peaknet evaluate --weights W --data RUN.cxi|FRAME... [--spots CSV...] [--geom G] [--json]
        [--radius 2] [--device auto|cpu|cuda] [--max-frames N] [--min-confidence C] [--min-pixel-snr S]
    peaknet evaluate --weights W --data VAL.cxi... --fit-operating-point [--write]
    peaknet evaluate --lattice CELL --data FRAME... [--geom G] [--weights W] [--work-dir D]

Labelled CXI runs (``/entry_1/data_1/labels`` + truth peaks): pixel IoU per class, peak
precision/recall/F1 (greedy one-to-one within ``--radius`` px), the same on truth peaks with
SNR >= 6, artifact IoU and the masked fraction of artifact-free frames.  A labelled run whose
frames repeat the weights' training frames (the same simulation seeds; the lineage is followed
through the sidecars, :mod:`peaknet_gui.model.provenance`) is named in a warning and in the
report's ``shared_with_training``.  Other inputs (CBF,
HDF5 frames, ...) are real frames scored against reference spot lists: ``--spots`` in the order
of ``--data``, else ``<frame>.spots.csv`` beside each file (DIALS corner convention).

Peaks are kept when the network's confidence and the brightest pixel's SNR reach the weights'
operating point (sidecar ``metadata.operating_point``, :mod:`peaknet_gui.model.operating_point`)
unless ``--min-confidence`` / ``--min-pixel-snr`` say otherwise (0 and 0: every argmax
component).  ``--fit-operating-point`` fits that point on validation data -- labelled runs (F1
at SNR >= 6) and real frames with spot lists (F1 against the list), the mean over runs (one per
file) for a grid of confidences and pixel SNRs -- and prints the curve at the chosen pixel SNR
and the best of each pixel SNR; ``--write`` stores it in the sidecar.  ``--lattice CELL`` scores against lattice truth instead
(:mod:`peaknet_gui.lattice.evaluate`; needs CrystFEL's ``indexamajig`` on PATH).
"""

from __future__ import annotations

import glob
import json
import logging
import math
from pathlib import Path

import numpy as np

from .argtypes import confidence, pixel_snr

log = logging.getLogger(__name__)

LABELLED_KEYS = ("iou_background", "iou_peak", "iou_artifact", "peak_precision", "peak_recall", "peak_f1",
                 "peak_recall_snr6", "peak_f1_snr6", "artifact_iou", "masked_fraction_clean", "peaks_per_frame")
REAL_KEYS = ("peak_precision", "peak_recall", "peak_f1", "peaks_per_frame", "max_peaks_per_frame")


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score model weights on labelled runs or real frames with spot lists",
                       description="Score PeakNet weights: pixel IoU, peak precision/recall/F1 within 2 px, "
                       "artifact IoU, masked fraction; real frames against reference spot lists.")
    p.add_argument("--weights", help="weights file (default: the shipped model)")
    p.add_argument("--data", nargs="+", required=True, help="labelled CXI runs or real frames (globs allowed)")
    p.add_argument("--spots", nargs="*", default=[], help="reference spot lists for the real frames, in order")
    p.add_argument("--geom", help="CrystFEL geometry of the real frames (multi-panel detectors)")
    p.add_argument("--radius", type=float, default=2.0, help="match radius in pixels (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
    p.add_argument("--max-frames", type=int, help="at most N frames per labelled run")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-confidence", type=confidence,
                   help="keep peaks whose highest peak probability reaches this (default: the weights' operating point; 0: all)")
    p.add_argument("--min-pixel-snr", type=pixel_snr,
                   help="keep peaks whose brightest pixel stands this many local-background sigmas above the "
                   "background (default: the weights' operating point; 0: no test)")
    p.add_argument("--peak-threshold", type=confidence,
                   help="peak pixels: peak-class probability >= this (default: the weights' operating point; 0: argmax)")
    p.add_argument("--keep-ring-spots", action="store_true",
                   help="score the peaks on powder rings too (default: dropped, as peaknet find and the GUI do)")
    p.add_argument("--no-whole-rings", action="store_true",
                   help="score the network's artifact pixels (and ring-spot discs) without following powder rings "
                   "along their arcs (default: the auto-mask peaknet find and the GUI make)")
    p.add_argument("--fit-operating-point", action="store_true",
                   help="fit the minimum confidence and pixel SNR on the runs given (validation runs: seeds used nowhere else)")
    p.add_argument("--max-blank-peaks", type=float, default=5.0, metavar="N",
                   help="with --fit-operating-point: only points that keep at most N peaks on every blank frame of "
                   "the simulated runs compete (default: %(default)s; negative: no constraint)")
    p.add_argument("--write", action="store_true", help="with --fit-operating-point: store the result in the weights' sidecar")
    p.add_argument("--for-unreliable-gain", action="store_true",
                   help="with --fit-operating-point: fit without the pixel SNR's one-photon floor, on runs whose geometry "
                   "understates the gain, and store the result as the point for frames whose gain the program cannot "
                   "trust (peaknet_gui/peaks/gain_check.py)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--per-frame", action="store_true", help="include per-frame figures")
    g = p.add_argument_group("lattice truth (needs CrystFEL's indexamajig on PATH)")
    g.add_argument("--lattice", metavar="CELL",
                   help="score PeakNet, the spot lists beside the frames and a low-threshold peakfinder8 against the "
                   "reflections an indexamajig lattice (xgandalf, this cell: a .cell file or "
                   "'tetragonal P c 58.4 58.4 152.3 90 90 90') predicts with I/sigma >= --min-i-sigma")
    g.add_argument("--min-i-sigma", type=float, default=3.0, help="strong predicted reflections (default: %(default)s)")
    g.add_argument("--control-deg", type=float, default=7.0,
                   help="the control rotates the lattice by this angle about the beam (default: %(default)s)")
    g.add_argument("--work-dir", help="keep indexamajig's files here (default: a new temporary folder)")
    g.add_argument("--candidate-threshold", type=float,
                   help="peakfinder8 threshold of the candidate list (default: median + 2 robust sigmas of each frame)")
    g.add_argument("--candidate-min-snr", type=float, default=5.0, help="(default: %(default)s)")
    g.add_argument("--candidate-min-pix", type=int, default=2, help="(default: %(default)s)")
    g.add_argument("--reuse", action="store_true",
                   help="with --work-dir: reuse the indexamajig streams and peaknet find output a previous run left there "
                   "(re-score with another --radius or --min-i-sigma without indexing again)")
    p.set_defaults(func=run)


def _expand(paths):
    out = []
    for p in paths:
        hits = sorted(glob.glob(p)) if any(c in p for c in "*?[") else [p]
        out.extend(hits or [p])
    return out


def _is_labelled(path: Path) -> bool:
    if path.suffix.lower() not in (".cxi", ".h5", ".hdf5"):
        return False
    from ..sources.h5util import open_h5

    f = open_h5(str(path))  # a truncated or corrupt run is reported as such (InputError), not as "no spot list"
    try:
        return "/entry_1/data_1/labels" in f
    except (OSError, RuntimeError, KeyError, ValueError):
        return False
    finally:
        f.close()


def _fmt(v):
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def run(args) -> int:
    if getattr(args, "lattice", None):
        from ..lattice.evaluate import run_lattice

        return run_lattice(args)
    import torch

    from ..errors import InputError
    from ..model.evaluate import Scores, evaluate_labelled_runs, find_spots_file, read_spots_csv, score_real_frame
    from ..model.realframes import read_real_frames
    from ..model.train import resolve_train_device
    from ..model.weights import load_weights

    torch.set_num_threads(max(1, args.threads))
    device = resolve_train_device(args.device)
    net, info = load_weights(args.weights, map_location=device)
    paths = [Path(p) for p in _expand(args.data)]
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: file not found")
    labelled = [p for p in paths if _is_labelled(p)]
    real = [p for p in paths if p not in labelled]
    if args.spots and len(args.spots) != len(real):
        raise InputError(f"--spots: {len(args.spots)} lists for {len(real)} real frame files")
    geometry = None
    if args.geom:
        from ..geometry import read_geom

        geometry = read_geom(args.geom)
    from ..model.provenance import warn_shared

    shared = warn_shared(labelled, info.metadata, "fitted on" if args.fit_operating_point else "scored")
    if args.fit_operating_point:
        return _fit(args, net, info, labelled, real, geometry, device, shared)
    from ..model.operating_point import OperatingPoint

    op = OperatingPoint.from_metadata(info.metadata)
    min_conf, min_snr, seg, tier = _point_values(op, args)
    drop = not args.keep_ring_spots
    whole = not args.no_whole_rings
    report = {"weights": info.path, "sha256": info.sha256, "config": info.config.name, "min_confidence": min_conf,
              "min_pixel_snr": min_snr, "peak_threshold": seg or 0.0, "pixel_snr_photon_floor": op.pixel_snr_photon_floor,
              "confident_tier": None if tier is None else {"min_confidence": tier.min_confidence,
                                                           "min_pixel_snr": tier.min_pixel_snr},
              "drop_ring_spots": drop, "whole_rings": whole}
    if shared:
        report["shared_with_training"] = shared
    if labelled:
        d = evaluate_labelled_runs(net, [str(p) for p in labelled], radius=args.radius, device=device,
                                   max_frames=args.max_frames, min_confidence=min_conf, drop_ring_spots=drop,
                                   whole_rings=whole, min_pixel_snr=min_snr, peak_threshold=seg,
                                   photon_floor=op.pixel_snr_photon_floor, confident=tier)
        if not args.per_frame:
            d.pop("per_frame", None)
        report["labelled"] = d
        report["labelled_runs"] = [str(p) for p in labelled]
    if real:
        scores = Scores()
        for k, p in enumerate(real):
            spots = Path(args.spots[k]) if args.spots else find_spots_file(p)
            if spots is None:
                raise InputError(f"{p}: no reference spot list (give --spots or put {p.name}.spots.csv beside it)")
            for name, data, bad, geom in read_real_frames(p, geometry):
                ref = read_spots_csv(spots, geom)
                point = _frame_point(op, data, bad, geom)
                conf, snr, thr, frame_tier = _point_values(point, args)
                score_real_frame(net, data, bad, ref, scores, geometry=geom, radius=args.radius, device=device, name=name,
                                 min_confidence=conf, drop_ring_spots=drop, whole_rings=whole,
                                 min_pixel_snr=snr, peak_threshold=thr, photon_floor=point.pixel_snr_photon_floor,
                                 confident=frame_tier)
        d = scores.summary()
        d["per_frame"] = scores.per_frame
        report["real"] = d
    if args.json:
        print(json.dumps(report, indent=2, default=float))
        return 0
    print(f"weights {info.path} (sha256 {info.sha256[:16]}..., config {info.config.name}), "
          f"peaks of confidence >= {min_conf:g} and pixel SNR >= {min_snr:g}"
          + (f" (or confidence >= {tier.min_confidence:g} and pixel SNR >= {tier.min_pixel_snr:g})" if tier else ""))
    if "labelled" in report:
        d = report["labelled"]
        print(f"labelled runs: {len(labelled)}, frames {d['frames']}")
        for k in LABELLED_KEYS:
            if k in d:
                print(f"  {k:24s} {_fmt(d[k])}")
    if "real" in report:
        d = report["real"]
        print(f"real frames: {d['frames']}")
        for r in d["per_frame"]:
            print(f"  {r['frame']}: found {r['found']}, reference {r['reference']}, precision {r['precision']:.3f}, "
                  f"recall {r['recall']:.3f}, masked {r.get('masked_fraction', 0):.4f}")
        for k in REAL_KEYS:
            if k in d:
                print(f"  {k:24s} {_fmt(d[k])}")
    return 0


def _point_values(point, args) -> tuple:
    """(min confidence, min pixel SNR, segmentation threshold or None, second tier or None) of an
    operating point, the command line's values winning (either of the first two given: no tier, as
    in the program)."""
    conf = point.peak_min_confidence if args.min_confidence is None else args.min_confidence
    snr = point.peak_min_pixel_snr if args.min_pixel_snr is None else args.min_pixel_snr
    seg = point.peak_threshold if args.peak_threshold is None else args.peak_threshold
    tier = point.confident_tier if args.min_confidence is None and args.min_pixel_snr is None else None
    return conf, snr, (seg if seg > 0 else None), tier


def _frame_point(op, data, bad, geom):
    """The point one real frame is judged by, as the program judges it: the weights' point, or its
    fallback where the frame's background contradicts the stated gain (peaks/gain_check.py)."""
    from ..peaks.gain_check import check_frame_gain

    if op.when_gain_unreliable is None:
        return op
    return op.for_gain(check_frame_gain(data, bad, geom).reliable)


def _fit(args, net, info, labelled, real, geometry, device, shared) -> int:
    from ..errors import InputError
    from ..model.evaluate import find_spots_file
    from ..model.operating_point import fit_operating_point, write_operating_point

    pairs = []
    for k, p in enumerate(real):
        spots = Path(args.spots[k]) if args.spots else find_spots_file(p)
        if spots is None:
            raise InputError(f"{p}: no reference spot list (give --spots or put {p.name}.spots.csv beside it)")
        pairs.append((p, spots))
    op, rep = fit_operating_point(net, [str(p) for p in labelled], real=pairs, geometry=geometry, device=device,
                                  radius=args.radius, max_frames=args.max_frames,
                                  drop_ring_spots=not args.keep_ring_spots,
                                  max_blank_peaks=args.max_blank_peaks if args.max_blank_peaks >= 0 else None,
                                  photon_floor=not args.for_unreliable_gain)
    if args.write:
        rep["written_to"] = str(write_operating_point(info.path, op, rep, for_unreliable_gain=args.for_unreliable_gain))
    if args.json:
        extra = {"shared_with_training": shared} if shared else {}
        print(json.dumps({"weights": info.path, "sha256": info.sha256, "operating_point": op.as_dict(), **extra, **rep},
                         indent=2, default=float))
        return 0
    names = list(rep["curve"][0]["per_run"])
    chosen = rep["chosen"]
    print(f"weights {info.path}: mean peak F1 over {len(names)} runs (simulated: SNR >= 6) by minimum confidence, "
          f"at minimum pixel SNR {chosen['pixel_snr']:g}, segmentation threshold "
          f"{chosen['peak_threshold'] or 'argmax'}")
    print("  conf   mean  blank(mean/most) " + "  ".join(f"{n[:18]:>18s}" for n in names))
    for c in rep["curve"]:
        if c["pixel_snr"] != chosen["pixel_snr"] or c["peak_threshold"] != chosen["peak_threshold"]:
            continue
        mark = " <" if c is chosen else ""
        print(f"  {c['threshold']:.3f}  {c['mean_f1']:.4f} {c.get('blank_peaks', 0.0):5.1f} / {c.get('blank_peaks_max', 0):3d}  "
              + "  ".join(f"{_fmt(c['per_run'][n]['f1']):>18s}" for n in names) + mark)
    limit = rep.get("max_blank_peaks")
    print("best mean F1 by minimum pixel SNR" + (f" (in brackets: within the blank-frame limit of {limit:g})" if limit is not None else "") + ":")
    def by_f1(c):
        return round(c["mean_f1"], 6), -c["threshold"]

    for snr in sorted({c["pixel_snr"] for c in rep["curve"]}):
        row = [c for c in rep["curve"] if c["pixel_snr"] == snr]
        b = max(row, key=by_f1)
        line = (f"  pixel SNR {snr:5g}: {b['mean_f1']:.4f} at confidence {b['threshold']:g}, "
                f"segmentation threshold {b['peak_threshold'] or 'argmax'}, worst blank frame {b.get('blank_peaks_max', 0)} peaks")
        ok = [c for c in row if limit is not None and c.get("blank_peaks_max", 0) <= limit]
        if ok:
            f = max(ok, key=by_f1)
            line += (f" ({f['mean_f1']:.4f} at confidence {f['threshold']:g}, segmentation threshold "
                     f"{f['peak_threshold'] or 'argmax'}, worst blank {f.get('blank_peaks_max', 0)})")
        elif limit is not None:
            line += " (none within the limit)"
        print(line)
    print(f"blank frames: {rep.get('blank_constraint', 'none')}")
    tier = rep.get("tier")
    if rep.get("tier_curve"):
        print(f"second tier (confident components at a lower pixel SNR): {len(rep['tier_curve'])} tried; "
              + (f"kept confidence >= {tier['min_confidence']:g} at pixel SNR >= {tier['pixel_snr']:g}: mean F1 "
                 f"{chosen['mean_f1']:.4f} -> {tier['mean_f1']:.4f}, worst blank frame {tier['blank_peaks_max']} peaks"
                 if tier else "none raises the mean F1 within the blank-frame limit"))
    print(f"operating point: peak_min_confidence {op.peak_min_confidence:g}, peak_min_pixel_snr {op.peak_min_pixel_snr:g}, "
          f"peak_threshold {op.peak_threshold:g} (0 = argmax)"
          + (f", or confidence >= {op.confident_min_confidence:g} and pixel SNR >= {op.confident_min_pixel_snr:g}"
             if op.confident_tier else "")
          + (f" (written to {rep['written_to']})" if args.write else " (not written; add --write)"))
    return 0
