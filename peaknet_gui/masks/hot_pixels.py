"""Hot and dead pixels found from the run itself (Cheetah/OM-style running statistics).

A stuck-high pixel looks like a one-pixel Bragg spot in any one frame; only the run shows it is
always there.  :class:`HotPixelTracker` keeps, per pixel, how many frames showed it as a *lone
bright pixel*: it stands ``k_lone`` noise units above every one of its 8 neighbours while those
neighbours hold no spread of its signal (the brightest neighbour's excess over the neighbours'
median is at most ``spread_fraction`` of the pixel's own).  A Bragg spot sits at one place in a
few frames at most (serial crystallography: one orientation per shot), a hot pixel in every
frame: a pixel flagged in at least ``min_fraction`` of ``min_frames`` or more frames, and
*steady* -- even in its dimmest frame it keeps ``steady_fraction`` of its mean excess over its
neighbours' mean -- is **hot**.  The steadiness test matters for rotation series, where a sharp
reflection can sit on one pixel for many frames but rises and fades as it crosses the Ewald
sphere (on the shared JUNGFRAU rotation frames six such reflections were lone in most of the 10
frames; the one steady pixel, ~10 photons among neighbours of ~1 in every frame, is hot).  A pixel that reads the same value in every frame
while its neighbours' mean stands ``k_dead`` noise units above it is **dead**.  The noise unit
is the panel's empirical noise scale (:func:`peaknet_gui.model.normalize.panel_stats`: no
detector gain assumed).

With fewer than ``min_frames`` frames (a single image, the first frames of a live run) the run
cannot decide; :meth:`HotPixelTracker.mask_for` then falls back to the test one frame allows:
a lone pixel ``k_single`` noise units above its brightest neighbour while no neighbour stands
more than ``k_flat`` noise units above the neighbours' median (no spread at all).  A real Bragg spot that falls wholly
into one pixel and is that bright would be masked by this fallback; a run of frames never is.

The tracker is thread-safe; frames are counted once (by their event) however often they are
analysed.  Its masks are ``True`` where the pixel is bad, on the frame's data array.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..model.normalize import panel_stats


#: frames of a run looked at to decide its hot pixels before analysing it
PRIME_FRAMES = 16


def spread_sample(n: int, max_frames: int = PRIME_FRAMES) -> np.ndarray:
    """Positions 0 .. ``n`` - 1 of at most ``max_frames`` frames spread evenly over a run of ``n``
    (first and last included): the frames a run's hot pixels are decided from."""
    if n <= 0 or max_frames <= 0:
        return np.zeros(0, dtype=int)
    return np.unique(np.linspace(0, n - 1, min(max_frames, n)).round().astype(int))


@dataclass
class HotPixelSettings:
    """Thresholds of :class:`HotPixelTracker` (module doc)."""

    k_lone: float = 8.0  # a lone pixel stands this many noise units above its brightest neighbour
    spread_fraction: float = 0.25  # ... whose excess over the neighbours' median is at most this fraction of its own
    min_frames: int = 5  # frames the run needs before it decides
    min_fraction: float = 0.5  # a pixel lone-bright in at least this fraction of the frames is hot ...
    steady_fraction: float = 0.25  # ... when its dimmest frame keeps this fraction of its mean excess
    k_dead: float = 5.0  # a constant pixel this many noise units below its neighbours' mean is dead
    k_single: float = 200.0  # one-frame fallback: lone pixel this many noise units above its brightest neighbour ...
    k_flat: float = 5.0  # ... and no neighbour more than this many noise units above the neighbours' median


@dataclass
class HotPixelReport:
    """What the tracker knows: frames seen, hot and dead pixel counts (None: not decided yet)."""

    frames: int
    hot: Optional[int]
    dead: Optional[int]

    def as_dict(self) -> dict:
        return {"frames": self.frames, "hot_pixels": self.hot, "dead_pixels": self.dead}


def _neighbour_max(x: np.ndarray) -> np.ndarray:
    """Maximum over each pixel's 8 neighbours (the 3x3 box without the pixel; -inf where there
    are none): the row's left/right neighbours, and the 3-wide maxima of the rows above and below."""
    r = x.copy()  # 3-wide row maxima
    np.maximum(r[:, 1:], x[:, :-1], out=r[:, 1:])
    np.maximum(r[:, :-1], x[:, 1:], out=r[:, :-1])
    out = np.full(x.shape, -np.inf, dtype=x.dtype)
    np.maximum(out[:, 1:], x[:, :-1], out=out[:, 1:])
    np.maximum(out[:, :-1], x[:, 1:], out=out[:, :-1])
    np.maximum(out[1:], r[:-1], out=out[1:])
    np.maximum(out[:-1], r[1:], out=out[:-1])
    return out


