"""``peaknet evaluate --lattice CELL``: lattice truth on real frames and finders scored on it.

1. Each frame is written for indexamajig (:mod:`.frames`) and indexed (xgandalf, the cell) from
   a generous candidate list: CrystFEL's own peakfinder8 with low thresholds (``--threshold``
   "auto" = the frame's median + 2 robust sigmas, ``--min-snr`` 5, ``--min-pix-count`` 2 by
   default) -- a finder that is none of the ones scored.  A frame that list does not index is
   tried once more with a stricter one (min-snr + 2, min-pix-count + 1).
2. The reflections the lattice predicts on the detector and integrates with I/sigma(I) >= 3
   (``--min-i-sigma``) are the truth (:mod:`.streamrefl`).
3. Finders are scored (:mod:`.scoring`): PeakNet (``peaknet find`` with the given weights and
   their operating point), the reference spot lists beside the frames (``*.spots.csv``: DIALS),
   and the candidate list itself, each with the rotated-lattice control.
4. With spot lists, the peaks each other finder adds to them (no listed spot within 2 px) are
   scored on the lattice too (:func:`beyond_reference`): precision against a list counts them
   all as false; the lattice tells diffraction from noise.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..errors import InputError
from .crystfel import IndexamajigJob, parse_cell_spec, run_indexamajig, write_cell
from .frames import PreparedFrame, prepare_frames
from .scoring import DEFAULT_CONTROL_DEG, DetectorPlane, LatticeScore, lattice_score
from .streamrefl import Chunk, read_chunks

log = logging.getLogger(__name__)


@dataclass
class FrameTruth:
    name: str
    indexed: bool
    n_candidates: int
    cell: Optional[tuple] = None
    fs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    i_sigma: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class CandidateSettings:
    threshold: Optional[float] = None  # None: auto (median + 2 robust sigmas)
    min_snr: float = 5.0
    min_pix_count: int = 2
    local_bg_radius: int = 3


def index_frames(frames: List[PreparedFrame], cell_path: str, workdir: Path, cand: CandidateSettings,
                 threads: int = 2, reuse: bool = False) -> Dict[str, tuple]:
    """name -> (FrameTruth, candidate peak positions (n, 2) data coords).  ``reuse``: read the
    streams a previous run left in ``workdir`` instead of indexing again."""
    out: Dict[str, tuple] = {}
    for k, fr in enumerate(frames):
        thr = cand.threshold if cand.threshold is not None else fr.median + 2.0 * fr.noise
        chunks = []
        # a frame the generous list does not index is tried once more with a stricter list
        for tag, snr, pix in (("", cand.min_snr, cand.min_pix_count), ("_strict", cand.min_snr + 2, cand.min_pix_count + 1)):
            job = IndexamajigJob([fr.input_line], fr.geometry_path, str(workdir / f"index_{k:03d}{tag}.stream"),
                                 cell=cell_path, threshold=thr, min_snr=snr, min_pix_count=pix,
                                 local_bg_radius=cand.local_bg_radius, threads=threads)
            stream = Path(job.out_stream)
            chunks = read_chunks(stream if reuse and stream.exists() else run_indexamajig(job))
            if chunks and chunks[0].indexed:
                break
        if not chunks:
            out[fr.name] = (FrameTruth(fr.name, False, 0), np.zeros((0, 2)))
            continue
        c = chunks[0]
        cand_xy = np.stack([c.peaks_fs, c.peaks_ss], axis=1)
        t = FrameTruth(fr.name, c.indexed, len(c.peaks_fs))
        if c.indexed:
            cr = c.crystals[0]
            t.cell, t.fs, t.ss, t.i_sigma = cr.cell, cr.reflections.fs, cr.reflections.ss, cr.reflections.i_over_sigma
        out[fr.name] = (t, cand_xy)
    return out


def peaknet_peaks(sources: List[str], workdir: Path, *, geom: Optional[str] = None, weights: Optional[str] = None,
                  algorithm: str = "peaknet", extra: Optional[list] = None, reuse: bool = False) -> Dict[str, np.ndarray]:
    """frame file name -> (n, 2) peaks of ``peaknet find`` (run as a subprocess, defaults)."""
    from ..export.stream_reader import read_stream

    out_dir = workdir / f"find_{algorithm}"
    if reuse and sorted(out_dir.glob("*.stream")):
        return {Path(ch.filename).name: np.stack([np.asarray(ch.peaks.fs, float), np.asarray(ch.peaks.ss, float)], axis=1)
                for ch in read_stream(sorted(out_dir.glob("*.stream"))[0])}
    cmd = [sys.executable, "-m", "peaknet_gui.cli.main", "find", *sources, "--out", str(out_dir), "--formats", "stream",
           "--min-peaks", "0", "--no-progress", "--algorithm", algorithm, "--device", "cpu"]
    if geom:
        cmd += ["--geom", geom]
    if weights:
        cmd += ["--weights", weights]
    cmd += list(extra or [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise InputError(f"peaknet find failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
    streams = sorted(out_dir.glob("*.stream"))
    if not streams:
        raise InputError(f"{out_dir}: peaknet find wrote no stream")
    res: Dict[str, np.ndarray] = {}
    for ch in read_stream(streams[0]):
        res[Path(ch.filename).name] = np.stack([np.asarray(ch.peaks.fs, float), np.asarray(ch.peaks.ss, float)], axis=1)
    return res


def spot_list_peaks(paths: List[Path], geometry=None) -> Dict[str, np.ndarray]:
    from ..model.evaluate import find_spots_file, read_spots_csv

    out = {}
    for p in paths:
        s = find_spots_file(p)
        if s is not None:
            out[p.name] = read_spots_csv(s, geometry)
    return out


def _plane(fr: PreparedFrame) -> DetectorPlane:
    """The frame's detector plane: the lab plane of its panels, or the data array of one panel."""
    return DetectorPlane(fr.geometry.panels if len(fr.geometry.panels) > 1 else None, fr.shape)


