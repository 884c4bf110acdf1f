"""What the network is taught to call a peak or an artifact: per-pixel labels from EXPECTED
(noise-free) values, following what DIALS' dispersion spot finder can detect.

Noise variance of a pixel, in photons^2: ``V = background + artifacts + (read_noise / gain)^2``
(every expected photon that is not the spot itself, plus the readout noise).

Bragg spots (:func:`spot_stats`), with ``S`` the spot's own expected photons in a pixel and
``sigma = sqrt(max(V, var_floor))``:

* *strong pixel*: ``S >= k_strong * sigma`` (DIALS' 3-sigma test, on the mean); *weak pixel*:
  ``S >= k_weak * sigma``;
* the spot is **visible -> label 1** if the (2k+1)^2 box around its brightest pixel passes DIALS'
  dispersion test in expectation -- index of dispersion ``(V + mean S + var S) / (B + mean S) >
  1 + sigma_background * sqrt(2 / (n - 1))`` with box means of the noise variance V and the
  diffuse photons B (:func:`dispersion_index`) -- and it has ``>= min_strong_pixels`` strong
  pixels (DIALS keeps spots of >= 3 connected strong pixels on pixel-array detectors), or
  ``>= 2`` strong pixels with a peak ``>= k_sharp * sigma`` (small sharp spots, which DIALS finds
  with ``min_spot_size = 2`` as on the CSPAD);
* **marginal -> label 255** (not labelled: the loss ignores it, a finder is neither rewarded nor
  punished) if it is not visible but has a strong pixel or ``>= min_strong_pixels`` weak pixels;
* otherwise **invisible -> label 0**, it stays background (faint extended spots included: DIALS
  does not find them either).

``sigma_background`` is 7 rather than DIALS' 6 so that a label-1 spot is one DIALS finds in >~90 %
of noise realisations (measured with :func:`peaknet_gui.sim.realism.dispersion_spots` on simulated
Pilatus frames); spots at the threshold, found half the time, fall into label 255.

The labelled pixels (extent) of a visible or marginal spot are those with
``S >= max(k_pixel * sqrt(V), frac_of_max * max(S), min_pixel_photons)``: where its signal stands
out of the noise, at least a photon, without the faint halo of bright spots that would merge
neighbours (real thaumatin spots sit 5-10 px apart).  SNR (the ``peakSNR`` written to runs) is
``I / sqrt(I + sum V)`` over the extent, with ``I`` the spot's expected photons there.

Artifacts (:func:`artifact_label_mask`): a pixel of ring/streak/kapton/calibrant scatter is
label 2 where that scatter's expected photons ``A >= max(artifact_k * sqrt(V_other), artifact_min_photons)``
(``V_other`` = noise without the artifact itself).  Peaks take precedence over artifacts, and
pixels without a usable reading (gaps, dead pixels) are 255.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .spots import SpotPatches

BACKGROUND, PEAK, ARTIFACT, IGNORE = 0, 1, 2, 255


@dataclass
class LabelRule:
    k_strong: float = 3.0
    k_weak: float = 2.0
    k_sharp: float = 6.0
    sigma_background: float = 7.0  # dispersion test on the 7x7 box (DIALS uses 6; 0 = off)
    kernel: int = 3
    min_strong_pixels: int = 3
    var_floor: float = 0.5
    k_pixel: float = 2.0
    frac_of_max: float = 0.15
    min_pixel_photons: float = 1.0
    artifact_k: float = 1.0
    artifact_min_photons: float = 0.5

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SpotStats:
    """Per spot: ``cls`` (1 visible, 255 marginal, 0 invisible), ``n_strong``, ``npix`` (extent
    pixels), ``photons`` (expected photons in the extent), ``snr``, extent centroid ``fs``/``ss``
    (NaN without extent), ``max_photons`` (brightest pixel), ``dispersion`` (expected index of
    dispersion around the brightest pixel, computed only where it decides) and ``extent``: per patch
    group, (subset, (m', K*K) bool) -- ``subset`` the group's rows examined (None = all)."""

    cls: np.ndarray
    n_strong: np.ndarray
    npix: np.ndarray
    photons: np.ndarray
    snr: np.ndarray
    fs: np.ndarray
    ss: np.ndarray
    max_photons: np.ndarray
    dispersion: np.ndarray
    extent: list


def dispersion_index(S: np.ndarray, V: np.ndarray, B: np.ndarray, ok: np.ndarray, idx: np.ndarray, fs_n: int,
                     kernel: int) -> np.ndarray:
    """Expected index of dispersion (variance / mean, photons) of the (2k+1)^2 box around each
    spot's brightest pixel: ``(V + S_mean + var(S)) / (B + S_mean)`` with box means of the noise
    variance V and the diffuse photons B, as DIALS' dispersion test sees it."""
    n = len(S)
    if n == 0:
        return np.zeros(0)
    top = np.argmax(S, axis=1)
    pk = idx[np.arange(n), top]
    pss, pfs = pk // fs_n, pk % fs_n
    iss, ifs = idx // fs_n, idx % fs_n
    inbox = ok & (np.abs(iss - pss[:, None]) <= kernel) & (np.abs(ifs - pfs[:, None]) <= kernel)
    m = float((2 * kernel + 1) ** 2)
    cnt = np.maximum(inbox.sum(axis=1), 1)
    s1 = np.where(inbox, S, 0).sum(axis=1) / m
    s2 = np.where(inbox, S * S, 0).sum(axis=1) / m
    vbar = np.where(inbox, V, 0).sum(axis=1) / cnt
    bbar = np.where(inbox, B, 0).sum(axis=1) / cnt
    with np.errstate(invalid="ignore", divide="ignore"):
        return (vbar + s1 + (s2 - s1 * s1)) / np.maximum(bbar + s1, 1e-6)


def spot_stats(patches: SpotPatches, noise_var: np.ndarray, usable: np.ndarray, fs_n: int,
               rule: LabelRule = LabelRule(), diffuse: np.ndarray = None) -> SpotStats:
    """Classify each rendered spot.  ``noise_var``/``usable`` (and ``diffuse``, the expected
    photons of everything but the spots; default ``noise_var``) are flat arrays over the data array."""
    n = patches.n
    out = {k: np.zeros(n, dt) for k, dt in (("n_strong", np.int32), ("npix", np.int32), ("photons", np.float64),
                                             ("snr", np.float64), ("max_photons", np.float64),
                                             ("dispersion", np.float64))}
    out["fs"] = np.full(n, np.nan)
    out["ss"] = np.full(n, np.nan)
    dispersed = np.ones(n, dtype=bool)
    extents = []
    diffuse = noise_var if diffuse is None else diffuse
    m = (2 * rule.kernel + 1) ** 2
    floor_weak = min(rule.k_weak, rule.k_strong) * np.sqrt(rule.var_floor)
    n_weak_all = np.zeros(n, dtype=np.int32)
    sharp_all = np.zeros(n, dtype=bool)
    for g in patches.groups:
        # spots without a single weak pixel stay 0 whatever else: skip them
        maybe = g.value.max(axis=1) >= floor_weak
        if not np.all(maybe):
            g = type(g)(g.rows[maybe], g.index[maybe], g.value[maybe])
            extents.append((maybe, None))
        else:
            extents.append((None, None))
        idx = g.index
        ok = idx >= 0
        safe = np.where(ok, idx, 0)
        ok &= usable[safe]
        S = np.where(ok, g.value, 0.0).astype(np.float32)
        V = np.where(ok, noise_var[safe], 1.0).astype(np.float32)
        sigma = np.sqrt(np.maximum(V, rule.var_floor))
        strong = ok & (S >= rule.k_strong * sigma)
        n_weak_all[g.rows] = (ok & (S >= rule.k_weak * sigma)).sum(axis=1)
        sharp_all[g.rows] = (ok & (S >= rule.k_sharp * sigma)).any(axis=1)
        smax = S.max(axis=1)
        thr = np.maximum(np.maximum(rule.k_pixel * np.sqrt(V), (rule.frac_of_max * smax)[:, None]),
                         rule.min_pixel_photons)
        extent = ok & (S >= thr)
        photons = np.where(extent, S, 0).sum(axis=1, dtype=np.float64)
        var = np.where(extent, V, 0).sum(axis=1, dtype=np.float64)
        npix = extent.sum(axis=1)
        r = g.rows
        out["n_strong"][r] = strong.sum(axis=1)
        out["npix"][r] = npix
        out["photons"][r] = photons
        out["max_photons"][r] = smax
        with np.errstate(invalid="ignore", divide="ignore"):
            out["snr"][r] = np.where(npix > 0, photons / np.sqrt(photons + var), 0.0)
            w = np.where(extent, S, 0).astype(np.float64)
            wsum = w.sum(axis=1)
            out["fs"][r] = np.where(wsum > 0, (w * (safe % fs_n)).sum(axis=1) / wsum, np.nan)
            out["ss"][r] = np.where(wsum > 0, (w * (safe // fs_n)).sum(axis=1) / wsum, np.nan)
        if rule.sigma_background > 0:
            cand = np.flatnonzero(out["n_strong"][r] >= 2)  # the only ones it can matter for
            B = np.where(ok[cand], diffuse[safe[cand]], 1.0).astype(np.float32)
            disp = dispersion_index(S[cand], V[cand], B, ok[cand], safe[cand], fs_n, rule.kernel)
            out["dispersion"][r[cand]] = disp
            dispersed[r[cand]] = disp > 1.0 + rule.sigma_background * np.sqrt(2.0 / (m - 1))
        extents[-1] = (extents[-1][0], extent)
    cls = np.zeros(n, dtype=np.uint8)
    ns = out["n_strong"]
    marginal = (ns >= 1) | (n_weak_all >= rule.min_strong_pixels)
    cls[marginal & (out["npix"] > 0)] = IGNORE
    visible = dispersed & ((ns >= rule.min_strong_pixels) | ((ns >= 2) & sharp_all))
    cls[visible & (out["npix"] > 0)] = PEAK
    return SpotStats(cls=cls, extent=extents, **out)


def paint_spot_labels(labels_flat: np.ndarray, patches: SpotPatches, stats: SpotStats) -> None:
    """Write label 255 for marginal and then label 1 for visible spots' extents (in place)."""
    for cls in (IGNORE, PEAK):
        for g, (sub, extent) in zip(patches.groups, stats.extent):
            if sub is not None:
                g = type(g)(g.rows[sub], g.index[sub], g.value[sub])
            rows = stats.cls[g.rows] == cls
            if not np.any(rows):
                continue
            pix = g.index[rows][extent[rows]]
            if cls == IGNORE:
                pix = pix[labels_flat[pix] != PEAK]
            labels_flat[pix] = cls


def artifact_label_mask(artifact: np.ndarray, other_var: np.ndarray, rule: LabelRule = LabelRule()) -> np.ndarray:
    """True where artifact scatter stands out of the rest of the noise (see the module doc)."""
    return artifact >= np.maximum(rule.artifact_k * np.sqrt(np.maximum(other_var, 0)), rule.artifact_min_photons)
