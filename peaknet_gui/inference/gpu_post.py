"""Post-processing on the GPU with torch: class masks from the probabilities.

The arithmetic is the same as the numpy versions in :mod:`peaknet_gui.peaks.filters` and
:mod:`peaknet_gui.masks.automask` (float32 from the float16 probabilities), so a frame analysed
on the GPU and re-thresholded later on the CPU gives the same masks.
"""

from __future__ import annotations

from typing import Optional


def class_masks_torch(probs, peak_threshold: Optional[float], artifact_threshold: Optional[float]):
    """(B, 2, H, W) float16 [peak, artifact] probabilities -> (peak_mask, artifact_mask) bool tensors."""
    p = probs[:, 0].float()
    a = probs[:, 1].float()
    if peak_threshold is None or artifact_threshold is None:
        background = 1.0 - p - a
    peak = (p >= peak_threshold) if peak_threshold is not None else ((p > background) & (p >= a))
    art = (a >= artifact_threshold) if artifact_threshold is not None else ((a > background) & (a > p))
    return peak, art
