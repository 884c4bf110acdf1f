"""Scoring PeakNet on labelled (simulated) runs and on real frames with reference spot lists.

Per frame the network's class map is the argmax of its logits (normalised per panel and run per
panel as the predictor does); peaks are the 8-connected components of the peak class
(:func:`~peaknet_gui.peaks.components.peaks_from_mask`, intensity-weighted centroids) whose
highest peak probability reaches ``min_confidence`` and whose brightest pixel reaches
``min_pixel_snr`` local-background sigmas (the weights' operating point, :mod:`.operating_point`;
0 and 0 keep every component), without the spots of powder rings
(:mod:`peaknet_gui.peaks.rings`, as ``peaknet find`` and the GUI drop them; needs the frame's
geometry: the ``.geom`` beside a labelled run, the real frame's own) unless
``drop_ring_spots`` is False.  The artifact pixels scored are the program's auto-mask: the
network's artifact class, the discs of powder-ring spots and, unless ``whole_rings`` is False,
the powder rings followed along their arcs (:mod:`peaknet_gui.masks.powder_rings`).

Labelled runs (``/entry_1/data_1/labels``, truth peaks in ``/entry_1/result_1``):

* ``iou_background``, ``iou_peak``, ``iou_artifact``: pixel IoU per class over all labelled pixels
  of all frames (sums of intersections / sums of unions);
* ``peak_precision``, ``peak_recall``, ``peak_f1``: found peaks matched greedily one-to-one to
  the truth (label-1) peaks within ``radius`` (2 px); an unmatched found peak that matches a
  marginal (label-255, "not labelled") spot of the simulator or a faint true reflection (label 0,
  expected SNR >= 2: real, too weak to require -- CrystFEL's ``pattern_sim`` benchmark and the
  lattice truth count such a peak as true as well), or whose centroid pixel is labelled 255, is
  neither a hit nor a false positive (``peak_marginal`` counts them);
* ``peak_recall_snr6`` / ``peak_f1_snr6``: recall on the truth peaks with ``peakSNR >= 6`` and
  the F1 of that recall with the precision above (a found peak that matches a weaker true peak
  is not a false positive);
* ``artifact_iou``: IoU of the artifact class (the auto-mask above) on frames that have
  artifact pixels;
* ``masked_fraction_clean``: fraction of usable pixels masked on frames without any artifact
  label.

Real frames (``*.spots.csv`` from DIALS: ``panel, x_fast_px, y_slow_px, ...`` in the corner
convention, 0.5 is subtracted; CSPAD lists carry ``raw_x, raw_y`` in the raw slab):
precision/recall/F1 within ``radius`` and peaks per frame.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import InputError
from ..masks.powder_rings import mask_powder_rings
from ..peaks.components import peaks_from_mask
from ..peaks.filters import ConfidentTier, passes_operating_point, peak_mask_from_probabilities
from ..peaks.matching import match_peaks
from ..peaks.peaklist import PeakList
from ..peaks.rings import equivalent_polar, powder_ring_peaks
from .normalize import normalize
from .unet import forward_padded

log = logging.getLogger(__name__)

Panels = Optional[List[Tuple[slice, slice]]]


@torch.no_grad()
def predict_maps(net, data: np.ndarray, bad: Optional[np.ndarray] = None, panels: Panels = None,
                 device="cpu") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 class map -- 0 background, 1 peak, 2 artifact, the argmax --, float32 peak-class
    and artifact-class probabilities) of one frame; per panel when ``panels`` are given (pixels
    outside every panel -> class 0, probabilities 0)."""
    was_training = net.training
    net.eval()
    image = normalize(data, bad, panels=panels)
    out = np.zeros(data.shape, dtype=np.uint8)
    prob = np.zeros(data.shape, dtype=np.float32)
    aprob = np.zeros(data.shape, dtype=np.float32)
    regions = panels if panels else [(slice(0, data.shape[0]), slice(0, data.shape[1]))]
    groups: dict = {}
    for sl in regions:
        groups.setdefault(image[sl].shape, []).append(sl)
    for shape, sls in groups.items():
        for i in range(0, len(sls), 16):
            chunk = sls[i : i + 16]
            x = torch.from_numpy(np.stack([image[sl] for sl in chunk])[:, None]).to(device)
            logits = forward_padded(net, x)
            cls = logits.argmax(1).to(torch.uint8).cpu().numpy()
            sm = torch.softmax(logits.float(), 1)
            pk, ar = sm[:, 1].cpu().numpy(), sm[:, 2].cpu().numpy()
            for sl, c, p, a in zip(chunk, cls, pk, ar):
                out[sl] = c
                prob[sl] = p
                aprob[sl] = a
    if was_training:
        net.train()
    return out, prob, aprob


