"""Spot profiles: render Bragg spots (2-D Gaussian/Lorentzian mixtures with any covariance) into
a frame and measure, per spot, how it stands out of the noise (for the labels, :mod:`.labels`).

Each spot is evaluated on a square patch of pixels around its centre (half-size from its widest
axis), normalised so the patch holds all its photons (photons falling outside its panel or in a
gap are lost, as on a real detector).  Pixel integration is approximated by adding the pixel's
box variance (1/12 px^2) to the Gaussian part.  Spots are grouped by patch size and computed as
(N, K, K) arrays, so thousands of spots cost a few tens of milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_HALF_SIZES = np.array([2, 3, 4, 5, 6, 8, 10, 13, 16])


@dataclass
class SpotSet:
    """Spots to render: centres in pixel indices of the data array, covariance (N, 2, 2) in
    (fs, ss) pixels^2, Lorentzian fraction ``eta`` (0 = pure Gaussian) and expected photons."""

    panel: np.ndarray
    fs: np.ndarray
    ss: np.ndarray
    cov: np.ndarray
    eta: np.ndarray
    photons: np.ndarray

    def __len__(self) -> int:
        return len(self.fs)


@dataclass
class PatchGroup:
    """Spots ``rows`` (indices into the :class:`SpotSet`) sharing one patch size K: flat pixel
    indices (-1 = off the spot's panel) and expected photons, (m, K*K) each."""

    rows: np.ndarray
    index: np.ndarray
    value: np.ndarray


@dataclass
class SpotPatches:
    """Rendered spots, grouped by patch size."""

    n: int
    groups: list

    @classmethod
    def from_arrays(cls, index: np.ndarray, value: np.ndarray) -> "SpotPatches":
        """One group holding every spot (index/value (N, P))."""
        index = np.asarray(index, dtype=np.int64)
        return cls(len(index), [PatchGroup(np.arange(len(index)), index, np.asarray(value, dtype=np.float32))])

    def image(self, size: int) -> np.ndarray:
        """Sum of all spots as a flat float64 array of ``size`` pixels."""
        if not self.groups:
            return np.zeros(size)
        idx = np.concatenate([g.index.ravel() for g in self.groups])
        val = np.concatenate([g.value.ravel() for g in self.groups])
        ok = idx >= 0
        return np.bincount(idx[ok], weights=val[ok], minlength=size)

    def scale(self, factor_flat: np.ndarray) -> None:
        """Multiply every spot pixel by ``factor_flat`` at that pixel (e.g. beamstop transmission)."""
        for g in self.groups:
            ok = g.index >= 0
            g.value *= np.where(ok, factor_flat[np.where(ok, g.index, 0)], 1.0).astype(np.float32)


def _profile(dx: np.ndarray, dy: np.ndarray, cov: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Normalised-shape (not yet summing to 1) mixture at offsets (N, K, K) from the centre."""
    a, b, c = (cov[:, i, j].astype(np.float32) for i, j in ((0, 0), (0, 1), (1, 1)))
    # Gaussian part, with the pixel's box variance
    ga, gc = a + 1.0 / 12.0, c + 1.0 / 12.0
    gdet = ga * gc - b * b
    qg = (gc[:, None, None] * dx * dx - 2 * b[:, None, None] * dx * dy + ga[:, None, None] * dy * dy) / gdet[:, None, None]
    gauss = np.exp(-0.5 * qg) / (2 * np.pi * np.sqrt(gdet))[:, None, None]
    if not np.any(eta > 0):
        return gauss
    det = a * c - b * b
    ql = (c[:, None, None] * dx * dx - 2 * b[:, None, None] * dx * dy + a[:, None, None] * dy * dy) / det[:, None, None]
    ql += 1.0
    lor = 1.0 / (ql * np.sqrt(ql) * (2 * np.pi * np.sqrt(det))[:, None, None])
    e = eta[:, None, None].astype(np.float32)
    return (1 - e) * gauss + e * lor


def render_spots(spots: SpotSet, geometry, shape: tuple) -> SpotPatches:
    """Expected photons of every spot on its patch (see the module doc)."""
    n = len(spots)
    ss_n, fs_n = shape
    if n == 0:
        return SpotPatches(0, [])
    cov = np.asarray(spots.cov, dtype=np.float64)
    tr = cov[:, 0, 0] + cov[:, 1, 1]
    lam_max = 0.5 * tr + np.sqrt(np.maximum(0.25 * (cov[:, 0, 0] - cov[:, 1, 1]) ** 2 + cov[:, 0, 1] ** 2, 0))
    width = 3.2 * np.sqrt(lam_max) * (1 + np.asarray(spots.eta)) + 1.0
    half = _HALF_SIZES[np.minimum(np.searchsorted(_HALF_SIZES, width), len(_HALF_SIZES) - 1)]
    pmin_fs = np.array([p.min_fs for p in geometry.panels])
    pmax_fs = np.array([p.max_fs for p in geometry.panels])
    pmin_ss = np.array([p.min_ss for p in geometry.panels])
    pmax_ss = np.array([p.max_ss for p in geometry.panels])
    groups = []
    for h in np.unique(half):
        sel = np.flatnonzero(half == h)
        k = 2 * h + 1
        off = np.arange(-h, h + 1)
        cfs = np.rint(spots.fs[sel]).astype(np.int64)
        css = np.rint(spots.ss[sel]).astype(np.int64)
        px = cfs[:, None, None] + off[None, None, :]  # (m, 1, k)
        py = css[:, None, None] + off[None, :, None]  # (m, k, 1)
        dx = (px - spots.fs[sel][:, None, None]).astype(np.float32)
        dy = (py - spots.ss[sel][:, None, None]).astype(np.float32)
        dx, dy = np.broadcast_to(dx, (len(sel), k, k)), np.broadcast_to(dy, (len(sel), k, k))
        prof = _profile(dx, dy, cov[sel], np.asarray(spots.eta)[sel])
        prof /= prof.sum(axis=(1, 2), keepdims=True)
        pan = spots.panel[sel]
        inside = ((px >= pmin_fs[pan][:, None, None]) & (px <= pmax_fs[pan][:, None, None])
                  & (py >= pmin_ss[pan][:, None, None]) & (py <= pmax_ss[pan][:, None, None]))
        inside &= (px >= 0) & (px < fs_n) & (py >= 0) & (py < ss_n)
        flat = np.where(inside, py * fs_n + px, -1).reshape(len(sel), -1)
        vals = (prof * spots.photons[sel][:, None, None].astype(np.float32)).reshape(len(sel), -1)
        groups.append(PatchGroup(sel, flat, np.where(flat >= 0, vals, 0.0).astype(np.float32)))
    return SpotPatches(n, groups)
