"""Sensitivity on the pattern_sim evaluation set: PeakNet, the project's peakfinder8 and CrystFEL's
peakfinder8 (thresholds tuned on the same frames) side by side against exact spot truth.

    PATH=/work/tools/prefix/bin:$PATH .venv/bin/python benchmarks/bench_sensitivity.py \\
        [--set-dir /work/runs/patternsim] [--sets lysozyme,thaumatin] [--weights W] [--no-index] [--json OUT]

The set comes from ``benchmarks/make_patternsim_set.py`` (``<set>.cxi``, ``.geom``, ``.cell``,
``_truth.csv``).  Finders:

* ``peaknet``: ``peaknet find`` with ``--weights`` (default: the shipped model) and its defaults;
* ``peaknet cC sS tT`` (``--peaknet-at C,S,T``, repeatable): the same network at another operating
  point (minimum confidence C, minimum pixel SNR S, segmentation threshold T, 0 = argmax) -- to
  study how the network ranks spots; a point chosen on these frames is not a held-out result;
* ``pf8 (project)``: ``peaknet find --algorithm peakfinder8`` with its defaults;
* ``pf8 (CrystFEL, tuned)``: ``indexamajig --peaks=peakfinder8`` with threshold / min-snr /
  min-pix-count swept on these very frames and the best F1 kept -- tuned on the test frames,
  so an upper bound for a hand-tuned expert finder, not a held-out figure.

Scoring (2 px, greedy one-to-one): recall on truth spots of SNR >= 6, by SNR bin (6-10, 10-20,
20-40, >= 40) and by spot size (``n_pixels``: 1, 2, 3, 4-9, >= 10); precision = found peaks
matched to any listed true spot (SNR >= 2: a peak on a real but faint spot is not false) / found
peaks.  Frames indexed: ``indexamajig`` (xgandalf, the set's cell) on each finder's peaks
(``--peaks=cxi`` from a CXI file holding the peaks and a link to the frames); CrystFEL's own
finder indexes with its tuned thresholds; in brackets the frames whose lattice is right (half or
more of the true SNR >= 6 spots within 2 px of a predicted reflection).  Needs ``indexamajig`` on PATH for the CrystFEL
finder and the indexing columns (they are left out without it).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from peaknet_gui.lattice.crystfel import IndexamajigJob, find_tool, run_indexamajig  # noqa: E402
from peaknet_gui.lattice.streamrefl import read_chunks  # noqa: E402
from peaknet_gui.peaks.matching import match_peaks  # noqa: E402

SNR_BINS = [(6, 10), (10, 20), (20, 40), (40, np.inf)]
SIZE_BINS = [(1, 1), (2, 2), (3, 3), (4, 9), (10, 10**9)]


def read_truth(path: Path) -> dict:
    out: dict = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            out.setdefault(int(r["frame"]), []).append((float(r["fs"]), float(r["ss"]), float(r["snr"]), int(r["n_pixels"])))
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def n_frames_of(cxi: Path) -> int:
    import h5py

    with h5py.File(cxi, "r") as f:
        return int(f["/entry_1/data_1/data"].shape[0])


def project_peaks(cxi: Path, geom: Path, work: Path, algorithm: str, weights=None, reuse: bool = False,
                  operating_point: tuple = None) -> dict:
    """frame index -> (n, 2) peaks of ``peaknet find``; ``operating_point`` (confidence, pixel SNR,
    segmentation threshold) instead of the weights' fitted one."""
    from peaknet_gui.export.stream_reader import read_stream

    out = work / (f"find_{algorithm}" if operating_point is None else f"find_{algorithm}_at_{'_'.join(f'{v:g}' for v in operating_point)}")
    if reuse and list(out.glob("*.stream")):
        return {ch.event_index or 0: np.stack([np.asarray(ch.peaks.fs, float), np.asarray(ch.peaks.ss, float)], axis=1)
                for ch in read_stream(next(out.glob("*.stream")))}
    cmd = [sys.executable, "-m", "peaknet_gui.cli.main", "find", str(cxi), "--geom", str(geom), "--out", str(out),
           "--formats", "stream", "--min-peaks", "0", "--no-progress", "--algorithm", algorithm, "--device", "cpu"]
    if weights:
        cmd += ["--weights", str(weights)]
    if operating_point is not None:
        conf, psnr, thr = operating_point
        cmd += ["--min-confidence", f"{conf:g}", "--min-pixel-snr", f"{psnr:g}"]
        if thr > 0:
            cmd += ["--peak-threshold", f"{thr:g}"]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"peaknet find failed: {r.stderr[-2000:]}")
    res = {}
    for ch in read_stream(next(out.glob("*.stream"))):
        res[ch.event_index or 0] = np.stack([np.asarray(ch.peaks.fs, float), np.asarray(ch.peaks.ss, float)], axis=1)
    print(f"  {algorithm}: {sum(len(v) for v in res.values())} peaks in {time.perf_counter() - t:.0f} s")
    return res