def thresholded_classes(pred: np.ndarray, peak_prob: np.ndarray, artifact_prob: np.ndarray,
                        peak_threshold: Optional[float]) -> np.ndarray:
    """The class map with the peak class where ``peak_prob >= peak_threshold`` (None: ``pred``,
    the argmax), as :func:`~peaknet_gui.peaks.filters.peak_mask_from_probabilities` makes it for
    the program; argmax peak pixels below the threshold become background."""
    if peak_threshold is None:
        return pred
    peak = peak_mask_from_probabilities(peak_prob, artifact_prob, peak_threshold)
    out = pred.copy()
    out[(pred == 1) & ~peak] = 0
    out[peak] = 1
    return out


def _cores(argmax: np.ndarray, peak_threshold: Optional[float]) -> Optional[np.ndarray]:
    """The model's own peak pixels, at which components of a thresholded peak mask are split
    (:func:`~peaknet_gui.peaks.components.split_at_cores`), as the program does; None at argmax."""
    return None if peak_threshold is None else argmax == 1


def predict_classes(net, data: np.ndarray, bad: Optional[np.ndarray] = None, panels: Panels = None,
                    device="cpu") -> np.ndarray:
    """uint8 class map (0 background, 1 peak, 2 artifact) of one frame (:func:`predict_maps`)."""
    return predict_maps(net, data, bad, panels, device=device)[0]