def score_finders(frames: List[PreparedFrame], truth: Dict[str, tuple], finders: Dict[str, Dict[str, np.ndarray]], *,
                  radius: float = 2.0, min_i_sigma: float = 3.0, control_deg: float = DEFAULT_CONTROL_DEG) -> dict:
    """{finder: {frame: LatticeScore}} over the indexed frames."""
    res: dict = {f: {} for f in finders}
    for fr in frames:
        t, _ = truth[fr.name]
        if not t.indexed:
            continue
        plane = _plane(fr)
        beam = (0.0, 0.0) if len(fr.geometry.panels) > 1 else fr.geometry.beam_center(0)
        pred = plane.to_plane(t.fs, t.ss)
        for name, peaks in finders.items():
            if fr.name not in peaks:
                continue
            xy = peaks[fr.name]
            found = plane.to_plane(xy[:, 0], xy[:, 1]) if len(xy) else np.zeros((0, 2))
            res[name][fr.name] = lattice_score(found, pred, t.i_sigma >= min_i_sigma, radius=radius, beam_xy=beam,
                                               control_deg=control_deg, on_detector=plane.on_detector)
    return res


def beyond_reference(frames: List[PreparedFrame], finders: Dict[str, Dict[str, np.ndarray]], reference: str,
                     radius: float = 2.0) -> Dict[str, Dict[str, np.ndarray]]:
    """{finder: {frame: its peaks with no ``reference`` peak within ``radius`` px}} of every finder
    but the reference (distances in the detector plane, as the scores).  Scored against the
    lattice (:func:`score_finders`) they say whether what a finder adds to a reference list (DIALS')
    is diffraction or noise: a list's unlisted faint spots count against precision measured
    against it, yet lie on the lattice."""
    from scipy.spatial import cKDTree

    out: Dict[str, Dict[str, np.ndarray]] = {}
    ref = finders.get(reference, {})
    for name, peaks in finders.items():
        if name == reference:
            continue
        out[name] = {}
        for fr in frames:
            if fr.name not in peaks or fr.name not in ref:
                continue
            plane = _plane(fr)
            xy, r = peaks[fr.name], ref[fr.name]
            if len(xy) == 0 or len(r) == 0:
                out[name][fr.name] = xy
                continue
            d, _ = cKDTree(plane.to_plane(r[:, 0], r[:, 1])).query(plane.to_plane(xy[:, 0], xy[:, 1]), k=1)
            out[name][fr.name] = xy[~(d <= radius)]
    return out


def _f(v: float) -> str:
    return "  n/a" if not np.isfinite(v) else f"{v:.3f}"


def format_beyond(beyond: dict, reference: str) -> str:
    lines = [f"peaks that the {reference} lack (none within 2 px): on the lattice?",
             f"{'finder':14s} {'frames':>6s} {'peaks':>6s} {'on-lattice':>10s} {'(control)':>9s}"]
    for finder, per in beyond.items():
        tot = sum(per.values(), LatticeScore())
        lines.append(f"{finder:14s} {len(per):6d} {tot.n_found:6d} {_f(tot.on_lattice_fraction):>10s} "
                     f"{_f(tot.control_on_lattice):>9s}")
    return "\n".join(lines)


