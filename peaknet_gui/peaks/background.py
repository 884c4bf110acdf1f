"""Local background around peaks: statistics of an annulus of pixels, vectorised over peaks.

For thousands of peaks the annulus pixels of all peaks with the same ring radii are gathered at
once into an (n_peaks, n_ring_pixels) array; there is no Python loop per peak, only one per
distinct ring size (a handful).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

_MAD_TO_SIGMA = 1.4826


@dataclass
class RingStats:
    """Per-peak background level, noise, brightest background pixel and pixel count."""

    offset: np.ndarray
    sigma: np.ndarray
    maximum: np.ndarray
    count: np.ndarray


@lru_cache(maxsize=64)
def _ring_offsets(r_in: float, r_out: float) -> tuple:
    r = int(np.ceil(r_out))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    d = np.hypot(dy, dx)
    sel = (d >= r_in) & (d <= r_out)
    return dy[sel].astype(np.intp), dx[sel].astype(np.intp)


def _sorted_median(v_sorted: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Median of the first ``k`` entries of each row of an ascending-sorted array."""
    rows = np.arange(v_sorted.shape[0])
    lo = np.maximum((k - 1) // 2, 0)
    hi = np.maximum(k // 2, 0)
    return 0.5 * (v_sorted[rows, lo] + v_sorted[rows, hi])


def _stats(vals: np.ndarray, ok: np.ndarray, robust: bool) -> tuple:
    n = ok.sum(axis=1)
    v = np.where(ok, vals, np.inf)  # invalid pixels sort last
    vmax = np.where(n > 0, np.max(np.where(ok, vals, -np.inf), axis=1), np.nan)
    if robust:
        s = np.sort(v, axis=1)
        med = _sorted_median(s, n)
        dev = np.where(ok, np.abs(vals - med[:, None]), np.inf)
        mad = _sorted_median(np.sort(dev, axis=1), n)
        spread = _MAD_TO_SIGMA * mad
        cnt = np.maximum(n, 1)
        mean0 = np.where(ok, vals, 0.0).sum(axis=1) / cnt
        std0 = np.sqrt(np.maximum(np.where(ok, (vals - mean0[:, None]) ** 2, 0.0).sum(axis=1) / cnt, 0.0))
        spread = np.where(spread > 0, spread, std0)
        keep = ok & (np.abs(vals - med[:, None]) <= 3.0 * spread[:, None])
    else:
        keep = ok
    nk = keep.sum(axis=1)
    cnt = np.maximum(nk, 1)
    mean = np.where(keep, vals, 0.0).sum(axis=1) / cnt
    var = np.where(keep, (vals - mean[:, None]) ** 2, 0.0).sum(axis=1) / cnt
    sigma = np.sqrt(np.maximum(var, 0.0))
    if robust:
        sigma = np.where(sigma > 0, sigma, spread)
    mean = np.where(nk > 0, mean, np.nan)
    sigma = np.where(nk > 0, sigma, np.nan)
    return mean, sigma, vmax, n


def ring_stats(
    data: np.ndarray,
    usable: np.ndarray,
    centre_ss: np.ndarray,
    centre_fs: np.ndarray,
    r_in: np.ndarray,
    r_out: np.ndarray,
    *,
    panel_map: Optional[np.ndarray] = None,
    peak_panel: Optional[np.ndarray] = None,
    robust: bool = True,
) -> RingStats:
    """Background statistics in the annulus ``r_in <= r <= r_out`` (pixels) around each centre.

    ``usable`` marks pixels that may count as background (not bad, not part of any peak).
    With ``panel_map``/``peak_panel`` only pixels of the peak's own panel count.  ``robust``
    uses a 3-sigma clipped mean around the median (sigma from the MAD), which ignores
    unlabelled neighbouring peaks; otherwise plain mean and standard deviation (peakfinder8).
    Peaks without any usable ring pixel get NaN offset and sigma.
    """
    n = len(centre_ss)
    offset = np.full(n, np.nan)
    sigma = np.full(n, np.nan)
    vmax = np.full(n, np.nan)
    count = np.zeros(n, dtype=np.int64)
    if n == 0:
        return RingStats(offset, sigma, vmax, count)
    h, w = data.shape
    cs = np.rint(centre_ss).astype(np.intp)
    cf = np.rint(centre_fs).astype(np.intp)
    keys = np.stack([np.asarray(r_in, dtype=np.float64), np.asarray(r_out, dtype=np.float64)], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for g, (ri, ro) in enumerate(uniq):
        idx = np.flatnonzero(inverse == g)
        dy, dx = _ring_offsets(float(ri), float(ro))
        ys = cs[idx, None] + dy[None, :]
        xs = cf[idx, None] + dx[None, :]
        inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        ys = np.clip(ys, 0, h - 1)
        xs = np.clip(xs, 0, w - 1)
        ok = inside & usable[ys, xs]
        if panel_map is not None and peak_panel is not None:
            ok &= panel_map[ys, xs] == np.asarray(peak_panel)[idx, None]
        vals = data[ys, xs].astype(np.float64)
        m, s, mx, c = _stats(vals, ok, robust)
        offset[idx], sigma[idx], vmax[idx], count[idx] = m, s, mx, c
    return RingStats(offset, sigma, vmax, count)