def _neighbours_at(x: np.ndarray, ss: np.ndarray, fs: np.ndarray) -> np.ndarray:
    """(n, 8) neighbour values of the pixels (ss, fs); NaN outside the frame or where ``x`` is NaN."""
    h, w = x.shape
    out = np.full((len(ss), 8), np.nan, dtype=np.float32)
    k = 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if not (dy or dx):
                continue
            y, xx = ss + dy, fs + dx
            ok = (y >= 0) & (y < h) & (xx >= 0) & (xx < w)
            out[ok, k] = x[y[ok], xx[ok]]
            k += 1
    return out


def noise_scale(data: np.ndarray, usable: np.ndarray) -> float:
    """The frame's empirical noise unit (median of its rows' neighbour differences, no gain)."""
    return float(panel_stats(data, usable)[1])


def lone_pixels(data: np.ndarray, usable: np.ndarray, k_lone: float, spread_fraction: float,
                k_flat: Optional[float] = None, noise: Optional[float] = None) -> np.ndarray:
    """Bool mask of the lone bright pixels of one frame (module doc).  ``k_flat`` set: only those
    whose neighbours all lie within ``k_flat`` noise units of their median (the one-frame test).

    A lone pixel is the strict maximum of its 3x3 box, so only local maxima ``k_lone`` noise units
    above the frame's lowest usable value are examined (one separable maximum filter over the
    frame, then the 8 neighbours of those few pixels)."""
    s = noise if noise is not None else noise_scale(data, usable)
    s = max(float(s), 1e-12)
    filled = np.asarray(data, dtype=np.float32)
    filled = np.where(usable & np.isfinite(filled), filled, np.float32(-np.inf))
    out = np.zeros(filled.shape, dtype=bool)
    finite = filled[np.isfinite(filled)]
    if finite.size == 0:
        return out
    floor = np.float32(finite.min() + k_lone * s)
    # k_lone noise units above every usable neighbour (a strict maximum of its box); usually a
    # handful of pixels, the only ones whose neighbours are then read one by one
    with np.errstate(invalid="ignore"):
        ss, fs = np.nonzero((filled - _neighbour_max(filled) > k_lone * s) & (filled > floor))
    if len(ss) == 0:
        return out
    x = np.where(np.isfinite(filled), filled, np.float32(np.nan))
    nb = _neighbours_at(x, ss, fs)
    v = x[ss, fs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(nb, axis=1)
        top = np.nanmax(nb, axis=1)
    excess = v - med
    keep = np.isfinite(med) & (v - top > k_lone * s) & (top - med <= spread_fraction * excess)
    if k_flat is not None:
        keep &= top - med <= k_flat * s
    out[ss[keep], fs[keep]] = True
    return out


class HotPixelTracker:
    """Running per-pixel statistics of a run (module doc).  After ``warmup_frames`` frames only
    every ``sample_every``-th frame offered is counted (the statistics are settled by then, and a
    frame costs a few full-frame passes); the decision is remade when the counted frames grow by a
    quarter or by 16."""

    warmup_frames = 32
    sample_every = 8
    remember_keys = 4096  # events remembered so that a frame analysed twice counts once

    def __init__(self, settings: Optional[HotPixelSettings] = None):
        self.settings = settings or HotPixelSettings()
        self._lock = threading.Lock()
        self._seen: "OrderedDict" = OrderedDict()
        self._offered = 0
        self._shape: Optional[tuple] = None
        self._count = None  # frames each pixel was lone-bright in
        self._first = None  # first frame's values (dead-pixel test)
        self._changed = None  # the pixel's value changed since the first frame
        self._sum = None  # sum over frames (the neighbours' mean: dead and steadiness tests)
        self._min = None  # the pixel's lowest value over the frames (steadiness test)
        self._usable = None  # usable in every frame seen
        self._noise = []
        self._frames = 0
        self._mask: Optional[np.ndarray] = None  # the decision, made at ``_decided_at`` frames
        self._decided_at = 0
        self._report = HotPixelReport(0, None, None)
        self._fixed: Optional[tuple] = None  # (mask or None,) of a snapshot

    # --- statistics ---------------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return self._frames

    @property
    def ready(self) -> bool:
        """Whether the run has shown enough frames to decide."""
        return self._frames >= self.settings.min_frames

    def snapshot(self) -> "HotPixelTracker":
        """A tracker that keeps this one's present decision and learns nothing more (an export
        that must give the peaks the window shows)."""
        snap = HotPixelTracker(self.settings)
        snap._fixed = (self.run_mask(),)
        snap._frames = self._frames
        snap._report = self.report()
        return snap

    def _claim(self, key, shape) -> bool:
        """Whether a frame offered with ``key`` is to be counted (lock held)."""
        if self._fixed is not None:
            return False
        if key is not None:
            if key in self._seen:
                return False
            self._seen[key] = None
            while len(self._seen) > self.remember_keys:
                self._seen.popitem(last=False)
        if self._shape is not None and shape != self._shape:
            return False
        self._offered += 1
        if self._frames >= self.warmup_frames and self._offered % self.sample_every:
            return False
        return self._frames < np.iinfo(np.uint16).max

    def update(self, data: np.ndarray, bad: Optional[np.ndarray] = None, key=None) -> bool:
        """Offer one frame (``key``: its event, counted once); True when it was counted (False:
        seen before, of another shape than the run's first frame, or not sampled)."""
        data = np.asarray(data)
        if data.ndim != 2:
            return False
        with self._lock:
            if not self._claim(key, data.shape):
                return False
        usable = np.isfinite(data) if bad is None else (~np.asarray(bad, dtype=bool) & np.isfinite(data))
        s = noise_scale(data, usable)
        lone = lone_pixels(data, usable, self.settings.k_lone, self.settings.spread_fraction, noise=s)
        x = np.where(usable, data, 0).astype(np.float32)
        with self._lock:
            if self._shape is None:
                self._shape = data.shape
                self._count = np.zeros(data.shape, dtype=np.uint16)
                self._first = x.copy()
                self._changed = np.zeros(data.shape, dtype=bool)
                self._sum = np.zeros(data.shape, dtype=np.float32)
                self._min = x.copy()
                self._usable = usable.copy()
            elif data.shape != self._shape:
                return False
            self._count += lone
            self._changed |= x != self._first
            self._sum += x
            np.minimum(self._min, x, out=self._min)
            self._usable &= usable
            self._noise.append(s)
            self._frames += 1
        return True

    def _stale(self) -> bool:
        n, d = self._frames, self._decided_at
        return self._mask is None or (n > d and (n - d >= 16 or n >= d + max(1, d // 4)))

    def _decide(self) -> np.ndarray:
        from scipy import ndimage

        st = self.settings
        n = self._frames
        u = self._usable
        uf = u.astype(np.float32)
        mean = np.where(u, self._sum / np.float32(n), np.float32(0))
        nb_sum = 9 * ndimage.uniform_filter(mean, size=3, mode="constant") - mean
        nb_cnt = 9 * ndimage.uniform_filter(uf, size=3, mode="constant") - uf
        with np.errstate(invalid="ignore", divide="ignore"):
            nb_mean = np.where(nb_cnt > 0.5, nb_sum / nb_cnt, np.nan)
            excess = mean - nb_mean
            steady = (excess > 0) & (self._min - nb_mean >= st.steady_fraction * excess)
        hot = (self._count >= max(2, int(np.ceil(st.min_fraction * n)))) & steady
        s = float(np.median(self._noise)) if self._noise else 1.0
        with np.errstate(invalid="ignore"):
            dead = u & ~self._changed & (nb_mean - self._first > st.k_dead * s)
        self._report = HotPixelReport(n, int(hot.sum()), int(dead.sum()))
        self._decided_at = n
        return hot | dead

    # --- masks --------------------------------------------------------------------------------------
    def run_mask(self) -> Optional[np.ndarray]:
        """The run's hot and dead pixels, or None while fewer than ``min_frames`` frames were seen."""
        with self._lock:
            if self._fixed is not None:
                return self._fixed[0]
            if not self.ready:
                return None
            if self._stale():
                self._mask = self._decide()
            return self._mask

    def mask_for(self, data: np.ndarray, bad: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """The pixels to treat as bad in this frame: the run's decision once it can make one,
        else the one-frame test (module doc); None when nothing is flagged."""
        m = self.run_mask()
        if m is not None and m.shape == np.shape(data):
            return m if m.any() else None
        data = np.asarray(data)
        if data.ndim != 2:
            return None
        usable = np.isfinite(data) if bad is None else (~np.asarray(bad, dtype=bool) & np.isfinite(data))
        st = self.settings
        lone = lone_pixels(data, usable, st.k_single, st.spread_fraction, k_flat=st.k_flat)
        return lone if lone.any() else None

    def report(self) -> HotPixelReport:
        self.run_mask()
        with self._lock:
            if self._fixed is not None:
                return self._report
            return self._report if self.ready else HotPixelReport(self._frames, None, None)