@dataclass
class Scores:
    """Accumulated counts over frames; :meth:`summary` turns them into the figures."""

    inter: np.ndarray = field(default_factory=lambda: np.zeros(3))
    union: np.ndarray = field(default_factory=lambda: np.zeros(3))
    tp: int = 0
    fp: int = 0
    fn: int = 0
    strong_total: int = 0
    strong_found: int = 0
    art_inter: float = 0.0
    art_union: float = 0.0
    clean_masked: float = 0.0
    clean_pixels: float = 0.0
    frames: int = 0
    marginal_found: int = 0
    peaks_found: int = 0
    peaks_per_frame: list = field(default_factory=list)
    per_frame: list = field(default_factory=list)
    by_size: dict = field(default_factory=dict)  # truth pixel-count bin -> [total, found]
    by_snr: dict = field(default_factory=dict)  # truth SNR bin -> [total, found]

    def add_pixels(self, pred: np.ndarray, labels: np.ndarray, usable: np.ndarray) -> None:
        lab = labels != 255
        for c in range(3):
            p, t = (pred == c) & lab, (labels == c) & lab
            self.inter[c] += np.count_nonzero(p & t)
            self.union[c] += np.count_nonzero(p | t)
        if (labels == 2).any():
            p, t = (pred == 2) & lab, labels == 2
            self.art_inter += np.count_nonzero(p & t)
            self.art_union += np.count_nonzero(p | t)
        elif lab.any():
            self.clean_masked += np.count_nonzero((pred == 2) & usable & lab)
            self.clean_pixels += np.count_nonzero(usable & lab)

    def add_peaks(self, found_xy: np.ndarray, ref_xy: np.ndarray, ref_snr: Optional[np.ndarray], radius: float,
                  name: str = "", marginal_xy: Optional[np.ndarray] = None, ref_npix: Optional[np.ndarray] = None) -> dict:
        m = match_peaks(found_xy, ref_xy, radius)
        fp = m.fp
        n_marginal = 0
        if marginal_xy is not None and len(marginal_xy) and fp:
            unmatched = np.ones(len(found_xy), dtype=bool)
            unmatched[m.pairs[:, 0]] = False
            n_marginal = match_peaks(found_xy[unmatched], marginal_xy, radius).tp
            fp -= n_marginal
        self.tp += m.tp
        self.fp += fp
        self.fn += m.fn
        self.marginal_found += n_marginal
        self.frames += 1
        self.peaks_found += len(found_xy)
        self.peaks_per_frame.append(len(found_xy))
        rec = {"frame": name, "found": len(found_xy), "reference": len(ref_xy), **m.as_dict()}
        if marginal_xy is not None:
            rec.update(fp=fp, marginal_found=n_marginal, precision=m.tp / (m.tp + fp) if m.tp + fp else 1.0)
        if ref_snr is not None and len(ref_snr) == len(ref_xy):
            strong = ref_snr >= 6
            matched = np.zeros(len(ref_xy), dtype=bool)
            if len(m.pairs):
                matched[m.pairs[:, 1]] = True
            self.strong_total += int(strong.sum())
            self.strong_found += int((matched & strong).sum())
            rec["strong"] = int(strong.sum())
            rec["strong_found"] = int((matched & strong).sum())
            _add_binned(self.by_snr, ref_snr, matched, SNR_BINS)
        if ref_npix is not None and len(ref_npix) == len(ref_xy):
            matched = np.zeros(len(ref_xy), dtype=bool)
            if len(m.pairs):
                matched[m.pairs[:, 1]] = True
            _add_binned(self.by_size, ref_npix, matched, SIZE_BINS)
        self.per_frame.append(rec)
        return rec

    def summary(self) -> dict:
        d: dict = {"frames": self.frames}
        if self.union.sum() > 0:
            for c, name in enumerate(("background", "peak", "artifact")):
                d[f"iou_{name}"] = float(self.inter[c] / self.union[c]) if self.union[c] else float("nan")
        prec = self.tp / (self.tp + self.fp) if (self.tp + self.fp) else 1.0
        rec = self.tp / (self.tp + self.fn) if (self.tp + self.fn) else 1.0
        d.update(peak_tp=self.tp, peak_fp=self.fp, peak_fn=self.fn, peak_marginal=self.marginal_found,
                 peak_precision=prec, peak_recall=rec,
                 peak_f1=2 * prec * rec / (prec + rec) if prec + rec else 0.0,
                 peaks_per_frame=float(np.mean(self.peaks_per_frame)) if self.peaks_per_frame else 0.0,
                 max_peaks_per_frame=int(max(self.peaks_per_frame)) if self.peaks_per_frame else 0)
        if self.strong_total:
            r6 = self.strong_found / self.strong_total
            d.update(peak_recall_snr6=r6, peak_f1_snr6=2 * prec * r6 / (prec + r6) if prec + r6 else 0.0,
                     strong_peaks=self.strong_total)
        for key, counts in (("recall_by_size", self.by_size), ("recall_by_snr", self.by_snr)):
            if counts:
                d[key] = {k: {"recall": f / t if t else float("nan"), "peaks": t} for k, (t, f) in counts.items()}
        if self.art_union:
            d["artifact_iou"] = float(self.art_inter / self.art_union)
        if self.clean_pixels:
            d["masked_fraction_clean"] = float(self.clean_masked / self.clean_pixels)
        return d


SIZE_BINS = (("1 px", 1, 1), ("2 px", 2, 2), ("3 px", 3, 3), ("4-9 px", 4, 9), (">=10 px", 10, np.inf))
SNR_BINS = (("<6", -np.inf, 6), ("6-10", 6, 10), ("10-20", 10, 20), ("20-40", 20, 40), (">=40", 40, np.inf))