def crystfel_peaks(stream: str) -> dict:
    return {int(c.event.strip("/") or 0): np.stack([c.peaks_fs, c.peaks_ss], axis=1) for c in read_chunks(stream)}


def inputs_of(cxi: Path, n: int) -> list:
    return [f"{cxi.resolve()} //{i}" for i in range(n)]


def score(peaks: dict, truth: dict, n: int, radius: float = 2.0) -> dict:
    tp_snr = {b: [0, 0] for b in SNR_BINS}
    tp_size = {b: [0, 0] for b in SIZE_BINS}
    found = matched = 0
    for i in range(n):
        t = truth.get(i, np.zeros((0, 4)))
        f = peaks.get(i, np.zeros((0, 2)))
        m = match_peaks(f, t[:, :2], radius)
        hit = np.zeros(len(t), bool)
        hit[m.pairs[:, 1]] = True
        found += len(f)
        matched += m.tp
        strong = t[:, 2] >= 6
        for b in SNR_BINS:
            sel = strong & (t[:, 2] >= b[0]) & (t[:, 2] < b[1])
            tp_snr[b][0] += int(hit[sel].sum())
            tp_snr[b][1] += int(sel.sum())
        for b in SIZE_BINS:
            sel = strong & (t[:, 3] >= b[0]) & (t[:, 3] <= b[1])
            tp_size[b][0] += int(hit[sel].sum())
            tp_size[b][1] += int(sel.sum())
    rec_n = sum(v[0] for v in tp_snr.values())
    rec_d = sum(v[1] for v in tp_snr.values())
    p = matched / found if found else 1.0
    r = rec_n / rec_d if rec_d else float("nan")
    return dict(found=found, precision=p, recall=r, f1=2 * p * r / (p + r) if p + r else 0.0,
                snr_bins={f"{a:g}-{b:g}": v for (a, b), v in tp_snr.items()},
                size_bins={f"{a}-{b}": v for (a, b), v in tp_size.items()})


def write_peaks_cxi(path: Path, cxi: Path, peaks: dict, n: int) -> None:
    """A CXI file with ``peaks`` in ``/entry_1/result_1`` and a link to ``cxi``'s frames."""
    import h5py

    width = max([len(v) for v in peaks.values()] + [1])
    with h5py.File(path, "w") as f:
        f["/entry_1/data_1/data"] = h5py.ExternalLink(str(cxi.resolve()), "/entry_1/data_1/data")
        npk = np.zeros(n, np.int32)
        x = np.zeros((n, width), np.float32)
        y = np.zeros((n, width), np.float32)
        for i in range(n):
            v = peaks.get(i, np.zeros((0, 2)))
            npk[i] = len(v)
            x[i, : len(v)], y[i, : len(v)] = v[:, 0], v[:, 1]
        f["/entry_1/result_1/nPeaks"] = npk
        f["/entry_1/result_1/peakXPosRaw"] = x
        f["/entry_1/result_1/peakYPosRaw"] = y
        f["/entry_1/result_1/peakTotalIntensity"] = np.ones((n, width), np.float32)


def indexed_frames(stream: str, truth: dict) -> tuple:
    """(frames indexed, frames indexed with the right lattice).  Right: at least half of the
    frame's true spots of SNR >= 6 lie within 2 px of a reflection the lattice predicts."""
    from scipy.spatial import cKDTree

    n = right = 0
    for c in read_chunks(stream):
        if not c.indexed:
            continue
        n += 1
        t = truth.get(int(c.event.strip("/") or 0), np.zeros((0, 4)))
        t = t[t[:, 2] >= 6]
        r = c.crystals[0].reflections
        if len(t) and len(r):
            d, _ = cKDTree(np.stack([r.fs, r.ss], axis=1)).query(t[:, :2])
            right += int(np.mean(d <= 2.0) >= 0.5)
    return n, right


