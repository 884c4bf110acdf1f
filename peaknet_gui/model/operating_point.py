"""The weights' operating point: what a component of the peak class needs to count as a peak.

The network labels pixels; a peak is a connected component of the peak class (argmax).  Two
figures of each component decide whether it is reported:

* its *confidence*, the highest peak-class probability over its pixels
  (:attr:`~peaknet_gui.peaks.peaklist.PeakList.confidence`).  A network trained with focal loss
  is not calibrated (the loss flattens its probabilities), so "argmax" is not the best decision;
* its *pixel SNR*, how many local-background sigmas its brightest pixel stands above the local
  background (:attr:`~peaknet_gui.peaks.peaklist.PeakList.max_snr`).  The labels call a spot a
  peak when DIALS' default finder would report it on the written frame: strong pixels, a test
  on the frame's counts.  Where the network sees the shape of a spot whose counts fail that
  test (faint spots just below the labels' threshold, which a noise realisation tips either
  way), the photometric test makes the decision the labels make.  It is measured against the
  empirical noise of the local background, so it needs no detector gain (where the geometry
  gives one, recent fits floor that noise at one photon: below).

Where the geometry gives the detector's gain (``adu_per_photon`` / ``adu_per_eV``), fits made
from 2026-12-07 on take the pixel SNR against max(local sigma, one photon)
(``pixel_snr_photon_floor``): on the nearly empty backgrounds of XFEL stills (CSPAD: 0.05
photons per pixel, one photon = 3 read-noise sigmas) every stray photon otherwise stands 5-10
"sigmas" high, and hundreds per frame would pass any pixel-SNR test the faint spots pass; the
simulator's truth uses the same floor (a spot on an empty background needs >= 6 photons).  The
fit and ``peaknet evaluate`` mask each simulated run's hot and dead pixels first, as the program
does (:meth:`~peaknet_gui.model.dataset.LabelledRun.mask_hot_pixels`).

The operating point (``peak_min_confidence``, ``peak_min_pixel_snr``) is fitted once per weights,
on validation runs that share no seed with the training or evaluation runs
(:func:`fit_operating_point`, ``peaknet evaluate --fit-operating-point``), over a grid of both,
and stored in the weights' sidecar (``metadata.operating_point``).  The CLI, the pipeline and
the GUI use it by default -- nothing to tune by hand -- and every one of them can override it
(``FinderSettings.min_confidence`` / ``min_pixel_snr``, ``--min-confidence`` / ``--min-pixel-snr``).

That floor is only as good as the gain the geometry states.  Weights may carry a second point,
``when_gain_unreliable`` (fitted without the floor on validation runs whose geometry understates
the gain: ``peaknet evaluate --fit-operating-point --for-unreliable-gain --write``); the program
uses it on frames whose background contradicts the stated gain or that state none
(:mod:`peaknet_gui.peaks.gain_check`, :meth:`OperatingPoint.for_gain`).

A point may carry a second tier (``confident_min_confidence``, ``confident_min_pixel_snr``;
:class:`~peaknet_gui.peaks.filters.ConfidentTier`): a component the model is sure of passes at a
lower pixel SNR than the point's.  A pixel SNR of 6 is the noise floor of a blank frame (the
components of pixel SNR 5-6 on v16's blank validation frames are noise, up to 24 per frame), yet a
true spot of integrated SNR 6-10 spread over two or three pixels has a brightest pixel of SNR 4-6;
the model's confidence tells them apart (median 0.6-0.7 for true spots there, ~0.2 for noise).
The fit searches the tier after the point, on the same runs, and keeps it only where it raises
the mean F1 without adding a peak to the point's worst blank frame (:func:`_fit_tier`).  The user's own minimum
confidence or pixel SNR replaces both tiers.

The fit maximises the mean over the validation runs (one per detector and style, and real
frames with DIALS spot lists) of the peak F1 (simulated runs: on peaks with SNR >= 6,
:class:`peaknet_gui.model.evaluate.Scores`), so that no detector dominates by its number of
peaks; the per-run curves are kept in the report.  Only points that keep at most
``DEFAULT_MAX_BLANK_PEAKS`` (5, the hit-finding target) peaks on every blank frame of the simulated
runs compete: F1 has no notion of a blank frame, and a few noise peaks on every blank frame make
it look like a hit (``peaknet evaluate --fit-operating-point --max-blank-peaks N``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..errors import InputError
from ..peaks.filters import ConfidentTier

#: candidate minimum confidences (0 = every argmax component)
DEFAULT_GRID = tuple([0.0] + [round(x, 3) for x in np.arange(0.40, 0.951, 0.025)])
#: candidate segmentation thresholds of the peak-class probability (0 = argmax: the class wins).
#: A network trained with focal loss under-states faint spots' probabilities; a lower threshold
#: lets their pixels form components that the confidence and pixel SNR then judge.
DEFAULT_PEAK_THRESHOLDS = (0.0, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1)
#: at most this many peaks on every blank frame of the validation runs (no true, marginal or faint
#: spot): a blank frame must not look like a hit, whatever F1 gains elsewhere.  The worst frame,
#: not the mean: a mean lets one detector's blanks (XFEL-style, low background) hold ten noise
#: peaks while the others hold none
DEFAULT_MAX_BLANK_PEAKS = 5.0
#: candidate minimum pixel SNRs (0 = no photometric test)
DEFAULT_SNR_GRID = (0.0, 3.0, 4.0, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 9.0, 10.0, 12.0)
#: candidate second tiers (:class:`~peaknet_gui.peaks.filters.ConfidentTier`), searched after the
#: point itself: confidences, and pixel SNRs below the point's.  On v16's validation runs the
#: components of pixel SNR 4-6 that are true spots had confidences of median 0.6-0.7, the others
#: 0.18-0.24 (and on blank frames almost never >= 0.4): the model's confidence can stand in for
#: part of the photometric evidence
DEFAULT_TIER_CONFIDENCES = tuple(round(x, 3) for x in np.arange(0.30, 0.951, 0.05))
DEFAULT_TIER_SNRS = (0.0, 3.0, 4.0, 4.5, 5.0, 5.5, 6.0)


def _number_in(raw: dict, key: str, upper: float) -> float:
    """``raw[key]`` as a number in [0, ``upper``); 0 (no cut) when absent, unreadable or outside."""
    try:
        v = float(raw.get(key, 0.0))
    except (TypeError, ValueError):
        return 0.0
    return v if 0.0 <= v < upper else 0.0


@dataclass
class OperatingPoint:
    """``peak_min_confidence``: a peak is kept when its highest peak probability reaches it
    (0: every component of the argmax peak class); ``peak_min_pixel_snr``: and when its brightest
    pixel stands that many local-background sigmas above its background (0: no test)."""

    peak_min_confidence: float = 0.0
    fitted_on: List[str] = field(default_factory=list)
    objective: str = ""
    peak_min_pixel_snr: float = 0.0
    #: peak pixels: peak-class probability >= this (0: argmax, the class wins)
    peak_threshold: float = 0.0
    #: the pixel SNR is taken against max(local sigma, one photon) where the geometry gives the
    #: gain (fits from 2026-12-07 on; older sidecars: False, the local sigma alone)
    pixel_snr_photon_floor: bool = False
    #: the second tier (:class:`~peaknet_gui.peaks.filters.ConfidentTier`): a component of
    #: confidence >= ``confident_min_confidence`` is kept at pixel SNR >= ``confident_min_pixel_snr``
    #: (fits from 2026-12-08 on; 0: no second tier, as older sidecars)
    confident_min_confidence: float = 0.0
    confident_min_pixel_snr: float = 0.0
    #: the point for frames whose geometry states no gain or one their background contradicts
    #: (:mod:`peaknet_gui.peaks.gain_check`): with the photon floor off, a point fitted on runs
    #: whose geometry understates the gain.  None: this point everywhere
    when_gain_unreliable: Optional["OperatingPoint"] = None

    @classmethod
    def from_metadata(cls, metadata: Optional[dict]) -> "OperatingPoint":
        raw = (metadata or {}).get("operating_point") or {}
        return cls._from_raw(raw)

    @classmethod
    def _from_raw(cls, raw: dict, nested: bool = False) -> "OperatingPoint":
        fallback = raw.get("when_gain_unreliable")
        return cls(peak_min_confidence=_number_in(raw, "peak_min_confidence", 1.0), fitted_on=list(raw.get("fitted_on", [])),
                   objective=str(raw.get("objective", "")), peak_min_pixel_snr=_number_in(raw, "peak_min_pixel_snr", 1e6),
                   peak_threshold=_number_in(raw, "peak_threshold", 1.0),
                   pixel_snr_photon_floor=raw.get("pixel_snr_photon_floor") is True,
                   confident_min_confidence=_number_in(raw, "confident_min_confidence", 1.0),
                   confident_min_pixel_snr=_number_in(raw, "confident_min_pixel_snr", 1e6),
                   when_gain_unreliable=cls._from_raw(fallback, nested=True)
                   if isinstance(fallback, dict) and not nested else None)

    def for_gain(self, reliable: bool) -> "OperatingPoint":
        """The point for a frame whose stated gain is ``reliable`` (or not: the fallback, when there is one)."""
        return self if reliable or self.when_gain_unreliable is None else self.when_gain_unreliable

    @property
    def confident_tier(self) -> Optional[ConfidentTier]:
        """The second tier, or None when the point has none."""
        if self.confident_min_confidence <= 0:
            return None
        return ConfidentTier(self.confident_min_confidence, self.confident_min_pixel_snr)

    @property
    def segmentation_threshold(self) -> Optional[float]:
        """The peak-pixel threshold for :func:`~peaknet_gui.peaks.filters.peak_mask_from_probabilities`
        (None: argmax)."""
        return self.peak_threshold if self.peak_threshold > 0 else None

    def as_dict(self) -> dict:
        return asdict(self)


def _threshold(t: float) -> Optional[float]:
    return float(t) if t > 0 else None


def collect_frames(net, paths: Sequence[str], *, device="cpu", max_frames: Optional[int] = None,
                   peak_thresholds: Sequence[float] = (0.0,), photon_floor: bool = True) -> dict:
    """{peak threshold: [(run number, :class:`~.evaluate.FramePeaks`)]} of every labelled frame
    with truth peaks; the model runs once per frame, the components are cut at each threshold.
    Each run's hot and dead pixels are masked first, as the program masks them: a stuck pixel
    must not decide the operating point (on a blank frame it would read as a noise peak)."""
    from .dataset import LabelledRun
    from .evaluate import labelled_frame_peaks_at

    keys = [float(t) for t in peak_thresholds]
    out: dict = {t: [] for t in keys}
    for k, p in enumerate(paths):
        run = LabelledRun(p)
        try:
            run.mask_hot_pixels()
            n = len(run) if max_frames is None else min(len(run), max_frames)
            for i in range(n):
                at = labelled_frame_peaks_at(net, run, i, [_threshold(t) for t in keys], device=device,
                                             photon_floor=photon_floor)
                for t, (peaks, *_) in zip(keys, at):
                    if peaks is not None:
                        out[t].append((k, peaks))
        finally:
            run.close()
    return out


def collect_real_frames(net, files: Sequence[tuple], first_run: int, *, geometry=None, device="cpu",
                        peak_thresholds: Sequence[float] = (0.0,), photon_floor: bool = True) -> dict:
    """{peak threshold: [(run number, :class:`~.evaluate.FramePeaks`)]} of real frames against
    their reference spot lists: ``files`` holds (frame file, spot list) pairs; each file is one
    run, numbered from ``first_run``."""
    from .evaluate import read_spots_csv, real_frame_peaks_at
    from .realframes import read_real_frames

    keys = [float(t) for t in peak_thresholds]
    out: dict = {t: [] for t in keys}
    for k, (path, spots) in enumerate(files):
        for name, data, bad, geom in read_real_frames(Path(path), geometry):
            ref = read_spots_csv(spots, geom)
            at = real_frame_peaks_at(net, data, bad, ref, [_threshold(t) for t in keys], geometry=geom, device=device,
                                     name=name, photon_floor=photon_floor)
            for t, (peaks, _) in zip(keys, at):
                out[t].append((first_run + k, peaks))
    return out


def score_at(records: Sequence[tuple], threshold: float, n_runs: int, *, radius: float = 2.0,
             drop_ring_spots: bool = True, min_pixel_snr: float = 0.0,
             confident: Optional[ConfidentTier] = None) -> List[dict]:
    """Per-run summaries (:meth:`Scores.summary`) keeping the peaks of confidence >= ``threshold``
    and pixel SNR >= ``min_pixel_snr``, or the ``confident`` tier's (and off powder rings unless
    ``drop_ring_spots`` is False)."""
    from .evaluate import Scores

    scores = [Scores() for _ in range(n_runs)]
    for run, peaks in records:
        peaks.score(scores[run], threshold, radius, drop_ring_spots, min_pixel_snr=min_pixel_snr, confident=confident)
    return [s.summary() for s in scores]


def is_blank(peaks) -> bool:
    """A simulated frame with nothing to find: no truth peak, no marginal and no faint spot."""
    return (peaks.marginal_xy is not None and len(peaks.ref_xy) == 0 and len(peaks.marginal_xy) == 0)


def blank_peaks_at(blanks: Sequence, threshold: float, min_pixel_snr: float, *, radius: float = 2.0,
                   drop_ring_spots: bool = True, confident: Optional[ConfidentTier] = None) -> tuple:
    """(mean, most) peaks the program keeps per frame of the ``blanks``
    (:class:`~.evaluate.FramePeaks`) at minimum confidence ``threshold`` and minimum pixel SNR
    ``min_pixel_snr``."""
    from .evaluate import Scores

    counts = []
    for peaks in blanks:
        scores = Scores()  # a blank has no truth: every peak kept is a false positive
        peaks.score(scores, threshold, radius, drop_ring_spots, min_pixel_snr=min_pixel_snr, confident=confident)
        counts.append(scores.fp)
    if not counts:
        return 0.0, 0
    return float(np.mean(counts)), int(max(counts))


def _f1(summary: dict, complete_truth: bool = False) -> float:
    """The run's peak F1: against every truth peak when the truth is complete (real frames'
    lists, runs labelled by the SNR rule, whose every peak carries signal), else on the peaks of
    SNR >= 6 (runs labelled by DIALS' test, whose truth leaves faint spots out)."""
    if complete_truth:
        return float(summary.get("peak_f1", 0.0))
    return float(summary.get("peak_f1_snr6", summary.get("peak_f1", 0.0)))


def labelled_by_snr_rule(path) -> bool:
    """Whether a simulated run's peak labels follow the SNR rule (``/entry_1/sim`` ``label_rule``)."""
    try:
        import h5py

        with h5py.File(path, "r") as f:
            rule = json.loads(f["entry_1/sim"].attrs["label_rule"])
    except Exception:  # not a simulated run, or an older one: the SNR >= 6 subset
        return False
    return rule.get("mode") == "snr"


def fit_operating_point(net, paths: Sequence[str], *, real: Sequence[tuple] = (), geometry=None, device="cpu",
                        grid=DEFAULT_GRID, snr_grid=DEFAULT_SNR_GRID, radius: float = 2.0,
                        max_frames: Optional[int] = None, drop_ring_spots: bool = True,
                        peak_thresholds=DEFAULT_PEAK_THRESHOLDS, max_blank_peaks: Optional[float] = DEFAULT_MAX_BLANK_PEAKS,
                        photon_floor: bool = True, tier_confidences=DEFAULT_TIER_CONFIDENCES,
                        tier_snrs=DEFAULT_TIER_SNRS) -> tuple:
    """(:class:`OperatingPoint`, report) maximising the mean per-run peak F1 over the minimum
    confidences ``grid`` times the minimum pixel SNRs ``snr_grid`` times the segmentation
    thresholds ``peak_thresholds`` (0: argmax): on the labelled runs
    ``paths`` the F1 against every truth peak (runs labelled by the SNR rule) or on peaks with
    SNR >= 6 (runs labelled by DIALS' test), on the real frames ``real`` ((frame file, DIALS spot
    list) pairs, one run per file) the F1 against the list; ties go to the lower pixel SNR, then
    the lower confidence, then argmax / the higher segmentation threshold.  The peaks are those the program keeps: powder-ring spots are dropped
    unless ``drop_ring_spots`` is False.  Only points that keep at most ``max_blank_peaks`` peaks
    on every blank frame of the simulated runs (the worst frame; :func:`is_blank`) compete, when the runs have
    blank frames and any point does (None: no constraint); the report says whether the
    constraint held (``blank_constraint``).  The report's ``curve`` has one entry per point
    (``threshold`` the confidence, ``pixel_snr``, ``peak_threshold``, ``blank_peaks`` the mean and
    ``blank_peaks_max`` the most peaks on a blank frame).  ``photon_floor``: pixel SNRs against at
    least one photon where the geometry gives the gain (recorded in the operating point).  Then a
    second tier (:func:`_fit_tier`, ``tier_confidences`` x ``tier_snrs``; empty: none) is fitted on
    top of the chosen point; the report's ``tier`` is the one kept (None) and ``tier_curve`` every
    one tried."""
    paths = [str(p) for p in paths]
    real = [(str(a), str(b)) for a, b in real]
    if not paths and not real:
        raise InputError("fitting the operating point needs labelled (simulated) runs or real frames with spot lists")
    by_threshold = collect_frames(net, paths, device=device, max_frames=max_frames, peak_thresholds=peak_thresholds,
                                  photon_floor=photon_floor)
    real_by_threshold = collect_real_frames(net, real, len(paths), geometry=geometry, device=device,
                                            peak_thresholds=peak_thresholds, photon_floor=photon_floor)
    for t in by_threshold:
        by_threshold[t] += real_by_threshold[t]
    records = next(iter(by_threshold.values()))
    if not records:
        raise InputError("no labelled frame with truth peaks in the given runs")
    names = [Path(p).name for p in paths] + [Path(a).name for a, _ in real]
    runs_with_frames = sorted({run for run, _ in records})
    complete = [labelled_by_snr_rule(p) for p in paths] + [True] * len(real)
    curve = []
    n_blanks = 0
    for seg, records in by_threshold.items():
        blanks = [peaks for _, peaks in records if is_blank(peaks)]
        n_blanks = len(blanks)
        for snr in snr_grid:
            for t in grid:
                per_run, mean_f1, blank_mean, blank_most = _score_point(
                    records, blanks, len(names), runs_with_frames, complete, float(t), float(snr), None,
                    radius=radius, drop_ring_spots=drop_ring_spots)
                curve.append({"threshold": float(t), "pixel_snr": float(snr), "peak_threshold": float(seg),
                              "mean_f1": mean_f1, "blank_peaks": blank_mean, "blank_peaks_max": blank_most,
                              "per_run": {names[k]: {"precision": per_run[k].get("peak_precision"),
                                                     "recall": per_run[k].get("peak_recall") if complete[k] else
                                                     per_run[k].get("peak_recall_snr6", per_run[k].get("peak_recall")),
                                                     "f1": _f1(per_run[k], complete[k])} for k in runs_with_frames}})
    feasible = curve
    constraint = "none"
    if max_blank_peaks is not None and n_blanks:
        feasible = [c for c in curve if c["blank_peaks_max"] <= max_blank_peaks]
        constraint = f"held: <= {max_blank_peaks:g} peaks on every blank frame ({n_blanks} blank frames)"
        if not feasible:
            feasible = curve
            constraint = (f"no point keeps <= {max_blank_peaks:g} peaks on every blank frame ({n_blanks} blank frames, "
                          f"worst frame at best {min(c['blank_peaks_max'] for c in curve)}): the best F1 was taken")
    best = max(feasible, key=lambda c: (round(c["mean_f1"], 6), -c["pixel_snr"], -c["threshold"],
                                        c["peak_threshold"] == 0, c["peak_threshold"]))
    tier, tier_curve = _fit_tier(best, by_threshold[best["peak_threshold"]], names, runs_with_frames, complete,
                                 radius=radius, drop_ring_spots=drop_ring_spots,
                                 max_blank_peaks=max_blank_peaks if constraint.startswith("held") else None,
                                 confidences=tier_confidences, snrs=tier_snrs)
    op = OperatingPoint(peak_min_confidence=best["threshold"], peak_min_pixel_snr=best["pixel_snr"],
                        peak_threshold=best["peak_threshold"], fitted_on=names, pixel_snr_photon_floor=bool(photon_floor),
                        confident_min_confidence=tier["min_confidence"] if tier else 0.0,
                        confident_min_pixel_snr=tier["pixel_snr"] if tier else 0.0,
                        objective="max mean over runs of peak F1 (simulated: against every truth peak when labelled by the "
                        "SNR rule, else SNR >= 6; real: against the spot lists)"
                        + ("; powder-ring spots dropped" if drop_ring_spots else "")
                        + ("; components split at the argmax cores" if best["peak_threshold"] else "")
                        + (f"; at most {max_blank_peaks:g} peaks on any blank frame" if constraint.startswith("held") else "")
                        + ("; then a second tier for confident components" if tier else ""))
    argmax = next((c for c in curve if c["threshold"] == 0 and c["pixel_snr"] == 0 and c["peak_threshold"] == 0), None)
    return op, {"chosen": best, "argmax": argmax, "curve": curve, "blank_constraint": constraint,
                "max_blank_peaks": max_blank_peaks if n_blanks else None, "tier": tier, "tier_curve": tier_curve}


def _score_point(records: Sequence[tuple], blanks: Sequence, n_runs: int, runs_with_frames: Sequence[int],
                 complete: Sequence[bool], confidence: float, pixel_snr: float, confident: Optional[ConfidentTier], *,
                 radius: float, drop_ring_spots: bool) -> tuple:
    """(per-run summaries, mean F1 over the runs with frames, mean and most peaks on a blank frame)
    of one candidate point (and tier) on the fit's records."""
    per_run = score_at(records, confidence, n_runs, radius=radius, drop_ring_spots=drop_ring_spots,
                       min_pixel_snr=pixel_snr, confident=confident)
    mean_f1 = float(np.mean([_f1(per_run[k], complete[k]) for k in runs_with_frames]))
    blank_mean, blank_most = blank_peaks_at(blanks, confidence, pixel_snr, radius=radius,
                                            drop_ring_spots=drop_ring_spots, confident=confident)
    return per_run, mean_f1, blank_mean, blank_most


def _fit_tier(best: dict, records: Sequence[tuple], names: Sequence[str], runs_with_frames: Sequence[int],
              complete: Sequence[bool], *, radius: float, drop_ring_spots: bool, max_blank_peaks: Optional[float],
              confidences: Sequence[float], snrs: Sequence[float]) -> tuple:
    """(the best second tier as a curve entry or None, every tier tried) on top of the chosen point
    ``best``, at its segmentation threshold: only tiers with a lower pixel SNR and a higher
    confidence than the point's that raise the mean F1 and, when the blank-frame limit held for
    the point, add no peak to its worst blank frame (at most the point's own worst, never above the
    limit: the tier is for faint spots, and real blank frames are noisier than simulated ones --
    v16's first tier at the limit itself put 5.5 peaks on the real thaumatin blanks) compete; ties
    go to the higher confidence, then the higher pixel SNR."""
    if best["pixel_snr"] <= 0:
        return None, []
    blanks = [peaks for _, peaks in records if is_blank(peaks)]
    tried = []
    for conf in confidences:
        if conf <= best["threshold"]:
            continue
        for snr in snrs:
            if snr >= best["pixel_snr"]:
                continue
            _, mean_f1, blank_mean, blank_most = _score_point(
                records, blanks, len(names), runs_with_frames, complete, best["threshold"], best["pixel_snr"],
                ConfidentTier(float(conf), float(snr)), radius=radius, drop_ring_spots=drop_ring_spots)
            tried.append({"min_confidence": float(conf), "pixel_snr": float(snr), "mean_f1": mean_f1,
                          "blank_peaks": blank_mean, "blank_peaks_max": blank_most})
    limit = None if max_blank_peaks is None else min(max_blank_peaks, best["blank_peaks_max"])
    ok = [t for t in tried if t["mean_f1"] > best["mean_f1"] + 1e-6 and (limit is None or t["blank_peaks_max"] <= limit)]
    if not ok:
        return None, tried
    return max(ok, key=lambda t: (round(t["mean_f1"], 6), t["min_confidence"], t["pixel_snr"])), tried


def write_operating_point(weights_path, op: OperatingPoint, report: Optional[dict] = None, *,
                          for_unreliable_gain: bool = False) -> Path:
    """Store ``op`` (and the fit's chosen and argmax figures) in the weights' sidecar, atomically;
    the weights file and its checksum are untouched.  ``for_unreliable_gain``: as the fallback
    of the point already there (``when_gain_unreliable``); otherwise as the point, keeping the
    fallback the sidecar holds (same weights)."""
    from ..export.atomic import atomic_write
    from .weights import _read_sidecar, _readable, sidecar_path

    weights_path = Path(weights_path)
    side = _read_sidecar(weights_path)
    if side is None:
        raise InputError(f"{weights_path}: no sidecar {sidecar_path(weights_path).name} to record the operating point in")
    entry = {k: v for k, v in op.as_dict().items() if k != "when_gain_unreliable"}
    if report:
        entry["fit"] = {k: report[k] for k in ("chosen", "argmax", "tier") if report.get(k) is not None}
    metadata = side.setdefault("metadata", {})
    current = metadata.get("operating_point")
    if for_unreliable_gain:
        if not isinstance(current, dict) or not current:
            raise InputError(f"{weights_path}: fit the operating point first; the one for an unreliable gain is its fallback")
        current["when_gain_unreliable"] = entry
    else:
        if isinstance(current, dict) and isinstance(current.get("when_gain_unreliable"), dict):
            entry["when_gain_unreliable"] = current["when_gain_unreliable"]
        metadata["operating_point"] = entry
    target = sidecar_path(weights_path)
    with atomic_write(target) as fh:
        json.dump(side, fh, indent=2, sort_keys=True, default=float)
        fh.write("\n")
    _readable(target)
    return target
