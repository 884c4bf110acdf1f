"""The program on the shared real frames, against their DIALS spot lists, as a user runs it.

    .venv/bin/python benchmarks/bench_real_frames.py [--weights W] [--sets thaumatin,cspad,...] [--json OUT]
        [--min-pixel-snr S] [--min-confidence C] [--geom SET=PATH]

Unlike ``peaknet evaluate`` (the network's peaks frame by frame), every set goes through
:class:`~peaknet_gui.pipeline.analyzer.FrameAnalyzer` the way ``peaknet find`` runs it: the run's
hot-pixel statistics primed first, the weights' operating point, powder-ring spots dropped.
Peaks are matched one-to-one within 2 px to the DIALS 3.12 lists in ``../shared/data/real``
(corner convention, 0.5 subtracted).  DIALS' default threshold is a baseline, not truth: faint
spots it leaves out count as false here (lattice truth: ``peaknet evaluate --lattice``).

Sets: ``thaumatin`` (Pilatus 6M hits 0001-0010), ``thaumatin_blanks`` (0016, 0017: peaks per
frame), ``cspad`` (LCLS thermolysin, 64 panels), ``cspad_tile`` (one CSPAD 2x1), ``jungfrau``
(10 frames of one JUNGFRAU module, 1-3-pixel spots), ``i03``, ``i23``, ``lcys``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from peaknet_gui.geometry.crystfel_geom import read_geom  # noqa: E402
from peaknet_gui.model.evaluate import read_spots_csv  # noqa: E402
from peaknet_gui.peaks.matching import match_peaks  # noqa: E402
from peaknet_gui.pipeline.analyzer import FrameAnalyzer  # noqa: E402
from peaknet_gui.pipeline.hot_scan import prime_hot_pixels  # noqa: E402
from peaknet_gui.pipeline.settings import FinderSettings  # noqa: E402
from peaknet_gui.sources import open_run  # noqa: E402

REAL = Path(os.environ.get("PEAKNET_REAL_DATA", REPO.parent / "shared" / "data" / "real"))


def _thau(names):
    d = REAL / "thaumatin_grid"
    return [str(d / f"thau_3_2_{n:04d}.cbf.bz2") for n in names], [d / f"thau_3_2_{n:04d}.cbf.spots.csv" for n in names], None


def sets() -> dict:
    """name -> (inputs, spot lists in frame order (None: blanks, no list scored), geometry path)."""
    cs = REAL / "thermolysin_cspad"
    jf = REAL / "jungfrau_module"
    ie = REAL / "image_examples"
    lc = REAL / "l_cysteine"
    return {
        "thaumatin": _thau(range(1, 11)),
        "thaumatin_blanks": (_thau((16, 17))[0], None, None),
        "cspad": ([str(cs / f"idx-20130301060858{k}_rawlayout.h5") for k in (401, 601)],
                  [cs / f"idx-20130301060858{k}.cbf.spots.csv" for k in (401, 601)], cs / "cspad_rawlayout_from_dxtbx.geom"),
        "cspad_tile": ([str(REAL / "cspad_tile" / "cxitut13_r10_32_cspad2x1.h5")],
                       [REAL / "cspad_tile" / "cxitut13_r10_32_cspad2x1.spots.csv"], REAL / "cspad_tile" / "cspad2x1.geom"),
        "jungfrau": ([str(jf / "jf_mod5_0-9.h5")], [jf / f"jf_mod5_{k:02d}.spots.csv" for k in range(10)], jf / "jf_mod5.geom"),
        "i03": ([str(ie / "DLS_I03_smargon_0001.cbf.gz")], [ie / "DLS_I03_smargon_0001.cbf.spots.csv"], None),
        "i23": ([str(ie / "DLS_I23_P12M_thau_00001.cbf.gz")], [ie / "DLS_I23_P12M_thau_00001.cbf.spots.csv"], None),
        "lcys": ([str(lc / "l-cyst_01_00001.cbf"), str(lc / "l-cyst_01_00002.cbf")],
                 [lc / "l-cyst_01_00001.cbf.spots.csv", lc / "l-cyst_01_00002.cbf.spots.csv"], None),
    }


def analysed_frames(inputs, spots, geom_path, weights, finder: FinderSettings):
    """(frame, result, found (n, 2), reference (m, 2) or None, analyzer) of every frame of a set,
    analysed as ``peaknet find`` runs it (the run's hot pixels primed first); the analyzer holds
    the geometry (``analyzer.geometry``)."""
    geom = read_geom(geom_path) if geom_path else None
    source = open_run(inputs if len(inputs) > 1 else inputs[0], geometry=geom)
    an = FrameAnalyzer("peaknet", weights=weights, device="cpu", geometry=geom or source.geometry(), finder=finder)
    prime_hot_pixels(source, an, range(len(source)))
    for i in range(len(source)):
        frame = source[i]
        res = an.analyze_one(frame)
        found = np.stack([res.peaks.fs, res.peaks.ss], 1) if len(res.peaks) else np.zeros((0, 2))
        ref = read_spots_csv(spots[i], geom) if spots is not None else None
        yield frame, res, found, ref, an


def run_set(name: str, inputs, spots, geom_path, weights, finder: FinderSettings) -> dict:
    t0 = time.perf_counter()
    tp = fp = fn = 0
    per = []
    an = None
    for frame, res, found, ref, an in analysed_frames(inputs, spots, geom_path, weights, finder):
        rec = {"frame": frame.event.lst_line(), "peaks": len(found), "hot_pixels": res.hot_pixels}
        if ref is not None:
            m = match_peaks(found, ref, 2.0)
            tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
            rec.update(reference=len(ref), tp=m.tp, recall=m.recall, precision=m.precision)
        per.append(rec)
    out = {"set": name, "frames": len(per), "seconds": time.perf_counter() - t0,
           "peaks_per_frame": float(np.mean([r["peaks"] for r in per])), "per_frame": per,
           "hot_pixels": an.hot_pixels.report().as_dict() if an is not None and an.hot_pixels else None}
    if spots is not None:
        rec = tp / (tp + fn) if tp + fn else float("nan")
        prec = tp / (tp + fp) if tp + fp else float("nan")
        out.update(recall=rec, precision=prec, f1=2 * rec * prec / (rec + prec) if rec + prec else 0.0,
                   tp=tp, fp=fp, fn=fn)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="weights (default: the shipped ones)")
    ap.add_argument("--sets", default=",".join(sets()), help="comma-separated set names")
    ap.add_argument("--min-pixel-snr", type=float, default=None)
    ap.add_argument("--min-confidence", type=float, default=None)
    ap.add_argument("--geom", action="append", default=[], metavar="SET=PATH",
                    help="use this CrystFEL geometry for a set instead of the shared one (e.g. cspad=gain25.geom: "
                         "the same detector with its gain stated); repeatable")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    if not REAL.is_dir():
        print(f"no real frames at {REAL}: nothing to do")
        return 0
    finder = FinderSettings(min_pixel_snr=args.min_pixel_snr, min_confidence=args.min_confidence)
    geoms = dict(g.split("=", 1) for g in args.geom)
    results = []
    print(f"{'set':18s} {'frames':>6s} {'recall':>7s} {'prec':>6s} {'F1':>6s} {'peaks/fr':>8s} {'hot px':>6s}")
    for name in args.sets.split(","):
        inputs, spots, geom = sets()[name]
        geom = geoms.get(name, geom)
        r = run_set(name, inputs, spots, geom, args.weights, finder)
        results.append(r)
        hp = (r["hot_pixels"] or {}).get("hot_pixels")
        print(f"{name:18s} {r['frames']:6d} {r.get('recall', float('nan')):7.3f} {r.get('precision', float('nan')):6.3f} "
              f"{r.get('f1', float('nan')):6.3f} {r['peaks_per_frame']:8.1f} {str(hp):>6s}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
