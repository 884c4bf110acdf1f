"""A powder ring masked along all of its visible arc, not only where the network saw it.

The network labels the bright stretches of a metal-shielding, ice or calibrant ring as artifact
but misses its faint stretches: at one noise sigma per pixel a ring is invisible pixel by pixel
and obvious along its arc, which the network (a receptive field of a few hundred pixels at
quarter resolution) cannot follow.  Where a ring is known -- a narrow annulus the network's
artifact pixels crowd into (:func:`annuli_from_mask`), or one the powder-ring spot test of
:mod:`peaknet_gui.peaks.rings` found -- the frame itself says where along the ring there is
ring scatter (:func:`ring_profile`):

1. the ring's neighbourhood (the annulus +- ``window_px``) is cut into azimuthal sectors of
   ``arc_px`` of arc and radial bins of ``bin_px`` (half a pixel: a thin ring's edges fall
   anywhere within a pixel; equivalent radius ``tan(2 theta) L``, so tilted and multi-panel
   detectors work alike);
2. per sector, the background level is the mean of the two sides of the ring (pixels more than
   ``core_px`` beyond the annulus; one clipping pass at ``clip_sigma``) and the per-pixel noise
   the spread of those pixels;
3. a radial bin of a sector is ring scatter where its mean excess over the background is at
   least ``k_pixel`` noise sigma per pixel (what the training labels call artifact: scatter of
   at least one sigma) and significant at ``z`` sigma given the bin's pixel count.

Pixels already masked, peak pixels and the discs of ring spots do not enter the estimates
(the ring's own bins do use the network's artifact pixels), so bright grains and Bragg peaks
neither fake nor hide a ring.  Where the frame can tell, it decides both ways
(:func:`follow_rings`): a ring's pixels are added along faint stretches and trimmed where the
network's ring is wider than its scatter; peak pixels are never masked, ring-spot discs never
unmasked.

Parameters and the trimming chosen on the simulated validation runs of the model card (pooled
artifact IoU 0.787 for the network's pixels, 0.865 with whole rings in half-pixel bins, 0.860 in
one-pixel bins); on the held-out set whose frames share nothing with the training runs the
auto-mask's artifact IoU is 0.905 against 0.840 without whole rings (``resources/MODEL_CARD.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..geometry import Geometry
from ..peaks.detmaps import MapCache, geometry_fingerprint
from ..peaks.peaklist import PeakList
from ..peaks.rings import equivalent_length_px, equivalent_radius_px, mask_spots, ring_annuli, split_ring_peaks


@dataclass(frozen=True)
class RingProfileTest:
    """Parameters of :func:`ring_profile` and :func:`annuli_from_mask` (module docstring);
    not user settings."""

    arc_px: float = 90.0  # arc length of one azimuthal sector
    window_px: float = 12.0  # radial neighbourhood on each side of an annulus
    core_px: float = 5.0  # beyond the annulus still counted as (possibly) ring, not background
    k_pixel: float = 0.85  # excess per pixel, in noise sigma, that makes a pixel ring scatter
    z: float = 3.0  # significance of a bin's mean excess
    bin_px: float = 0.5  # width of a radial bin
    clip_sigma: float = 5.0  # background values above mean + clip_sigma * sd are clipped (spots)
    min_radius_px: float = 40.0  # no ring closer to the beam (the beamstop, the direct beam's halo)
    min_fill: float = 0.02  # annuli from a mask: fraction of the circle's pixels masked ...
    min_pixels: int = 40  # ... at least so many pixels in the annulus ...
    contrast: float = 4.0  # ... and this many times the median of the +-10 px radial neighbourhood


@dataclass(frozen=True)
class RingMaps:
    """Per-pixel equivalent radius (float32, NaN outside panels) and azimuth (radians) of a
    geometry, with the pixels grouped by whole pixels of radius (``order``; those of radius bin
    ``k`` are ``order[starts[k]:starts[k + 1]]``) for fast annuli."""

    radius: np.ndarray
    azimuth: np.ndarray
    order: np.ndarray
    starts: np.ndarray

    @property
    def pixels_per_radius(self) -> np.ndarray:
        """Pixels inside panels per 1-px bin of radius."""
        return np.diff(self.starts)

    def annulus(self, lo: float, hi: float) -> np.ndarray:
        """Flat indices of the pixels with ``lo <= radius <= hi``."""
        n = len(self.starts) - 1
        b0, b1 = int(np.clip(np.floor(lo), 0, n)), int(np.clip(np.floor(hi) + 1, 0, n))
        idx = self.order[self.starts[b0]: self.starts[b1]]
        r = self.radius.reshape(-1)[idx]
        return idx[(r >= lo) & (r <= hi)]


_cache = MapCache(4)


def _build(geometry: Geometry, shape: tuple) -> RingMaps:
    radius = np.full(shape, np.nan, dtype=np.float32)
    azimuth = np.zeros(shape, dtype=np.float32)
    length_px = equivalent_length_px(geometry)
    for p in geometry.panels:
        sl = p.slices()
        ss, fs = np.mgrid[sl].astype(np.float64)
        if np.isfinite(length_px):
            x, y, z = p.lab_xyz(fs, ss, geometry.clen)
            with np.errstate(invalid="ignore", divide="ignore"):
                radius[sl] = np.hypot(x, y) / z * length_px
        else:  # no camera length: the in-plane radius, as equivalent_radius_px falls back to
            u, v = fs - p.min_fs + 0.5, ss - p.min_ss + 0.5
            x = p.corner_x + u * p.fs[0] + v * p.ss[0]
            y = p.corner_y + u * p.fs[1] + v * p.ss[1]
            radius[sl] = np.hypot(x, y)
        azimuth[sl] = np.arctan2(y, x)
    flat = radius.reshape(-1)
    inside = np.flatnonzero(np.isfinite(flat))
    bins = np.floor(flat[inside]).astype(np.int64)
    nbins = int(bins.max()) + 2 if len(bins) else 1
    # a radix sort of whole-pixel radii (uint16 while they fit): fast, and all an annulus needs
    key = bins.astype(np.uint16) if nbins < 65535 else bins
    order = inside[np.argsort(key, kind="stable")]
    starts = np.concatenate([[0], np.cumsum(np.bincount(bins, minlength=nbins))])
    return RingMaps(radius, azimuth, order.astype(np.int64), starts)


def ring_maps(geometry: Geometry, shape: tuple) -> RingMaps:
    """:class:`RingMaps` of ``geometry`` for frames of ``shape`` (cached)."""
    shape = (int(shape[-2]), int(shape[-1]))
    return _cache.get((geometry_fingerprint(geometry), geometry.clen, shape), lambda: _build(geometry, shape))


def annuli_from_mask(mask: np.ndarray, maps: RingMaps, test: RingProfileTest = RingProfileTest()) -> np.ndarray:
    """(n, 2) inner and outer radii of the narrow annuli that ``mask`` (e.g. the network's
    artifact pixels) crowds into: one-pixel radius bins holding at least ``min_fill`` of the
    circle's pixels and ``contrast`` times the median of their +-10 px neighbourhood (rings;
    streaks, kapton and the beamstop spread over radius), ``min_pixels`` in all."""
    from scipy.ndimage import median_filter

    r = maps.radius[mask]
    r = r[np.isfinite(r)]
    if len(r) < test.min_pixels:
        return np.zeros((0, 2))
    counts = np.bincount(np.floor(r).astype(np.int64), minlength=len(maps.pixels_per_radius)).astype(np.float64)
    circle = maps.pixels_per_radius[: len(counts)].astype(np.float64)
    base = median_filter(counts, size=21, mode="nearest")
    good = (counts >= test.min_pixels / 4.0) & (counts >= test.min_fill * np.maximum(circle, 1.0))
    good &= counts >= test.contrast * np.maximum(base, 1.0)
    idx = np.flatnonzero(good)
    if not len(idx):
        return np.zeros((0, 2))
    groups = np.split(idx, np.flatnonzero(np.diff(idx) > 3) + 1)
    return np.array([(g[0] - 0.5, g[-1] + 1.5) for g in groups if counts[g[0]: g[-1] + 1].sum() >= test.min_pixels]).reshape(-1, 2)


def merge_annuli(*annuli: np.ndarray) -> np.ndarray:
    """Union of (n, 2) annulus lists, overlapping ones merged."""
    parts = [np.asarray(a, dtype=np.float64).reshape(-1, 2) for a in annuli if a is not None and len(a)]
    if not parts:
        return np.zeros((0, 2))
    a = np.concatenate(parts)
    a = a[np.argsort(a[:, 0])]
    out = [list(a[0])]
    for lo, hi in a[1:]:
        if lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return np.array(out)


def _group_stats(key: np.ndarray, values: np.ndarray, n: int) -> tuple:
    cnt = np.bincount(key, minlength=n).astype(np.float64)
    s1 = np.bincount(key, weights=values, minlength=n)
    s2 = np.bincount(key, weights=values * values, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        sd = np.sqrt(np.maximum(s2 / cnt - mean * mean, 0.0))
    return cnt, mean, sd


def ring_profile(
    data: np.ndarray,
    usable: Optional[np.ndarray],
    maps: RingMaps,
    annuli: np.ndarray,
    *,
    exclude: Optional[np.ndarray] = None,
    exclude_core: Optional[np.ndarray] = None,
    test: RingProfileTest = RingProfileTest(),
) -> tuple:
    """(ring, decided) pixel masks of the rings ``annuli`` (equivalent radii; module docstring):
    ``ring`` where a radial bin of a sector shows ring scatter, ``decided`` where the frame can
    tell (in sectors where the ring shows: the background was measured and the bin holds >= 3
    estimated pixels).
    ``usable``: pixels with a reading (None: all); ``exclude``: pixels left out of the
    background estimates (masked pixels, peaks); ``exclude_core``: left out of the ring's own
    bins (peaks, ring-spot discs; default ``exclude``).  Excluded pixels are decided with
    their bin."""
    shape = np.shape(data)
    ring = np.zeros(shape, dtype=bool)
    decided = np.zeros(shape, dtype=bool)
    flat = np.asarray(data).reshape(-1)
    use_flat = None if usable is None else np.asarray(usable).reshape(-1)
    skip_flat = None if exclude is None else np.asarray(exclude).reshape(-1)
    skip_core = skip_flat if exclude_core is None else np.asarray(exclude_core).reshape(-1)
    az_flat = maps.azimuth.reshape(-1)
    r_flat = maps.radius.reshape(-1)
    for lo, hi in np.asarray(annuli, dtype=np.float64).reshape(-1, 2):
        centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        if centre < test.min_radius_px:
            continue
        reach = half + test.window_px
        pix = maps.annulus(centre - reach, centre + reach)
        v = flat[pix].astype(np.float64)
        ok = np.isfinite(v) if use_flat is None else (use_flat[pix] & np.isfinite(v))
        pix, v = pix[ok], v[ok]
        if len(pix) < 50:
            continue
        dr = r_flat[pix].astype(np.float64) - centre
        n_sec = max(8, int(2.0 * np.pi * centre / test.arc_px))
        sec = np.clip(((az_flat[pix] + np.pi) / (2.0 * np.pi) * n_sec).astype(np.int64), 0, n_sec - 1)
        n_bins = int(np.ceil(2.0 * reach / test.bin_px)) + 1
        rbin = np.clip(np.floor((dr + reach) / test.bin_px).astype(np.int64), 0, n_bins - 1)
        side = np.abs(dr) > half + test.core_px
        # background per sector: mean and spread of the side pixels, one clipping pass
        b = side if skip_flat is None else side & ~skip_flat[pix]
        cnt, mean, sd = _group_stats(sec[b], v[b], n_sec)
        cap = (mean + test.clip_sigma * np.maximum(sd, 1e-6))[sec]
        b &= v <= cap
        cnt, _, sd = _group_stats(sec[b], v[b], n_sec)
        inner = b & (dr < 0)
        outer = b & (dr > 0)
        n_in, m_in, _ = _group_stats(sec[inner], v[inner], n_sec)
        n_out, m_out, _ = _group_stats(sec[outer], v[outer], n_sec)
        ok_in, ok_out = n_in >= 10, n_out >= 10
        with np.errstate(invalid="ignore", divide="ignore"):
            both = np.where(ok_in & ok_out, 0.5 * (m_in + m_out), np.where(ok_in, m_in, m_out))
        valid = (cnt >= 20) & (ok_in | ok_out) & (sd > 0)
        # the ring's bins: mean excess per (sector, radial bin), values clipped at the same cap
        core = ~side
        c = core if skip_core is None else core & ~skip_core[pix]
        key = sec[c] * n_bins + rbin[c]
        vc = np.minimum(v[c], (both + test.clip_sigma * sd)[sec[c]])
        n_c = np.bincount(key, minlength=n_sec * n_bins).astype(np.float64)
        s_c = np.bincount(key, weights=vc, minlength=n_sec * n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            excess = s_c / n_c - np.repeat(both, n_bins)
            sd_rep = np.repeat(sd, n_bins)
            known = (n_c >= 3) & np.repeat(valid, n_bins)
            flag = known & (excess >= test.k_pixel * sd_rep) & (excess * np.sqrt(n_c) >= test.z * sd_rep)
        # decided: only in sectors where the ring shows (a shadow or a blob that happens to fill an
        # annulus has no ring scatter to measure its width by, and is left to the network)
        known &= np.repeat(flag.reshape(n_sec, n_bins).any(axis=1), n_bins)
        if not known.any():
            continue
        cpix = pix[core]
        ckey = sec[core] * n_bins + rbin[core]
        ring.reshape(-1)[cpix[flag[ckey]]] = True
        decided.reshape(-1)[cpix[known[ckey]]] = True
    return ring, decided


def ring_profile_mask(data: np.ndarray, usable: Optional[np.ndarray], maps: RingMaps, annuli: np.ndarray, *,
                      exclude: Optional[np.ndarray] = None, test: RingProfileTest = RingProfileTest()) -> np.ndarray:
    """The ``ring`` pixels of :func:`ring_profile`."""
    return ring_profile(data, usable, maps, annuli, exclude=exclude, test=test)[0]


def follow_rings(
    mask: np.ndarray,
    data: np.ndarray,
    bad: Optional[np.ndarray],
    geometry: Geometry,
    artifact_mask: Optional[np.ndarray],
    ring_spots,
    *,
    peak_pixels: Optional[np.ndarray] = None,
    fixed: Optional[np.ndarray] = None,
    test: RingProfileTest = RingProfileTest(),
) -> np.ndarray:
    """``mask`` with its powder rings decided by the frame: the rings ``artifact_mask`` (the
    network's artifact pixels) crowds into (:func:`annuli_from_mask`) and those of the
    powder-ring spots ``ring_spots`` (a :class:`~peaknet_gui.peaks.peaklist.PeakList`) are
    followed along their arcs (:func:`ring_profile`); where the frame can tell, a pixel of a
    ring's window is masked exactly when its bin shows ring scatter -- added along faint
    stretches, trimmed where the network's ring is wider than its scatter.  Elsewhere ``mask``
    is kept.  ``bad``: pixels without a reading; ``peak_pixels``: never added, and left out of
    the estimates; ``fixed``: never unmasked (ring-spot discs).  Needs a geometry."""
    has_mask = artifact_mask is not None and bool(np.any(artifact_mask))
    if not has_mask and not len(ring_spots):
        return mask
    maps = ring_maps(geometry, np.shape(data))
    from_spots = ring_annuli(equivalent_radius_px(ring_spots.fs, ring_spots.ss, geometry)) if len(ring_spots) else None
    annuli = merge_annuli(from_spots, annuli_from_mask(artifact_mask, maps, test) if has_mask else None)
    if not len(annuli):
        return mask
    no_estimate = np.zeros(np.shape(data), dtype=bool)
    for m in (peak_pixels, bad):
        if m is not None:
            no_estimate |= m
    keep = no_estimate if fixed is None else no_estimate | fixed
    ring, decided = ring_profile(data, None if bad is None else ~np.asarray(bad, dtype=bool), maps, annuli,
                                 exclude=mask | no_estimate, exclude_core=keep, test=test)
    if peak_pixels is not None:
        ring &= ~peak_pixels
        decided &= ~peak_pixels
    if fixed is not None:
        decided &= ~fixed
    return (mask & ~decided) | ring


def mask_powder_rings(
    peaks: PeakList,
    artifact_mask: Optional[np.ndarray],
    data: np.ndarray,
    bad: Optional[np.ndarray],
    geometry: Optional[Geometry],
    *,
    peak_pixels: Optional[np.ndarray] = None,
    drop_ring_spots: bool = True,
    whole_rings: bool = True,
    test: RingProfileTest = RingProfileTest(),
) -> tuple:
    """The powder-ring steps of the auto-mask, as the analyzer and the evaluation take them:
    (peaks off powder rings, ring spots, discs over the ring spots, artifact pixels with the
    discs and -- when ``whole_rings`` -- the rings followed, :func:`follow_rings`).  Ring spots
    are split off (:func:`~peaknet_gui.peaks.rings.split_ring_peaks`) when ``drop_ring_spots``;
    ``artifact_mask`` None (the classical finder): only the rings of the ring spots are
    followed.  Without a geometry nothing changes."""
    rings = PeakList()
    if drop_ring_spots and geometry is not None:
        peaks, rings = split_ring_peaks(peaks, geometry)
    discs = mask_spots(np.zeros(np.shape(data), dtype=bool), rings)
    art = discs if artifact_mask is None else artifact_mask | discs
    if whole_rings and geometry is not None:
        art = follow_rings(art, data, bad, geometry, artifact_mask, rings, peak_pixels=peak_pixels, fixed=discs, test=test)
    return peaks, rings, discs, art