def _add_binned(counts: dict, values: np.ndarray, matched: np.ndarray, bins) -> None:
    """Add the truth peaks and the found ones among them to ``counts`` by the bins of ``values``
    (inclusive bounds for pixel counts, [lo, hi) for SNR)."""
    integer = bins is SIZE_BINS
    for name, lo, hi in bins:
        sel = (values >= lo) & (values <= hi) if integer else (values >= lo) & (values < hi)
        t, f = counts.get(name, (0, 0))
        counts[name] = (t + int(sel.sum()), f + int((sel & matched).sum()))


def _score_of(summary: dict) -> float:
    parts = [summary.get("peak_f1_snr6", summary.get("peak_f1", 0.0))]
    if "artifact_iou" in summary:
        parts.append(summary["artifact_iou"])
    return float(np.mean(parts))


def _xy(peaks) -> np.ndarray:
    return np.stack([peaks.fs, peaks.ss], 1) if len(peaks) else np.zeros((0, 2))


@dataclass
class FramePeaks:
    """One frame's found peaks -- every argmax component, with its confidence -- and its reference
    peaks, so that the frame can be scored at any minimum confidence without running the model
    again.  ``marginal_xy`` None: a real frame (no "don't care" spots); ``on_ignored``: found
    peaks centred on an unlabelled (255) pixel, "don't care" too; ``ring_radius`` and
    ``ring_azimuth``: the found peaks' equivalent radii and azimuths for the powder-ring test
    (None without a geometry: no test; no azimuths: no Friedel-pair guard);
    ``found``: the found peaks themselves (for the auto-mask, :func:`program_classes`)."""

    name: str
    found_xy: np.ndarray
    confidence: np.ndarray
    ref_xy: np.ndarray
    ref_snr: Optional[np.ndarray] = None
    marginal_xy: Optional[np.ndarray] = None
    on_ignored: Optional[np.ndarray] = None
    ring_radius: Optional[np.ndarray] = None
    found: Optional[PeakList] = None
    ref_npix: Optional[np.ndarray] = None
    ring_azimuth: Optional[np.ndarray] = None

    def kept(self, min_confidence: float = 0.0, min_pixel_snr: float = 0.0,
             confident: Optional[ConfidentTier] = None) -> np.ndarray:
        """Which found peaks pass the operating point (confidence, then pixel SNR; or the
        ``confident`` tier)."""
        if self.found is None:  # positions and confidences only: no pixel SNR to test
            return self.confidence >= min_confidence
        return passes_operating_point(self.found, min_confidence, min_pixel_snr, confident)

    def score(self, scores: Scores, min_confidence: float = 0.0, radius: float = 2.0,
              drop_ring_spots: bool = True, *, min_pixel_snr: float = 0.0,
              confident: Optional[ConfidentTier] = None) -> dict:
        """Add the peaks of confidence >= ``min_confidence`` and pixel SNR >= ``min_pixel_snr``
        (or the ``confident`` tier's; and off powder rings) to ``scores`` (:meth:`Scores.add_peaks`)."""
        keep = self.kept(min_confidence, min_pixel_snr, confident)
        if drop_ring_spots and self.ring_radius is not None and keep.any():
            azimuth = None if self.ring_azimuth is None else self.ring_azimuth[keep]
            keep[keep] = ~powder_ring_peaks(self.ring_radius[keep], azimuth=azimuth)
        fxy = self.found_xy[keep]
        mxy = self.marginal_xy
        if mxy is not None and self.on_ignored is not None:
            mxy = np.concatenate([mxy, fxy[self.on_ignored[keep]]])
        return scores.add_peaks(fxy, self.ref_xy, self.ref_snr, radius, self.name, marginal_xy=mxy, ref_npix=self.ref_npix)


def labelled_frame_peaks(net, run, i: int, *, device="cpu", data: Optional[np.ndarray] = None,
                         peak_threshold: Optional[float] = None, photon_floor: bool = False) -> tuple:
    """(:class:`FramePeaks` or None without truth peaks, class map, labels, bad) of frame ``i``
    of a :class:`~.dataset.LabelledRun` (``data``: the frame when the caller has read it); peak
    pixels by ``peak_threshold`` (None: argmax); ``photon_floor``: pixel SNRs against at least one
    photon (:func:`~peaknet_gui.peaks.components.peaks_from_mask`)."""
    return labelled_frame_peaks_at(net, run, i, (peak_threshold,), device=device, data=data, photon_floor=photon_floor)[0]


