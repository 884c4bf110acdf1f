"""Qt-free view model of the run browser: where we are in the run, what we know about each frame.

The window, the docks and the tests read and change a :class:`BrowserState`; it holds plain
Python values only (no Qt, no file access), so navigation rules -- clamping, next/previous
hit, play stepping, follow-live -- are testable on their own.

Per analysed frame the state keeps a small :class:`FrameSummary` (peaks, hit, time): enough
for the run-overview plots and hit navigation on runs of any length.  Whether a frame is a hit
is decided with the *current* "peaks for a hit" setting; peak counts are those of the
thresholds the frame was last analysed with (frames shown again are re-thresholded).  Pixel data, probability
maps and results live in the worker's bounded caches, never here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..pipeline.settings import FinderSettings, MaskSettings
from .background import analysis_fingerprint


@dataclass(frozen=True)
class FrameSummary:
    """What the overview needs to know about one analysed frame."""

    index: int
    n_peaks: int
    hit: bool
    ms: float = 0.0
    settings_version: int = 0
    fingerprint: tuple = ()  # the settings the peaks were found with (background.analysis_fingerprint)


@dataclass
class DisplaySettings:
    """How frames are drawn (persisted with the window)."""

    colormap: str = "grey"
    log_scale: bool = True
    auto_levels: bool = True
    level_mode: str = "spots"  # automatic levels: "spots" (from the background) or "percentiles"
    percentiles: tuple = (1.0, 99.7)
    show_peaks: bool = True
    show_automask: bool = True
    show_static: bool = True
    show_rings: bool = True
    show_beam: bool = True
    mask_opacity: float = 0.45
    orientation: str = "data"  # "data": first data row at the top (lab +y down); "crystfel": lab +y up, as CrystFEL's viewer

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["percentiles"] = list(self.percentiles)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DisplaySettings":
        out = cls()
        for k, v in (d or {}).items():
            if hasattr(out, k):
                setattr(out, k, tuple(v) if k == "percentiles" else type(getattr(out, k))(v))
        return out


@dataclass
class BrowserState:
    """Current run position, analysis settings and per-frame summaries."""

    n_frames: int = 0
    index: int = 0
    finder: FinderSettings = field(default_factory=FinderSettings)
    mask: MaskSettings = field(default_factory=MaskSettings)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    settings_version: int = 0
    playing: bool = False
    play_fps: float = 2.0
    follow_live: bool = False
    hit_window: int = 50  # frames in the rolling hit rate
    summaries: dict = field(default_factory=dict)  # index -> FrameSummary

    # --- run ------------------------------------------------------------------------------------
    def set_run(self, n_frames: int, index: int = 0) -> int:
        """A new run: forget the summaries, go to ``index`` (clamped)."""
        self.n_frames = max(0, int(n_frames))
        self.summaries = {}
        self.playing = False
        self.index = self.clamp(index)
        return self.index

    def grow(self, n_frames: int) -> bool:
        """The run now has ``n_frames`` (follow live).  True when that is more than before."""
        grew = n_frames > self.n_frames
        self.n_frames = max(self.n_frames, int(n_frames))
        return grew

    # --- navigation -----------------------------------------------------------------------------
    def clamp(self, i: int) -> int:
        if self.n_frames <= 0:
            return 0
        return int(min(max(int(i), 0), self.n_frames - 1))

    def go(self, i: int) -> int:
        self.index = self.clamp(i)
        return self.index

    def step(self, delta: int) -> int:
        return self.go(self.index + int(delta))

    @property
    def at_end(self) -> bool:
        return self.n_frames == 0 or self.index >= self.n_frames - 1

    def next_play_index(self) -> Optional[int]:
        """The frame play mode shows next, None at the end of the run."""
        return None if self.at_end else self.index + 1

    def is_hit(self, s: FrameSummary) -> bool:
        """Hit by the *current* criterion (peaks counted with the thresholds of the time)."""
        return s.n_peaks >= max(0, int(self.finder.min_peaks_for_hit))

    def _hits(self) -> np.ndarray:
        return np.array(sorted(i for i, s in self.summaries.items() if self.is_hit(s)), dtype=np.int64)

    def next_hit(self, start: Optional[int] = None) -> Optional[int]:
        """The first known hit after ``start`` (default: the current frame), or None."""
        start = self.index if start is None else start
        hits = self._hits()
        later = hits[hits > start]
        return int(later[0]) if len(later) else None

    def prev_hit(self, start: Optional[int] = None) -> Optional[int]:
        start = self.index if start is None else start
        hits = self._hits()
        earlier = hits[hits < start]
        return int(earlier[-1]) if len(earlier) else None

    def first_unanalysed_after(self, start: Optional[int] = None) -> Optional[int]:
        """First frame after ``start`` without a summary (where a hit search continues)."""
        i = (self.index if start is None else start) + 1
        while i < self.n_frames:
            if i not in self.summaries:
                return i
            i += 1
        return None

    # --- analysis settings ----------------------------------------------------------------------
    def set_finder(self, finder: FinderSettings) -> bool:
        """New peak-finding settings; True (and a new settings version) when they changed."""
        if finder == self.finder:
            return False
        self.finder = copy.deepcopy(finder)
        self.settings_version += 1
        return True

    def set_mask(self, mask: MaskSettings) -> bool:
        if mask == self.mask:
            return False
        self.mask = copy.deepcopy(mask)
        self.settings_version += 1
        return True

    # --- summaries ------------------------------------------------------------------------------
    def record(self, index: int, n_peaks: int, hit: bool, ms: float = 0.0, fingerprint: Optional[tuple] = None) -> FrameSummary:
        """A frame's peak count; ``fingerprint`` (default: the current settings') says which
        settings found them."""
        fp = self.fingerprint if fingerprint is None else tuple(fingerprint)
        s = FrameSummary(int(index), int(n_peaks), bool(hit), float(ms), self.settings_version, fp)
        self.summaries[int(index)] = s
        return s

    @property
    def fingerprint(self) -> tuple:
        return analysis_fingerprint(self.finder, self.mask)

    def is_current(self, s: FrameSummary) -> bool:
        """The summary was made with the current settings (else it awaits the background)."""
        return s.fingerprint == self.fingerprint

    @property
    def n_current(self) -> int:
        """Frames analysed with the current settings."""
        fp = self.fingerprint
        return sum(1 for s in self.summaries.values() if s.fingerprint == fp)

    def analysed_mask(self, current_only: bool = True) -> np.ndarray:
        """bool per frame of the run: analysed (with the current settings)."""
        out = np.zeros(self.n_frames, dtype=bool)
        fp = self.fingerprint
        for i, s in self.summaries.items():
            if 0 <= i < self.n_frames and (not current_only or s.fingerprint == fp):
                out[i] = True
        return out

    def forget_summaries(self) -> None:
        self.summaries = {}

    @property
    def n_analysed(self) -> int:
        return len(self.summaries)

    @property
    def n_hits(self) -> int:
        return sum(1 for s in self.summaries.values() if self.is_hit(s))

    @property
    def hit_rate(self) -> float:
        return self.n_hits / self.n_analysed if self.summaries else 0.0

    def series(self) -> tuple:
        """(indices, peaks, hits) of the analysed frames in run order (numpy arrays)."""
        if not self.summaries:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
        idx = np.array(sorted(self.summaries), dtype=np.int64)
        peaks = np.array([self.summaries[i].n_peaks for i in idx], dtype=np.int64)
        hits = np.array([self.is_hit(self.summaries[i]) for i in idx], dtype=bool)
        return idx, peaks, hits

    def rolling_hit_rate(self, window: Optional[int] = None) -> tuple:
        """(indices, hit rate in %) over the last ``window`` analysed frames at each point."""
        idx, _, hits = self.series()
        if len(idx) == 0:
            return idx, np.zeros(0)
        w = max(1, int(window or self.hit_window))
        c = np.concatenate([[0], np.cumsum(hits.astype(np.int64))])
        n = np.arange(1, len(hits) + 1)
        lo = np.maximum(n - w, 0)
        rate = 100.0 * (c[n] - c[lo]) / (n - lo)
        return idx, rate


def with_gaps(x: np.ndarray, y: np.ndarray) -> tuple:
    """(x, y) with a NaN point between frames that are not neighbours, so that a line drawn with
    ``connect="finite"`` stops at frames never analysed instead of crossing them."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return x, y
    breaks = np.nonzero(np.diff(x) > 1)[0] + 1
    if not len(breaks):
        return x, y
    xs = np.insert(x, breaks, x[breaks] - 0.5)
    ys = np.insert(y, breaks, np.nan)
    return xs, ys
