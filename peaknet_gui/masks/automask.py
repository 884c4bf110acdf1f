"""The per-frame auto-mask: pixels the model calls artifact scattering, plus the static mask.

Polarity everywhere in memory: ``True`` = masked (bad, not to be used).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage

from ..peaks.filters import class_mask_from_probabilities
from ..pipeline.settings import MaskSettings


def artifact_mask_from_probabilities(
    artifact_prob: np.ndarray, peak_prob: Optional[np.ndarray] = None, threshold: Optional[float] = None
) -> np.ndarray:
    """Artifact-class pixels: ``artifact_prob >= threshold``, or the argmax when ``threshold``
    is None (artifact must beat background and, strictly, the peak class)."""
    return class_mask_from_probabilities(artifact_prob, peak_prob, threshold, wins_ties_with_other=False)


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a mask by ``pixels`` in every direction (a (2n+1)-pixel square; separable, fast)."""
    if pixels <= 0 or not mask.any():
        return mask
    size = 2 * int(pixels) + 1
    return ndimage.maximum_filter(mask.view(np.uint8), size=size, mode="constant", cval=0).astype(bool)


def frame_mask(
    artifact_prob: Optional[np.ndarray],
    peak_prob: Optional[np.ndarray],
    settings: MaskSettings,
    *,
    static: Optional[np.ndarray] = None,
    frame_bad: Optional[np.ndarray] = None,
    shape: Optional[tuple] = None,
) -> np.ndarray:
    """The auto-mask of one frame (True = masked).

    Artifact pixels (threshold or argmax) grown by ``settings.dilation``; then, when the
    settings ask, the union with ``static`` (user file + geometry bad regions) and with the
    frame's own bad pixels (detector gaps, negative pixels, NaN).  Without probabilities (the
    classical finder) only the static parts are used; ``shape`` then gives the frame shape.
    """
    if artifact_prob is not None:
        mask = dilate(artifact_mask_from_probabilities(artifact_prob, peak_prob, settings.artifact_threshold), settings.dilation)
    else:
        if shape is None:
            ref = static if static is not None else frame_bad
            if ref is None:
                raise ValueError("frame_mask needs probabilities, a static mask, bad pixels or a shape")
            shape = ref.shape
        mask = np.zeros(shape, dtype=bool)
    if settings.include_static and static is not None:
        mask |= np.asarray(static, dtype=bool)
    if settings.include_gaps and frame_bad is not None:
        mask |= np.asarray(frame_bad, dtype=bool)
    return mask