def format_report(truth: Dict[str, tuple], scores: dict, min_i_sigma: float) -> str:
    lines = [f"{'frame':34s} idx  cand  pred strong(I/s>={min_i_sigma:g})"]
    for name, (t, _) in truth.items():
        n_strong = int(np.sum(t.i_sigma >= min_i_sigma)) if t.indexed else 0
        lines.append(f"{name:34s} {'yes' if t.indexed else ' no'} {t.n_candidates:5d} {len(t.fs):5d} {n_strong:6d}")
    lines.append("")
    lines.append(f"{'finder':14s} {'frames':>6s} {'found':>6s} {'strong':>6s} {'lat.recall':>10s} {'(control)':>9s} "
                 f"{'on-lattice':>10s} {'(control)':>9s}")
    for finder, per in scores.items():
        tot = sum(per.values(), LatticeScore())
        lines.append(f"{finder:14s} {len(per):6d} {tot.n_found:6d} {tot.n_strong:6d} {_f(tot.lattice_recall):>10s} "
                     f"{_f(tot.control_recall):>9s} {_f(tot.on_lattice_fraction):>10s} {_f(tot.control_on_lattice):>9s}")
    return "\n".join(lines)


def run_lattice(args) -> int:
    """The CLI entry (``peaknet evaluate --lattice``)."""
    import glob
    import tempfile

    paths: List[Path] = []
    for p in args.data:
        hits = sorted(glob.glob(p)) if any(c in p for c in "*?[") else [p]
        paths.extend(Path(h) for h in (hits or [p]))
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: file not found")
    cell = parse_cell_spec(args.lattice)
    geometry = None
    if args.geom:
        from ..geometry import read_geom

        geometry = read_geom(args.geom)
    work = Path(args.work_dir) if getattr(args, "work_dir", None) else Path(tempfile.mkdtemp(prefix="peaknet_lattice_"))
    work.mkdir(parents=True, exist_ok=True)
    cell_path = write_cell(cell, work / "target.cell")
    frames = prepare_frames(paths, work / "frames", geometry, args.geom)
    if len({f.name for f in frames}) != len(frames):
        raise InputError("--lattice: give single-frame files (a file held several frames)")
    cand = CandidateSettings(threshold=args.candidate_threshold, min_snr=args.candidate_min_snr,
                             min_pix_count=args.candidate_min_pix)
    reuse = bool(getattr(args, "reuse", False))
    truth = index_frames(frames, cell_path, work, cand, threads=max(1, args.threads), reuse=reuse)
    finders: Dict[str, Dict[str, np.ndarray]] = {}
    finders["peaknet"] = peaknet_peaks([str(p) for p in paths], work, geom=args.geom, weights=args.weights, reuse=reuse)
    dials = spot_list_peaks(paths, geometry)
    if dials:
        finders["spot lists"] = dials
    finders["candidates"] = {k: v[1] for k, v in truth.items()}
    scores = score_finders(frames, truth, finders, radius=args.radius, min_i_sigma=args.min_i_sigma,
                           control_deg=args.control_deg)
    beyond = {}
    if dials:
        beyond = score_finders(frames, truth, beyond_reference(frames, finders, "spot lists"), radius=args.radius,
                               min_i_sigma=args.min_i_sigma, control_deg=args.control_deg)
    if args.json:
        rep = {"cell": cell.parameters, "work_dir": str(work), "min_i_sigma": args.min_i_sigma, "radius": args.radius,
               "control_deg": args.control_deg,
               "frames": {n: {"indexed": t.indexed, "candidates": t.n_candidates, "cell": t.cell,
                              "predicted": len(t.fs), "strong": int(np.sum(t.i_sigma >= args.min_i_sigma))}
                          for n, (t, _) in truth.items()},
               "finders": {f: {"total": sum(per.values(), LatticeScore()).as_dict(),
                               "per_frame": {n: s.as_dict() for n, s in per.items()}} for f, per in scores.items()},
               "beyond_spot_lists": {f: sum(per.values(), LatticeScore()).as_dict() for f, per in beyond.items()}}
        print(json.dumps(rep, indent=2, default=float))
    else:
        print(f"lattice truth: {cell.lattice_type} {cell.centering} {' '.join(f'{v:g}' for v in cell.parameters)}; "
              f"predicted reflections with I/sigma >= {args.min_i_sigma:g}; match radius {args.radius:g} px; "
              f"control: lattice rotated {args.control_deg:g} deg about the beam; work dir {work}")
        print(format_report(truth, scores, args.min_i_sigma))
        if beyond:
            print()
            print(format_beyond(beyond, "spot lists"))
    return 0
