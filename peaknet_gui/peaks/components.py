"""Peaks from a per-pixel peak mask: connected components with 8-connectivity.

Each component of the mask (the model's peak class, or the pixels above a threshold) is one
peak.  Components never cross panel boundaries.  For every component we measure, without a
Python loop per peak:

* the local background and noise in an annulus around it (3-sigma clipped mean around the
  median of the annulus pixels that are neither bad nor part of any peak, on the same panel),
* the background-subtracted total and maximum intensity,
* the intensity-weighted centroid with background-subtracted weights (negative weights
  clipped to 0; pixel-index coordinates, centre of the first pixel at 0, 0),
* the SNR as peakfinder8 defines it: total intensity / local background sigma, and the
  brightest pixel's (``max_snr``: background-subtracted maximum / local background sigma; with
  ``photon_floor`` the sigma is at least one photon where the geometry gives the detector's gain,
  as in the simulator's truth: on a nearly empty background a single photon stands many read-noise
  sigmas high, yet one photon is no spot),
* the panel and the resolution 1/d (inverse Angstrom) from the geometry;
* with a ``score`` map, the highest score of the component (``confidence``).

With a per-pixel ``score`` (the model's peak-class probability) a component is kept only when
its highest score reaches ``min_score``: the model's confidence in the peak as a whole, which
decides without moving the peak's pixels or centroid (the model's operating point,
:mod:`peaknet_gui.model.operating_point`); with ``min_pixel_snr`` > 0 a component is kept only
when its brightest pixel stands that many background sigmas above its local background (the
operating point's photometric half).

With ``cores`` (the pixels the model itself calls peak, its argmax, while the mask is the
peak probability above a lower segmentation threshold) a component that holds several separate
cores is split between them, every pixel going to its nearest core (:func:`split_at_cores`): a
low threshold reaches the faint spots, and on a crowded frame it also joins neighbouring spots
into one component -- on a simulated 1000-spot Rayonix frame at threshold 0.1 more than a third of
the spots sat in components of hundreds of pixels, one centroid for many spots.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..geometry import Geometry
from .background import ring_stats
from .detmaps import DetectorMaps, detector_maps, peak_resolution, photon_adu
from .filters import ConfidentTier, passes_operating_point
from .peaklist import PeakList

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
#: largest inner radius (pixels) of a background annulus
MAX_RING_RADIUS = 16.0


def label_components(mask: np.ndarray, maps: Optional[DetectorMaps] = None) -> tuple:
    """Label the 8-connected components of ``mask``, each panel separately.

    Returns ``(labels, n)``: an int32 array (0 = not in a component) and the number of
    components.  With ``maps`` pixels outside every panel are ignored and components stop at
    panel edges even where two panels touch in the data array.
    """
    if maps is None or maps.single_panel_covers_all:
        labels, n = ndimage.label(mask, structure=EIGHT_CONNECTED)
        return labels.astype(np.int32, copy=False), int(n)
    labels = np.zeros(mask.shape, dtype=np.int32)
    n = 0
    for sl in maps.panel_slices:
        sub = mask[sl]
        if not sub.any():
            continue
        lab, k = ndimage.label(sub, structure=EIGHT_CONNECTED)
        if k:
            labels[sl] = np.where(lab > 0, lab + n, 0)
            n += int(k)
    return labels, n


def split_at_cores(labels: np.ndarray, n: int, cores: np.ndarray, maps: Optional[DetectorMaps] = None) -> tuple:
    """``(labels, n)`` with every component that holds two or more separate ``cores`` (connected
    parts of ``cores`` inside it) split between them: each pixel goes to the core nearest to it,
    the first core keeps the component's label, the others get new ones.  Components with one
    core or none stay whole."""
    core_lab, n_cores = label_components(cores & (labels > 0), maps)
    if n_cores < 2:
        return labels, n
    owner = ndimage.maximum(labels, core_lab, index=np.arange(1, n_cores + 1)).astype(np.int64)
    per_component = np.bincount(owner, minlength=n + 1)
    crowded = np.flatnonzero(per_component >= 2)
    if not len(crowded):
        return labels, n
    out = labels.copy()
    boxes = ndimage.find_objects(labels)
    for c in crowded:
        box = boxes[c - 1]
        inside = labels[box] == c
        seeds = np.where(inside, core_lab[box], 0)
        _, (iy, ix) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
        nearest = seeds[iy, ix]
        sub = out[box]
        for core in np.flatnonzero(owner == c)[1:] + 1:
            n += 1
            sub[inside & (nearest == core)] = n
    return out, n


def _check(data: np.ndarray, mask: np.ndarray, bad: Optional[np.ndarray]) -> None:
    if data.ndim != 2:
        raise InputError(f"peak extraction needs a 2-D frame, got shape {data.shape}")
    if mask.shape != data.shape:
        raise InputError(f"peak mask shape {mask.shape} does not match the frame's {data.shape}")
    if bad is not None and bad.shape != data.shape:
        raise InputError(f"bad-pixel mask shape {bad.shape} does not match the frame's {data.shape}")


def _fill_missing(values: np.ndarray, fallback) -> np.ndarray:
    """Replace non-finite entries by the median of the finite ones, or by ``fallback()``."""
    good = np.isfinite(values)
    if good.all():
        return values
    fill = float(np.median(values[good])) if good.any() else float(fallback())
    return np.where(good, values, fill)


def _frame_median(data: np.ndarray, usable: np.ndarray) -> float:
    sample = data[::4, ::4][usable[::4, ::4]]
    return float(np.median(sample)) if sample.size else 0.0


def peaks_from_mask(
    data: np.ndarray,
    peak_mask: np.ndarray,
    *,
    bad: Optional[np.ndarray] = None,
    geometry: Optional[Geometry] = None,
    photon_energy_ev: Optional[float] = None,
    min_pixels: int = 1,
    max_pixels: int = 10000,
    ring_gap: int = 1,
    ring_width: int = 3,
    maps: Optional[DetectorMaps] = None,
    score: Optional[np.ndarray] = None,
    min_score: float = 0.0,
    min_pixel_snr: float = 0.0,
    photon_floor: bool = False,
    cores: Optional[np.ndarray] = None,
    confident: Optional[ConfidentTier] = None,
) -> PeakList:
    """Peaks (one per 8-connected component of ``peak_mask``) of a 2-D frame.

    ``bad`` pixels never belong to a peak nor to a background annulus.  ``geometry`` gives the
    panels (components do not merge across panels; pixels outside every panel are ignored) and
    the resolution; ``photon_energy_ev`` overrides the geometry's energy.  Components with
    fewer than ``min_pixels`` or more than ``max_pixels`` pixels are dropped.  The background
    annulus starts ``ring_gap`` pixels beyond the component's farthest pixel from its centre and
    is ``ring_width`` pixels wide.  ``maps`` may pass precomputed :func:`detector_maps`.
    ``score`` (same shape as ``data``, e.g. the peak probability) with ``min_score`` > 0: components
    whose highest score is below ``min_score`` are dropped; with ``min_pixel_snr`` > 0, components
    whose ``max_snr`` is below it.  ``photon_floor``: ``max_snr`` against max(local sigma, one
    photon) where the geometry knows the gain (:func:`~.detmaps.photon_adu`).  ``confident``: the
    operating point's second tier -- components of score >= its confidence are kept at its lower
    pixel SNR (:func:`~.filters.passes_operating_point`).
    """
    data = np.asarray(data)
    peak_mask = np.asarray(peak_mask, dtype=bool)
    _check(data, peak_mask, bad)
    if maps is None and geometry is not None:
        maps = detector_maps(geometry, data.shape)
    usable = np.isfinite(data) if data.dtype.kind == "f" else np.ones(data.shape, dtype=bool)
    if bad is not None:
        usable &= ~np.asarray(bad, dtype=bool)
    if maps is not None:
        usable &= maps.panel >= 0
    mask = peak_mask & usable
    labels, n = label_components(mask, maps)
    if n == 0:
        return PeakList()
    if cores is not None:
        if np.shape(cores) != data.shape:
            raise InputError(f"core mask {np.shape(cores)} does not match the frame {data.shape}")
        labels, n = split_at_cores(labels, n, np.asarray(cores, dtype=bool) & mask, maps)

    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs] - 1
    npix_all = np.bincount(lab, minlength=n)
    valid = (npix_all >= max(1, min_pixels)) & (npix_all <= max_pixels)
    best = None
    if score is not None:
        if np.shape(score) != data.shape:
            raise InputError(f"score map {np.shape(score)} does not match the frame {data.shape}")
        best = np.full(n, -np.inf, dtype=np.float32)
        np.maximum.at(best, lab, np.asarray(score)[ys, xs].astype(np.float32))
        floor = min_score if confident is None else min(min_score, confident.min_confidence)
        if floor > 0:
            valid &= best >= np.float32(floor)
        best = best[valid]
    if not valid.any():
        return PeakList()
    if not valid.all():
        keep_pix = valid[lab]
        ys, xs, lab = ys[keep_pix], xs[keep_pix], lab[keep_pix]
        new_id = np.cumsum(valid) - 1
        lab = new_id[lab]
    npk = int(valid.sum())
    npix = npix_all[valid]

    # geometric centre and extent of every component -> annulus radii
    cy = np.bincount(lab, ys, minlength=npk) / npix
    cx = np.bincount(lab, xs, minlength=npk) / npix
    order = np.argsort(lab, kind="stable")
    starts = np.concatenate([[0], np.cumsum(npix)[:-1]])
    dist = np.maximum(np.abs(ys - np.rint(cy)[lab]), np.abs(xs - np.rint(cx)[lab]))
    extent = np.maximum.reduceat(dist[order], starts)
    # very large components (streaks, artifacts called peaks) get a ring of bounded size: its
    # pixels inside the component are excluded anyway, and the cost stays small
    r_in = np.minimum(extent + ring_gap + 1.0, MAX_RING_RADIUS)
    r_out = r_in + max(1, ring_width)

    panel_of_peak = maps.panel[ys[order][starts], xs[order][starts]].astype(np.int32) if maps is not None else None
    multi_panel = maps is not None and not maps.single_panel_covers_all
    stats = ring_stats(
        data,
        usable & ~peak_mask,
        cy,
        cx,
        r_in,
        r_out,
        panel_map=maps.panel if multi_panel else None,
        peak_panel=panel_of_peak if multi_panel else None,
        robust=True,
    )
    vals_raw = data[ys, xs].astype(np.float64)
    offset = _fill_missing(stats.offset, lambda: _frame_median(data, usable))
    sigma = stats.sigma.copy()
    sigma[~(sigma > 0)] = np.nan
    sigma = _fill_missing(sigma, lambda: 1.0)

    vals = vals_raw - offset[lab]
    total = np.bincount(lab, vals, minlength=npk)
    maximum = np.maximum.reduceat(vals[order], starts)
    w = np.maximum(vals, 0.0)
    wsum = np.bincount(lab, w, minlength=npk)
    with np.errstate(invalid="ignore", divide="ignore"):
        fs = np.bincount(lab, w * xs, minlength=npk) / wsum
        ss = np.bincount(lab, w * ys, minlength=npk) / wsum
    flat = ~(wsum > 0)
    fs[flat] = cx[flat]
    ss[flat] = cy[flat]

    panel = panel_of_peak if panel_of_peak is not None else np.full(npk, -1, dtype=np.int32)
    resolution = peak_resolution(geometry, panel, fs, ss, photon_energy_ev)
    pixel_sigma = sigma
    if photon_floor:
        one_photon = photon_adu(geometry, panel, photon_energy_ev)
        pixel_sigma = np.where(one_photon > sigma, one_photon, sigma)
    peaks = PeakList(
        fs=fs,
        ss=ss,
        intensity=total,
        max_intensity=maximum,
        npix=npix,
        snr=total / sigma,
        panel=panel,
        resolution=resolution,
        confidence=best if best is not None else np.zeros(0),
        max_snr=maximum / pixel_sigma,
    )
    if confident is not None and score is not None:
        peaks = peaks.select(passes_operating_point(peaks, min_score, min_pixel_snr, confident))
    elif min_pixel_snr > 0:
        peaks = peaks.select(peaks.max_snr >= min_pixel_snr)
    return peaks