def labelled_frame_peaks_at(net, run, i: int, peak_thresholds: Sequence[Optional[float]], *, device="cpu",
                            data: Optional[np.ndarray] = None, photon_floor: bool = False) -> list:
    """:func:`labelled_frame_peaks` at each of ``peak_thresholds``: the frame, its labels and
    truth are read and the model runs once."""
    data = run.data(i) if data is None else data
    bad = run.bad(i, data)
    labels = run.labels(i)
    argmax, peak_prob, art_prob = predict_maps(net, data, bad, run.panels, device=device)
    truth = run.truth(i)
    clean = np.where(bad, 0, data).astype(np.float32)
    out = []
    for t in peak_thresholds:
        pred = thresholded_classes(argmax, peak_prob, art_prob, t)
        if truth is None:
            out.append((None, pred, labels, bad))
            continue
        found = peaks_from_mask(clean, pred == 1, bad=bad, score=peak_prob, geometry=run.geometry if photon_floor else None,
                                photon_floor=photon_floor, cores=_cores(argmax, t))
        fxy = _xy(found)
        iy = np.clip(np.rint(fxy[:, 1]).astype(int), 0, labels.shape[0] - 1)
        ix = np.clip(np.rint(fxy[:, 0]).astype(int), 0, labels.shape[1] - 1)
        mxy = truth.dont_care_xy()
        radius, azimuth = equivalent_polar(found.fs, found.ss, run.geometry)
        peaks = FramePeaks(f"{run.path.name}//{i}", fxy, found.confidence, np.stack([truth.fs, truth.ss], 1), truth.snr,
                           mxy, labels[iy, ix] == 255, radius, found, ref_npix=truth.npix, ring_azimuth=azimuth)
        out.append((peaks, pred, labels, bad))
    return out


def program_classes(pred: np.ndarray, data: np.ndarray, bad: Optional[np.ndarray], geometry,
                    found: Optional[PeakList], min_confidence: float = 0.0, drop_ring_spots: bool = True,
                    whole_rings: bool = True, min_pixel_snr: float = 0.0,
                    confident: Optional[ConfidentTier] = None) -> np.ndarray:
    """The class map ``pred`` with class 2 where the program's auto-mask is: the network's
    artifact pixels, discs over the powder-ring spots among the ``found`` peaks that pass the
    operating point (``min_confidence``, ``min_pixel_snr``, ``confident``; when ``drop_ring_spots``), rings followed along their arcs and
    trimmed to their scatter (when ``whole_rings``; trimmed pixels become class 0): the steps of
    :func:`~peaknet_gui.masks.powder_rings.mask_powder_rings`, which
    :class:`~peaknet_gui.pipeline.analyzer.FrameAnalyzer` takes too.  Needs a geometry."""
    if geometry is None or not (drop_ring_spots or whole_rings):
        return pred
    kept = PeakList() if found is None else found.select(passes_operating_point(found, min_confidence, min_pixel_snr, confident))
    _, _, _, art = mask_powder_rings(kept, pred == 2, data, bad, geometry, peak_pixels=pred == 1,
                                     drop_ring_spots=drop_ring_spots, whole_rings=whole_rings)
    out = pred.copy()
    out[(pred == 2) & ~art] = 0  # trimmed: the ring is narrower than the network's
    out[art] = 2
    return out


