"""From class probabilities to a peak mask, and from raw peaks to the peaks a user keeps.

* :func:`peak_mask_from_probabilities`: the model's own decision (argmax of the three classes)
  or a peak-probability threshold;
* :func:`filter_peaks`: pixel-count, resolution and SNR limits, then at most ``max_peaks``
  peaks (the strongest);
* :func:`passes_operating_point`: the peaks that reach a minimum confidence and pixel SNR;
* :func:`is_hit`: a frame is a hit with at least N peaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..pipeline.settings import FinderSettings
from .peaklist import PeakList


def _at_least_f16(x16: np.ndarray, value: float) -> np.ndarray:
    """``x16 >= value`` for a non-negative float16 array, compared as integers (fast, exact).

    Non-negative float16 numbers order like their bit patterns read as uint16, so comparing
    with the smallest float16 that is >= ``value`` gives exactly the float comparison.
    """
    t = np.float16(value)
    if float(t) < value:
        t = np.nextafter(t, np.float16(np.inf))
    if value <= 0:
        return np.ones(x16.shape, dtype=bool)
    return x16.view(np.uint16) >= t.view(np.uint16)


def class_mask_from_probabilities(
    target_prob: np.ndarray,
    other_prob: Optional[np.ndarray],
    threshold: Optional[float],
    *,
    wins_ties_with_other: bool,
) -> np.ndarray:
    """Pixels of one foreground class of a 3-class softmax (background, peak, artifact).

    ``threshold`` None reproduces ``argmax``: the class must beat the background (implied as
    ``1 - target - other``, in float32) and the other foreground class.  Ties go to the lower
    class index, as ``torch.argmax`` does: ``wins_ties_with_other`` is True for the peak class
    (index 1) against the artifact class (index 2).  With a threshold: ``target_prob >=
    threshold``.  float16 maps (what results cache) take a fast exact path: integer compares,
    and the float32 arithmetic only where the class can win (probability >= 1/3).
    """
    t = np.asarray(target_prob)
    fast = t.dtype == np.float16 and (other_prob is None or np.asarray(other_prob).dtype == np.float16)
    if threshold is not None:
        if fast:
            return _at_least_f16(t, float(threshold))
        return t.astype(np.float32, copy=False) >= np.float32(threshold)
    o = None if other_prob is None else np.asarray(other_prob)
    if fast:
        # the winner of three probabilities summing to 1 has at least 1/3
        lower = np.float16(1.0 / 3.0)
        if float(lower) > 1.0 / 3.0:
            lower = np.nextafter(lower, np.float16(0))
        out = _at_least_f16(t, float(lower))
        idx = np.flatnonzero(out)
        tv = t.ravel()[idx].astype(np.float32)
        ov = np.zeros_like(tv) if o is None else o.ravel()[idx].astype(np.float32)
        win = (tv > 1.0 - tv - ov) & ((tv >= ov) if wins_ties_with_other else (tv > ov))
        out.ravel()[idx[~win]] = False
        return out
    t = t.astype(np.float32, copy=False)
    o = np.zeros_like(t) if o is None else o.astype(np.float32, copy=False)
    background = 1.0 - t - o
    beats_other = (t >= o) if wins_ties_with_other else (t > o)
    return (t > background) & beats_other


def peak_mask_from_probabilities(
    peak_prob: np.ndarray, artifact_prob: Optional[np.ndarray] = None, threshold: Optional[float] = None
) -> np.ndarray:
    """Peak-class pixels: argmax (``threshold`` None) or ``peak_prob >= threshold``."""
    return class_mask_from_probabilities(peak_prob, artifact_prob, threshold, wins_ties_with_other=True)


def filter_peaks(peaks: PeakList, settings: FinderSettings) -> PeakList:
    """Apply the user's limits.

    Pixel count within [min_pixels, max_pixels]; SNR >= min_snr (when > 0); resolution
    between ``max_res_a`` (coarsest d, Angstrom) and ``min_res_a`` (finest d) -- peaks whose
    resolution is unknown (NaN) are kept; finally the ``max_peaks`` strongest (by integrated
    intensity) are kept, in their original order.
    """
    if len(peaks) == 0:
        return peaks
    keep = (peaks.npix >= settings.min_pixels) & (peaks.npix <= settings.max_pixels)
    if settings.min_snr and settings.min_snr > 0:
        keep &= peaks.snr >= settings.min_snr
    inv_d = peaks.resolution
    known = np.isfinite(inv_d)
    if settings.min_res_a:  # finest d -> largest 1/d
        keep &= ~known | (inv_d <= 1.0 / settings.min_res_a)
    if settings.max_res_a:  # coarsest d -> smallest 1/d
        keep &= ~known | (inv_d >= 1.0 / settings.max_res_a)
    idx = np.flatnonzero(keep)
    max_peaks = int(settings.max_peaks) if settings.max_peaks is not None else len(idx)
    if max_peaks >= 0 and len(idx) > max_peaks:
        strongest = np.argsort(-peaks.intensity[idx], kind="stable")[:max_peaks]
        idx = np.sort(idx[strongest])
    if len(idx) == len(peaks):
        return peaks
    return peaks.select(idx)


@dataclass(frozen=True)
class ConfidentTier:
    """The operating point's second way in: a component the model is sure of (confidence >=
    ``min_confidence``) needs only pixel SNR >= ``min_pixel_snr`` (0: no photometric test), below
    the point's own pixel SNR (:mod:`peaknet_gui.model.operating_point`)."""

    min_confidence: float
    min_pixel_snr: float = 0.0


def passes_operating_point(peaks: PeakList, min_confidence: float = 0.0, min_pixel_snr: float = 0.0,
                           confident: Optional[ConfidentTier] = None) -> np.ndarray:
    """Which peaks have confidence >= ``min_confidence`` and, when ``min_pixel_snr`` > 0,
    pixel SNR (``max_snr``) >= ``min_pixel_snr`` -- or, with a ``confident`` tier, its confidence
    and its lower pixel SNR (:mod:`peaknet_gui.model.operating_point`)."""
    keep = peaks.confidence >= min_confidence
    if min_pixel_snr > 0:
        keep &= peaks.max_snr >= min_pixel_snr
    if confident is not None:
        sure = peaks.confidence >= confident.min_confidence
        if confident.min_pixel_snr > 0:
            sure &= peaks.max_snr >= confident.min_pixel_snr
        keep |= sure
    return keep


def is_hit(peaks: PeakList, min_peaks: int) -> bool:
    """A frame is a hit when it has at least ``min_peaks`` peaks."""
    return len(peaks) >= max(0, int(min_peaks))
