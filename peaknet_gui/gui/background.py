"""Qt-free pieces of the whole-run analysis in the background: the result store and the order.

The worker analyses every frame of the run at low priority after the frame on screen
(:meth:`~.worker.AnalysisWorker._job_background`).  What it keeps of each frame is a
:class:`~peaknet_gui.cluster.compact.CompactResult` -- peaks, ring spots, hit, timings and the
auto-mask as packed bits (a few kB) -- never the class probabilities, so a run of thousands of
frames stays small in memory; full results (with probabilities, for the sliders) are kept only
for a few recent frames by the worker's LRU.

A stored result is valid while what made it is unchanged: the *key* (the analyzer generation --
run, geometry, static mask, weights -- and the algorithm) and the *fingerprint* of the finder
and mask settings (:func:`analysis_fingerprint`).  The hit criterion ("peaks for a hit") is left
out of the fingerprint: the hit is decided again from the stored peaks when it is read, so
changing it invalidates nothing.  The run's hot-pixel statistics are not part of the key: a
stored result holds the peaks as they were drawn when the frame was analysed.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from ..peaks.filters import is_hit
from ..pipeline.settings import FinderSettings, MaskSettings

HIT_FIELD = "min_peaks_for_hit"


def analysis_fingerprint(finder: FinderSettings, mask: MaskSettings) -> tuple:
    """What a frame's peaks and mask depend on among the settings (all but the hit criterion)."""
    f = tuple((k, v) for k, v in sorted(dataclasses.asdict(finder).items()) if k != HIT_FIELD)
    m = tuple(sorted(dataclasses.asdict(mask).items()))
    return f + (("--mask--", None),) + m


@dataclass
class StoredResult:
    index: int
    key: tuple  # (analyzer generation, algorithm)
    fingerprint: tuple
    compact: object  # CompactResult
    hot_pixels: int = 0

    @property
    def n_peaks(self) -> int:
        return len(self.compact.peaks)


class ResultStore:
    """Compact results of a run's frames, one per frame (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: dict = {}
        self.nbytes = 0

    def clear(self) -> None:
        with self._lock:
            self._items = {}
            self.nbytes = 0

    def put(self, index: int, key: tuple, fingerprint: tuple, frame, result) -> StoredResult:
        from ..cluster.compact import CompactResult

        c = CompactResult.from_result(0, int(index), frame, result)
        item = StoredResult(int(index), key, fingerprint, c, int(getattr(result, "hot_pixels", 0) or 0))
        with self._lock:
            old = self._items.get(int(index))
            self.nbytes += c.nbytes - (old.compact.nbytes if old is not None else 0)
            self._items[int(index)] = item
        return item

    def get(self, index: int, key: tuple, fingerprint: tuple) -> Optional[StoredResult]:
        """The stored result of ``index`` when it is valid for ``key`` and ``fingerprint``."""
        with self._lock:
            item = self._items.get(int(index))
        if item is None or item.key != key or item.fingerprint != fingerprint:
            return None
        return item

    def done(self, key: tuple, fingerprint: tuple) -> set:
        """Indices with a valid result."""
        with self._lock:
            return {i for i, s in self._items.items() if s.key == key and s.fingerprint == fingerprint}

    def snapshot(self, key: tuple, fingerprint: tuple) -> dict:
        """``{event lst line: CompactResult}`` of the valid results (what an export reuses)."""
        with self._lock:
            items = list(self._items.values())
        return {s.compact.event.lst_line(): s.compact for s in items if s.key == key and s.fingerprint == fingerprint}

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def result_of(stored: StoredResult, min_peaks_for_hit: int):
    """A FrameResult (peaks, mask, hit by the current criterion) from a stored compact result."""
    r = stored.compact.result(with_mask=True)
    r.hit = is_hit(r.peaks, min_peaks_for_hit)
    r.hot_pixels = stored.hot_pixels
    return r


def reading_order(n_frames: int, origin: int) -> Iterator[int]:
    """Frames in background order: ahead of ``origin`` to the end, then back from ``origin - 1``."""
    origin = min(max(int(origin), 0), max(n_frames - 1, 0))
    yield from range(origin, n_frames)
    yield from range(origin - 1, -1, -1)


class BackgroundPlan:
    """Which frame the background analyses next: the first not yet done in :func:`reading_order`
    from the frame on screen.  Re-anchored when the user moves or the run grows; the walk goes
    on from where it was otherwise, so finding the next frame costs O(1) on average."""

    def __init__(self):
        self._origin = -1
        self._n = 0
        self._it: Optional[Iterator[int]] = None
        self.skipped: set = set()  # frames that could not be read (not tried again this run)

    def reset(self) -> None:
        self._origin, self._n, self._it = -1, 0, None
        self.skipped = set()

    def next(self, n_frames: int, origin: int, is_done: Callable[[int], bool]) -> Optional[int]:
        if n_frames <= 0:
            return None
        if origin != self._origin or n_frames != self._n or self._it is None:
            self._origin, self._n = origin, n_frames
            self._it = reading_order(n_frames, origin)
        for i in self._it:
            if i not in self.skipped and not is_done(i):
                return i
        self._it = None
        self._origin = -2  # finished: the next call walks again (settings may have changed)
        return None

    def retry(self, index: int) -> None:
        """``index`` was not finished (pre-empted, stale): walk again from the origin next time."""
        self._it = None
