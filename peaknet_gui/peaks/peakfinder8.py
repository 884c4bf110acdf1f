"""A peakfinder8-style classical peak finder (Cheetah / OM / CrystFEL), vectorised with numpy.

The algorithm (Barty et al. 2014, as in Cheetah, OM, psocake and CrystFEL's ``peakfinder8``):

1. Every usable pixel (not bad, on a panel, on a panel that is not ``no_index``, radius within
   ``[min_res, max_res]`` pixels) falls in a radial bin of width 1 pixel around the beam.
2. Radial statistics with iterative sigma clipping (5 rounds): mean and standard deviation
   of the pixels between ``mean - min_snr * sigma`` and ``mean + min_snr * sigma`` of the
   previous round; a pixel is a peak candidate when it exceeds
   ``max(mean + min_snr * sigma, adc_threshold)`` of its bin.
3. Candidates are grouped into 8-connected components per panel; a group is a peak when it
   has ``min_pix_count..max_pix_count`` pixels.
4. Local background: mean and standard deviation of the non-candidate pixels in a disc of
   radius ``2 * local_bg_radius`` around the group's centre, on the same panel.  The peak's
   background-subtracted total intensity over that sigma is its SNR, which must reach
   ``min_snr``; the peak's brightest pixel must be at least as bright as the brightest
   background pixel of the disc (local-maximum check).
5. At most ``max_num_peaks`` peaks, in panel and raster order.

Differences from the C code, on purpose: centroids are weighted by background-subtracted
intensity (not raw), and a group touching a panel edge is kept.  The same
:class:`~peaknet_gui.peaks.peaklist.PeakList` comes out as from the network's class map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InputError
from ..geometry import Geometry
from .background import ring_stats
from .components import label_components
from .detmaps import DetectorMaps, detector_maps, peak_resolution
from .peaklist import PeakList


@dataclass
class Peakfinder8Settings:
    """Parameters with CrystFEL's names and meaning (``--threshold``, ``--min-snr``, ...)."""

    adc_threshold: float = 0.0
    min_snr: float = 5.0
    min_pix_count: int = 2
    max_pix_count: int = 200
    local_bg_radius: int = 3
    min_res: float = 0.0  # pixels from the beam
    max_res: float = 1e9
    max_num_peaks: int = 2048
    iterations: int = 5

    @classmethod
    def from_finder(cls, finder) -> "Peakfinder8Settings":
        """From :class:`~peaknet_gui.pipeline.settings.FinderSettings` (its ``pf8_*`` fields)."""
        return cls(
            adc_threshold=float(finder.pf8_adc_threshold),
            min_snr=float(finder.pf8_min_snr),
            min_pix_count=int(finder.pf8_min_pixels),
            max_pix_count=int(finder.pf8_max_pixels),
            local_bg_radius=int(finder.pf8_local_bg_radius),
            max_num_peaks=int(finder.max_peaks) if finder.max_peaks is not None else 2048,
        )


@dataclass
class RadialStats:
    """Per radial bin (1 pixel wide): clipped mean, sigma, pixel count and peak threshold."""

    offset: np.ndarray
    sigma: np.ndarray
    count: np.ndarray
    threshold: np.ndarray


def radial_statistics(values: np.ndarray, rbin: np.ndarray, nbins: int, settings: Peakfinder8Settings) -> RadialStats:
    """Iteratively sigma-clipped statistics of ``values`` in radial bins ``rbin``.

    Each round keeps the pixels strictly between the previous round's ``mean -/+ min_snr *
    sigma`` (upper bound at least ``adc_threshold``).  Sums are formed as the sums over all
    pixels minus those over the (few) clipped pixels, and the loop stops once a round clips
    exactly the pixels of the previous one (later rounds would repeat it).
    """
    v64 = values.astype(np.float64)
    rbin = rbin.astype(np.intp, copy=False)
    full_count = np.bincount(rbin, minlength=nbins)
    full_s1 = np.bincount(rbin, v64, minlength=nbins)
    full_s2 = np.bincount(rbin, v64 * v64, minlength=nbins)
    count, s1, s2 = full_count, full_s1, full_s2
    clipped_prev = None
    offset = sigma = upper = None
    for it in range(max(1, settings.iterations)):
        if it > 0:
            has = count > 0
            centre = np.where(has, 0.5 * (np.where(has, upper, 0.0) + np.where(has, lower, 0.0)), 0.0)
            half = np.where(has, 0.5 * (np.where(has, upper, 0.0) - np.where(has, lower, 0.0)), np.inf)
            clipped = np.flatnonzero(~(np.abs(v64 - np.take(centre, rbin)) < np.take(half, rbin)))
            if clipped_prev is not None and np.array_equal(clipped, clipped_prev):
                break  # the same pixels as the previous round: converged
            clipped_prev = clipped
            rb = rbin[clipped]
            vc = v64[clipped]
            count = full_count - np.bincount(rb, minlength=nbins)
            s1 = full_s1 - np.bincount(rb, vc, minlength=nbins)
            s2 = full_s2 - np.bincount(rb, vc * vc, minlength=nbins)
        n = np.maximum(count, 1)
        offset = np.where(count > 0, s1 / n, 0.0)
        sigma = np.where(count > 0, np.sqrt(np.maximum(s2 / n - offset**2, 0.0)), 0.0)
        upper = np.where(count > 0, np.maximum(offset + settings.min_snr * sigma, settings.adc_threshold), np.inf)
        lower = np.where(count > 0, offset - settings.min_snr * sigma, -np.inf)
    return RadialStats(offset=offset, sigma=sigma, count=count, threshold=upper)