def evaluate_labelled_frame(net, run, i: int, scores: Scores, *, radius: float = 2.0, device="cpu",
                            min_confidence: float = 0.0, drop_ring_spots: bool = True, whole_rings: bool = True,
                            min_pixel_snr: float = 0.0, peak_threshold: Optional[float] = None,
                            photon_floor: bool = False, confident: Optional[ConfidentTier] = None) -> dict:
    data = run.data(i)
    peaks, pred, labels, bad = labelled_frame_peaks(net, run, i, device=device, data=data, peak_threshold=peak_threshold,
                                                    photon_floor=photon_floor)
    pred = program_classes(pred, data, bad, run.geometry, None if peaks is None else peaks.found,
                           min_confidence, drop_ring_spots, whole_rings, min_pixel_snr, confident)
    scores.add_pixels(pred, labels, ~bad)
    if peaks is None:
        return {}
    return peaks.score(scores, min_confidence, radius, drop_ring_spots, min_pixel_snr=min_pixel_snr, confident=confident)


def validate(net, frames, *, device="cpu", radius: float = 2.0) -> dict:
    """Figures on (LabelledRun, index) pairs, plus ``score`` (mean of peak F1 at SNR >= 6 and
    artifact IoU) used to pick the best checkpoint."""
    scores = Scores()
    for run, i in frames:
        evaluate_labelled_frame(net, run, i, scores, radius=radius, device=device)
    d = scores.summary()
    d["score"] = _score_of(d)
    return d