def tune_crystfel(cxi: Path, geom: Path, work: Path, truth: dict, n: int, meta: dict, grid: str) -> tuple:
    det = meta["detector"]
    gain, offset = det["adu_per_photon"], det["offset_adu"]
    if grid == "quick":
        thr_ph, snrs, pixs = (2, 5, 10), (4.0, 5.0, 6.0), (1, 2)
    elif grid == "medium":
        thr_ph, snrs, pixs = (1, 2, 4, 8), (4.0, 5.0, 6.0), (1, 2)
    else:
        thr_ph, snrs, pixs = (1, 2, 3, 5, 8, 12, 20), (3.5, 4.0, 4.5, 5.0, 6.0, 8.0), (1, 2, 3)
    best = None
    rows = []
    for tp, snr, pix in itertools.product(thr_ph, snrs, pixs):
        thr = offset + tp * gain
        out = work / f"pf8_t{tp}_s{snr:g}_p{pix}.stream"
        if not out.exists():
            run_indexamajig(IndexamajigJob(inputs_of(cxi, n), str(geom), str(out), indexing="none", threshold=thr,
                                           min_snr=snr, min_pix_count=pix, max_pix_count=400))
        s = score(crystfel_peaks(str(out)), truth, n)
        rows.append((tp, snr, pix, s["f1"], s["precision"], s["recall"]))
        if best is None or s["f1"] > best[0]["f1"]:
            best = (s, dict(threshold_photons=tp, threshold_adu=thr, min_snr=snr, min_pix_count=pix))
    return best[0], best[1], rows


def index_with(cxi: Path, geom: Path, cell: Path, work: Path, name: str, peaks: dict, n: int, truth: dict,
               reuse: bool = False) -> tuple:
    pc = work / f"peaks_{name}.cxi"
    out = work / f"index_{name}.stream"
    if not (reuse and out.exists()):
        write_peaks_cxi(pc, cxi, peaks, n)
        run_indexamajig(IndexamajigJob(inputs_of(pc, n), str(geom), str(out), cell=str(cell), peaks="cxi"))
    return indexed_frames(str(out), truth)


