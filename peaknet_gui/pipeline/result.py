"""What analysing one frame produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..frame import EventId
from ..peaks.peaklist import PeakList


@dataclass
class FrameResult:
    """Peaks, auto-mask and bookkeeping of one analysed frame.

    ``peak_prob`` / ``artifact_prob`` are the model's class probabilities (float16, the frame's
    data shape) kept so that thresholds can change without running the model again; they are
    ``None`` for the classical finder.  ``artifact_mask`` is True where a pixel is masked.
    ``ring_spots``: the peaks found on a powder ring (:mod:`peaknet_gui.peaks.rings`), not in
    ``peaks`` and masked in ``artifact_mask``.  ``hot_pixels``: how many of the run's hot and dead
    pixels (:mod:`peaknet_gui.masks.hot_pixels`) were masked in this frame.  ``gain_warning``: why
    the operating point for an untrusted gain was used (empty: the weights' own point).
    """

    serial: int
    event: EventId
    peaks: PeakList
    hit: bool
    artifact_mask: Optional[np.ndarray] = None
    peak_prob: Optional[np.ndarray] = None
    artifact_prob: Optional[np.ndarray] = None
    algorithm: str = "peaknet"
    device: str = "cpu"
    timings_ms: dict = field(default_factory=dict)
    ring_spots: PeakList = field(default_factory=PeakList)
    hot_pixels: int = 0
    #: set where the frame's background contradicts the gain its geometry states and the weights'
    #: operating point for an unreliable gain was used (:mod:`peaknet_gui.peaks.gain_check`)
    gain_warning: str = ""

    @property
    def n_peaks(self) -> int:
        return len(self.peaks)

    @property
    def total_ms(self) -> float:
        return float(sum(self.timings_ms.values()))