def peakfinder8(
    data: np.ndarray,
    *,
    bad: Optional[np.ndarray] = None,
    geometry: Optional[Geometry] = None,
    settings: Optional[Peakfinder8Settings] = None,
    photon_energy_ev: Optional[float] = None,
    maps: Optional[DetectorMaps] = None,
) -> PeakList:
    """Find Bragg peaks in a 2-D frame (the raw slab for multi-panel detectors).

    Needs the radius map of ``geometry`` (without one the frame is one panel and the beam is
    assumed at its centre).  Returns peaks in pixel-index coordinates with panel, total and
    maximum background-subtracted intensity, pixel count, SNR and resolution.
    """
    settings = settings or Peakfinder8Settings()
    data = np.asarray(data)
    if data.ndim != 2:
        raise InputError(f"peakfinder8 needs a 2-D frame, got shape {data.shape}")
    if bad is not None and np.shape(bad) != data.shape:
        raise InputError(f"bad-pixel mask shape {np.shape(bad)} does not match the frame's {data.shape}")
    if maps is None:
        maps = detector_maps(geometry, data.shape)
    radius = maps.radius_px
    usable = (maps.panel >= 0) & (radius > settings.min_res) & (radius < settings.max_res)
    if data.dtype.kind == "f":
        usable &= np.isfinite(data)
    if bad is not None:
        usable &= ~np.asarray(bad, dtype=bool)
    if geometry is not None:
        for i, p in enumerate(geometry.panels):
            if p.no_index:
                usable[maps.panel_slices[i]] = False
    if not usable.any():
        return PeakList()

    rbin_map = maps.radius_bin
    nbins = int(rbin_map.max()) + 1
    flat_usable = usable.ravel()
    values = data.ravel()[flat_usable]
    rbin = rbin_map.ravel()[flat_usable]
    stats = radial_statistics(values, rbin, nbins, settings)

    candidates = np.zeros(data.shape, dtype=bool)
    candidates.ravel()[np.flatnonzero(flat_usable)] = values > stats.threshold[rbin]
    labels, n = label_components(candidates, maps)
    if n == 0:
        return PeakList()

    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs] - 1
    npix_all = np.bincount(lab, minlength=n)
    valid = (npix_all >= settings.min_pix_count) & (npix_all <= settings.max_pix_count)
    if not valid.any():
        return PeakList()
    keep_pix = valid[lab]
    ys, xs = ys[keep_pix], xs[keep_pix]
    lab = (np.cumsum(valid) - 1)[lab[keep_pix]]
    npk = int(valid.sum())
    npix = npix_all[valid]
    vals_raw = data[ys, xs].astype(np.float64)

    # first centroid with the radial background, to place the local background disc
    w0 = np.maximum(vals_raw - stats.offset[rbin_map[ys, xs]], 0.0)
    s0 = np.bincount(lab, w0, minlength=npk)
    with np.errstate(invalid="ignore", divide="ignore"):
        c_fs = np.where(s0 > 0, np.bincount(lab, w0 * xs, minlength=npk) / s0, np.bincount(lab, xs, minlength=npk) / npix)
        c_ss = np.where(s0 > 0, np.bincount(lab, w0 * ys, minlength=npk) / s0, np.bincount(lab, ys, minlength=npk) / npix)
    order = np.argsort(lab, kind="stable")
    starts = np.concatenate([[0], np.cumsum(npix)[:-1]])
    panel = maps.panel[ys[order][starts], xs[order][starts]].astype(np.int32)

    disc = float(2 * settings.local_bg_radius)
    local = ring_stats(
        data,
        usable & ~candidates,
        c_ss,
        c_fs,
        np.zeros(npk),
        np.full(npk, disc),
        panel_map=maps.panel,
        peak_panel=panel,
        robust=False,
    )
    no_bg = local.count == 0
    c_bin = rbin_map[np.clip(np.rint(c_ss).astype(int), 0, data.shape[0] - 1), np.clip(np.rint(c_fs).astype(int), 0, data.shape[1] - 1)]
    offset = np.where(no_bg, stats.offset[c_bin], local.offset)
    sigma = np.where(no_bg, 0.01, local.sigma)
    bg_max = np.where(no_bg, 0.0, np.maximum(local.maximum, 0.0))

    vals = vals_raw - offset[lab]
    total = np.bincount(lab, vals, minlength=npk)
    maximum = np.maximum.reduceat(vals[order], starts)
    w = np.maximum(vals, 0.0)
    wsum = np.bincount(lab, w, minlength=npk)
    with np.errstate(invalid="ignore", divide="ignore"):
        fs = np.where(wsum > 0, np.bincount(lab, w * xs, minlength=npk) / wsum, c_fs)
        ss = np.where(wsum > 0, np.bincount(lab, w * ys, minlength=npk) / wsum, c_ss)
        snr = np.where(sigma > 1e-10, total / sigma, 0.0)
        max_snr = np.where(sigma > 1e-10, maximum / sigma, 0.0)

    ok = (snr >= settings.min_snr) & (maximum >= bg_max - offset) & (np.abs(total) > 1e-10)
    idx = np.flatnonzero(ok)[: max(0, settings.max_num_peaks)]
    return PeakList(
        fs=fs[idx],
        ss=ss[idx],
        intensity=total[idx],
        max_intensity=maximum[idx],
        npix=npix[idx],
        snr=snr[idx],
        max_snr=max_snr[idx],
        panel=panel[idx] if geometry is not None else np.full(len(idx), -1, dtype=np.int32),
        resolution=peak_resolution(geometry, panel[idx], fs[idx], ss[idx], photon_energy_ev),
    )
