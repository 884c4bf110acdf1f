"""Prime an analyzer's hot-pixel statistics from a sample of the run before analysing it, so
the first frames are judged with the run's hot and dead pixels known
(:mod:`peaknet_gui.masks.hot_pixels`)."""

from __future__ import annotations

import logging
from typing import Optional, Sequence

from ..errors import PeakNetError
from ..masks.hot_pixels import PRIME_FRAMES, spread_sample

log = logging.getLogger(__name__)


def prime_hot_pixels(source, analyzer, indices: Sequence[int], max_frames: int = PRIME_FRAMES) -> Optional[dict]:
    """Count up to ``max_frames`` frames spread evenly over ``indices`` in ``analyzer.hot_pixels``
    (unreadable ones are left to the run, which reports them); returns the tracker's report, or
    None without a tracker."""
    tracker = getattr(analyzer, "hot_pixels", None)
    if tracker is None:
        return None
    indices = list(indices)
    if tracker.ready or max_frames <= 0 or not indices:
        return tracker.report().as_dict()
    for k in spread_sample(len(indices), max_frames):
        try:
            frame = source[indices[k]]
        except PeakNetError:
            continue
        tracker.update(frame.data, frame.bad, key=frame.event)
    report = tracker.report()
    if report.hot or report.dead:
        log.info("%d hot and %d dead pixels found in %d frames of the run: masked", report.hot, report.dead, report.frames)
    return report.as_dict()