def fmt_row(name: str, s: dict, n_strong_snr: dict, indexed) -> str:
    def frac(v):
        return f"{v[0] / v[1]:.2f}" if v[1] else "  - "

    snr = " ".join(f"{frac(v):>5s}" for v in s["snr_bins"].values())
    size = " ".join(f"{frac(v):>5s}" for v in s["size_bins"].values())
    idx = "   -" if indexed is None else f"{indexed[0]:4d} ({indexed[1]})"
    return f"{name:26s} {s['found']:6d} {s['precision']:5.3f} {s['recall']:5.3f} | {snr} | {size} | {idx}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set-dir", default="/work/runs/patternsim")
    ap.add_argument("--sets", default="lysozyme,thaumatin")
    ap.add_argument("--weights", help="PeakNet weights (default: the shipped model)")
    ap.add_argument("--work", help="work folder (default: <set-dir>/bench_<weights name>)")
    ap.add_argument("--grid", default="medium", choices=("quick", "medium", "full"),
                    help="CrystFEL peakfinder8 sweep: threshold (photons above the offset) x min-snr x min-pix-count; "
                    "quick 3x3x2, medium 4x3x2 (default), full 7x6x3")
    ap.add_argument("--no-index", action="store_true", help="skip the indexing columns")
    ap.add_argument("--reuse", action="store_true", help="reuse the finders' output and streams already in the work folder")
    ap.add_argument("--json", help="write all figures here")
    ap.add_argument("--peaknet-at", action="append", default=[], metavar="CONF,PSNR,THR",
                    help="also PeakNet at this operating point (minimum confidence, minimum pixel SNR, segmentation "
                    "threshold; 0 = argmax) instead of the weights' fitted one; repeatable.  For study only: an "
                    "operating point chosen on these frames is not a result")
    ap.add_argument("--peaknet-only", action="store_true", help="only PeakNet rows (no peakfinder8, no indexing)")
    args = ap.parse_args(argv)
    try:
        extra_points = [tuple(float(v) for v in s.split(",")) for s in args.peaknet_at]
    except ValueError:
        ap.error("--peaknet-at wants CONF,PSNR,THR")
    if any(len(p) != 3 for p in extra_points):
        ap.error("--peaknet-at wants CONF,PSNR,THR")
    sd = Path(args.set_dir)
    tag = Path(args.weights).stem if args.weights else "shipped"
    have_cf = find_tool("indexamajig") is not None and not args.peaknet_only
    if not have_cf:
        print("indexamajig not on PATH: CrystFEL's peakfinder8 and the indexing columns are left out")
    report = {}
    for name in args.sets.split(","):
        cxi, geom, cell = sd / f"{name}.cxi", sd / f"{name}.geom", sd / f"{name}.cell"
        truth = read_truth(sd / f"{name}_truth.csv")
        meta = json.loads((sd / f"{name}_frames.json").read_text())
        n = n_frames_of(cxi)
        work = Path(args.work) if args.work else sd / f"bench_{tag}"
        work = work / name
        work.mkdir(parents=True, exist_ok=True)
        print(f"{name}: {n} frames")
        finders = {"peaknet": project_peaks(cxi, geom, work, "peaknet", args.weights, args.reuse)}
        tags = {"peaknet": "peaknet"}  # finder -> name of its indexing files in the work folder
        for op in extra_points:
            key = f"peaknet c{op[0]:g} s{op[1]:g} t{op[2]:g}"
            finders[key] = project_peaks(cxi, geom, work, "peaknet", args.weights, args.reuse, operating_point=op)
            tags[key] = key.replace(" ", "_")
        if not args.peaknet_only:
            finders["pf8 (project)"] = project_peaks(cxi, geom, work, "peakfinder8", reuse=args.reuse)
            tags["pf8 (project)"] = "pf8"
        scores = {k: score(v, truth, n) for k, v in finders.items()}
        tuned = None
        if have_cf:
            s, tuned, sweep = tune_crystfel(cxi, geom, work, truth, n, meta, args.grid)
            key = "pf8 (CrystFEL, tuned)"
            scores[key] = s
            report.setdefault("sweeps", {})[name] = sweep
            finders[key] = crystfel_peaks(str(work / f"pf8_t{tuned['threshold_photons']}_s{tuned['min_snr']:g}_p{tuned['min_pix_count']}.stream"))
            tags[key] = "pf8_cf"
        indexed = {}
        if have_cf and not args.no_index:
            for k, v in finders.items():
                indexed[k] = index_with(cxi, geom, cell, work, tags[k], v, n, truth, args.reuse)
        allt = np.concatenate([t for t in truth.values()]) if truth else np.zeros((0, 4))
        strong = allt[allt[:, 2] >= 6]
        hdr_snr = " ".join(f"{f'{a:g}-{b:g}' if np.isfinite(b) else f'>={a:g}':>5s}" for a, b in SNR_BINS)
        hdr_size = " ".join(f"{(str(a) if a == b else (f'{a}-{b}' if b < 10**9 else f'>={a}')):>5s}" for a, b in SIZE_BINS)
        n_snr = " ".join(f"{int(np.sum((strong[:, 2] >= a) & (strong[:, 2] < b))):5d}" for a, b in SNR_BINS)
        n_size = " ".join(f"{int(np.sum((strong[:, 3] >= a) & (strong[:, 3] <= b))):5d}" for a, b in SIZE_BINS)
        print(f"\n{name}: {n} frames, {len(strong)} true spots of SNR >= 6 ({len(allt)} listed with SNR >= 2); "
              f"match radius 2 px; recall on SNR >= 6")
        print(f"{'finder':26s} {'found':>6s} {'prec':>5s} {'rec':>5s} | {hdr_snr} | {hdr_size} | indexed/{n} (right)")
        print(f"{'(true spots per bin)':26s} {'':6s} {'':5s} {'':5s} | {n_snr} | {n_size} |")
        for k, s in scores.items():
            print(fmt_row(k, s, {}, indexed.get(k)))
        if tuned:
            print(f"CrystFEL peakfinder8 tuned on these frames: threshold {tuned['threshold_adu']:.1f} ADU "
                  f"(offset + {tuned['threshold_photons']} photons), min-snr {tuned['min_snr']:g}, "
                  f"min-pix-count {tuned['min_pix_count']}")
        report[name] = dict(frames=n, true_spots_snr6=int(len(strong)), scores=scores, indexed=indexed, tuned=tuned,
                            weights=args.weights or "shipped")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