# ------------------------------------------------------------------------------------------------
# real frames with reference spot lists
# ------------------------------------------------------------------------------------------------
def read_spots_csv(path, geometry=None) -> np.ndarray:
    """(n, 2) reference spot positions (fs, ss) as pixel indices of the frame's data array.

    DIALS writes the corner convention (pixel centre at 0.5): 0.5 is subtracted.  For multi-panel
    raw slabs the ``raw_x, raw_y`` columns (slab coordinates) are used when present; otherwise
    ``panel`` indexes ``geometry.panels`` and the panel's ``min_fs, min_ss`` are added.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as e:
        raise InputError(f"{path}: cannot read the spot list ({e.strerror or e})") from e
    if not rows:
        return np.zeros((0, 2))
    need = {"panel", "x_fast_px", "y_slow_px"}
    if not need <= set(rows[0]):
        raise InputError(f"{path}: not a spot list (needs columns {sorted(need)})")
    try:
        if "raw_x" in rows[0] and "raw_y" in rows[0]:
            xy = np.array([[float(r["raw_x"]), float(r["raw_y"])] for r in rows])
        else:
            xy = np.array([[float(r["x_fast_px"]), float(r["y_slow_px"])] for r in rows])
            panels = np.array([int(r["panel"]) for r in rows])
            if panels.max() > 0:
                if geometry is None:
                    raise InputError(f"{path}: spots on several panels need the detector geometry (--geom)")
                if panels.max() >= len(geometry.panels):
                    raise InputError(f"{path}: panel {panels.max()} but the geometry has {len(geometry.panels)} panels")
                off = np.array([[p.min_fs, p.min_ss] for p in geometry.panels], dtype=float)
                xy = xy + off[panels]
    except (KeyError, ValueError) as e:
        raise InputError(f"{path}: malformed spot list ({e})") from e
    return xy - 0.5


def find_spots_file(data_path) -> Optional[Path]:
    """``X.cbf.bz2`` -> ``X.cbf.spots.csv``; ``X_rawlayout.h5`` -> ``X.cbf.spots.csv``."""
    p = Path(data_path)
    name = p.name
    cands = [p.with_name(name + ".spots.csv")]
    for suffix in (".bz2", ".gz"):
        if name.endswith(suffix):
            cands.append(p.with_name(name[: -len(suffix)] + ".spots.csv"))
    if name.endswith("_rawlayout.h5"):
        cands.append(p.with_name(name[: -len("_rawlayout.h5")] + ".cbf.spots.csv"))
    for c in cands:
        if c.exists():
            return c
    return None


def real_frame_peaks(net, data: np.ndarray, bad: Optional[np.ndarray], ref_xy: np.ndarray, *, geometry=None,
                     device="cpu", name: str = "", peak_threshold: Optional[float] = None,
                     photon_floor: bool = False) -> tuple:
    """(:class:`FramePeaks` against the reference spots ``ref_xy``, class map) of a real frame;
    per panel when ``geometry`` has several; peak pixels by ``peak_threshold`` (None: argmax)."""
    return real_frame_peaks_at(net, data, bad, ref_xy, (peak_threshold,), geometry=geometry, device=device, name=name,
                               photon_floor=photon_floor)[0]


def real_frame_peaks_at(net, data: np.ndarray, bad: Optional[np.ndarray], ref_xy: np.ndarray,
                        peak_thresholds: Sequence[Optional[float]], *, geometry=None, device="cpu",
                        name: str = "", photon_floor: bool = False) -> list:
    """:func:`real_frame_peaks` at each of ``peak_thresholds`` (the model runs once)."""
    panels = [p.slices() for p in geometry.panels] if geometry is not None and len(geometry.panels) > 1 else None
    argmax, peak_prob, art_prob = predict_maps(net, data, bad, panels, device=device)
    clean = np.where(bad, 0, data).astype(np.float32) if bad is not None else data.astype(np.float32)
    out = []
    for t in peak_thresholds:
        pred = thresholded_classes(argmax, peak_prob, art_prob, t)
        found = peaks_from_mask(clean, pred == 1, bad=bad, geometry=geometry if panels or photon_floor else None,
                                score=peak_prob, photon_floor=photon_floor, cores=_cores(argmax, t))
        radius, azimuth = equivalent_polar(found.fs, found.ss, geometry)
        out.append((FramePeaks(name, _xy(found), found.confidence, ref_xy, ring_radius=radius, found=found,
                               ring_azimuth=azimuth), pred))
    return out


def score_real_frame(net, data: np.ndarray, bad: Optional[np.ndarray], ref_xy: np.ndarray, scores: Scores,
                     *, geometry=None, radius: float = 2.0, device="cpu", name: str = "",
                     min_confidence: float = 0.0, drop_ring_spots: bool = True, whole_rings: bool = True,
                     min_pixel_snr: float = 0.0, peak_threshold: Optional[float] = None,
                     photon_floor: bool = False, confident: Optional[ConfidentTier] = None) -> dict:
    peaks, pred = real_frame_peaks(net, data, bad, ref_xy, geometry=geometry, device=device, name=name,
                                   peak_threshold=peak_threshold, photon_floor=photon_floor)
    pred = program_classes(pred, data, bad, geometry, peaks.found, min_confidence, drop_ring_spots, whole_rings,
                           min_pixel_snr, confident)
    rec = peaks.score(scores, min_confidence, radius, drop_ring_spots, min_pixel_snr=min_pixel_snr, confident=confident)
    usable = np.ones(data.shape, bool) if bad is None else ~bad
    rec["masked_fraction"] = float(np.count_nonzero((pred == 2) & usable) / max(1, usable.sum()))
    return rec


def evaluate_labelled_runs(net, paths: Sequence[str], *, radius: float = 2.0, device="cpu", max_frames=None,
                           min_confidence: float = 0.0, drop_ring_spots: bool = True, whole_rings: bool = True,
                           min_pixel_snr: float = 0.0, peak_threshold: Optional[float] = None,
                           hot_pixels: bool = True, photon_floor: bool = False,
                           confident: Optional[ConfidentTier] = None) -> dict:
    """Scores of the runs ``paths``; with ``hot_pixels`` each run's hot and dead pixels are masked
    first, as the program masks them (:meth:`~.dataset.LabelledRun.mask_hot_pixels`)."""
    from .dataset import LabelledRun

    scores = Scores()
    for p in paths:
        run = LabelledRun(p)
        try:
            if hot_pixels:
                run.mask_hot_pixels()
            n = len(run) if max_frames is None else min(len(run), max_frames)
            for i in range(n):
                evaluate_labelled_frame(net, run, i, scores, radius=radius, device=device,
                                        min_confidence=min_confidence, drop_ring_spots=drop_ring_spots,
                                        whole_rings=whole_rings, min_pixel_snr=min_pixel_snr,
                                        peak_threshold=peak_threshold, photon_floor=photon_floor,
                                        confident=confident)
        finally:
            run.close()
    d = scores.summary()
    d["per_frame"] = scores.per_frame
    return d
