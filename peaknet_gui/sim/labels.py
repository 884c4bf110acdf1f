"""What the network is taught to call a peak or an artifact: per-pixel labels following what
DIALS' dispersion spot finder detects.

Three modes (``LabelRule.mode``):

* ``"snr"`` (default since the sensitivity work): a spot is label 1 when its signal is detectable
  in principle, whatever its pixel count -- its expected integrated SNR against the local
  background noise, ``snr_det = I / sqrt(sum max(V, snr_var_floor))`` over its extent (``I`` its
  expected photons there, ``V`` the noise variance without the spot, floored at 1 photon^2 per
  pixel so that a spot on an empty photon-counting background needs >= 6 photons in one pixel),
  is at least ``snr_peak`` (6); 255 when it lies between
  ``snr_ignore`` (4) and ``snr_peak`` (a noise draw decides whether such a spot shows: the frame
  cannot say); 0 below (:func:`snr_classes`).  No peak finder's opinion enters: one-pixel spots
  of SNR >= 6 are peaks, broad faint spots of SNR < 4 background.  Spots whose labelled pixels
  touch a brighter peak's are *merged* (one connected component: the truth lists the brightest).
* ``"observed"``: a spot is label 1 when DIALS' test passes on the noisy frame actually
  written (:mod:`.observed`); spots visible in expectation (below) that this noise draw hides,
  and spots of expected SNR >= 6 that the test misses (broad, elongated), are 255; everything
  else 0.  Labels are then a function of the pixels the network sees.
* ``"expected"``: the class below, from expected (noise-free) values only.

Noise variance of a pixel, in photons^2: ``V = background + artifacts + (read_noise / gain)^2``
(every expected photon that is not the spot itself, plus the readout noise).

Bragg spots (:func:`spot_stats`), with ``S`` the spot's own expected photons in a pixel and
``sigma = sqrt(max(V, var_floor))``:

* *strong pixel*: ``S >= k_strong * sigma`` (DIALS' 3-sigma test, on the mean; and the whole
  reading above ``global_threshold``); *weak pixel*: ``S >= k_weak * sigma``;
* the spot is **visible -> label 1** if the (2k+1)^2 box around its brightest pixel passes DIALS'
  dispersion test in expectation -- index of dispersion ``(V + mean S + var S) / (B + mean S) >
  1 + sigma_background * sqrt(2 / (n - 1))`` with box means of the noise variance V and the
  diffuse photons B (:func:`dispersion_index`) -- and it has ``>= min_strong_pixels`` strong
  pixels (DIALS keeps spots of >= 3 connected strong pixels on pixel-array detectors), or
  ``>= 2`` strong pixels with a peak ``>= k_sharp * sigma`` (small sharp spots);
* **marginal -> label 255** if it is not visible but has a strong pixel or ``>= min_strong_pixels``
  weak pixels;
* otherwise **invisible -> label 0**, it stays background (faint extended spots included: DIALS
  does not find them either).

``sigma_background`` is 7 rather than DIALS' 6 so that a label-1 spot is one DIALS finds in >~90 %
of noise realisations.  On CSPAD-like detectors (:meth:`LabelRule.for_detector`) DIALS' CSPAD
settings apply: ``min_spot_size`` / ``min_strong_pixels`` 2 and a global threshold of 4 photons.

The labelled pixels (extent) of a spot are those with ``S >= max(k_pixel * sqrt(V), frac_of_max *
max(S), min_pixel_photons)``: where its signal stands out of the noise, at least a photon, without
the faint halo of bright spots that would merge neighbours.  Around a label-1 spot the pixels with
``S >= peak_band_k * sqrt(V)`` outside the extent are 255 (ignore band: the halo's edge is a coin
toss) where nothing else claims them.  SNR (``peakSNR``) is ``I / sqrt(I + sum V)`` over the
extent, with ``I`` the spot's expected photons there.

Artifacts (:func:`artifact_label_masks`): a pixel of ring/streak/kapton/calibrant scatter is
label 2 where that scatter's expected photons ``A >= max(artifact_k * sqrt(V_other),
artifact_min_photons)`` (``V_other`` = noise without the artifact itself), and 255 (ignore band)
where ``A >= artifact_band_k * sqrt(V_other)`` but below that.  The beamstop and its arm: label 2
where the photons they block ``>= beamstop_k`` sigma of the unshadowed noise (and 0.5 photon),
with the same band; an invisible shadow (nothing behind it) stays 0.  Peaks take precedence over
artifacts, and pixels without a usable reading (gaps, dead pixels) are 255.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .spots import SpotPatches

BACKGROUND, PEAK, ARTIFACT, IGNORE = 0, 1, 2, 255


@dataclass
class LabelRule:
    """Label thresholds (module doc).  ``mode`` ``"snr"`` (default): a peak is a spot of expected
    integrated SNR >= ``snr_peak``; ``"observed"``: peak labels from the DIALS test on the written
    frame (:mod:`.observed`); ``"expected"``: DIALS' test from expected values only."""

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
    artifact_band_k: float = 0.3  # 255 where artifact_band_k sigma <= artifact < artifact_k sigma (0 = no band)
    peak_band_k: float = 1.0  # 255 around label-1 spots where the spot's photons >= this many sigma (0 = no band)
    beamstop_k: float = 1.0  # shadow is label 2 where the blocked photons >= this many sigma
    global_threshold: float = 0.0  # photons a strong pixel must reach (DIALS global_threshold)
    mode: str = "snr"
    min_spot_size: int = 3  # observed mode: DIALS min_spot_size
    max_spot_size: int = 1000
    observed_sigma_background: float = 6.0  # DIALS' defaults for the test on the written frame
    observed_sigma_strong: float = 3.0
    observed_algorithm: str = "dispersion_extended"  # DIALS' default threshold ("dispersion": the classic one)
    max_separation: float = 2.0  # DIALS' peak-to-centroid filter: groups failing it make their spots 255
    unobserved_strong_snr: float = 6.0  # observed mode: spots of expected SNR >= this that DIALS misses are 255 (0 = off)
    unpassed_visible_ignored: bool = True  # observed mode: spots visible in expectation that DIALS misses are 255 (else 0)
    cspad_min_spot_size: int = 2  # CSPAD-like detectors: DIALS min_spot_size 2 ...
    cspad_global_threshold: float = 4.0  # ... global_threshold 100 ADU at gain 25 = 4 photons
    snr_peak: float = 6.0  # snr mode: label 1 from this expected integrated SNR on
    snr_ignore: float = 4.0  # snr mode: 255 from this SNR up to snr_peak
    snr_var_floor: float = 1.0  # snr mode: noise variance per pixel at least this (photons^2)
    faint_snr: float = 2.0  # label-0 spots of expected SNR >= this are listed as faint true reflections (evaluation only)

    def as_dict(self) -> dict:
        return asdict(self)

    def strict(self) -> "LabelRule":
        """The rule with every spot DIALS' test misses on the written frame labelled background
        (0), however visible in expectation or bright in expected SNR -- what the test decides
        is a function of the pixels the network sees; only spots of groups that fail the
        peak-to-centroid test and merged spots stay 255."""
        from dataclasses import replace

        return replace(self, unobserved_strong_snr=0.0, unpassed_visible_ignored=False)

    def for_detector(self, kind: str) -> "LabelRule":
        """The rule as applied on a detector of readout ``kind`` (CSPAD-like: DIALS' CSPAD
        settings, spots of 2 strong pixels and a global threshold)."""
        from dataclasses import replace

        from .detectors import CSPAD

        if kind != CSPAD:
            return self
        return replace(self, min_spot_size=self.cspad_min_spot_size, global_threshold=self.cspad_global_threshold,
                       min_strong_pixels=min(self.min_strong_pixels, self.cspad_min_spot_size))


@dataclass
class SpotStats:
    """Per spot: ``cls`` (1 visible, 255 marginal, 0 invisible), ``n_strong``, ``npix`` (extent
    pixels), ``photons`` (expected photons in the extent), ``snr``, extent centroid ``fs``/``ss``
    (NaN without extent), ``max_photons`` (brightest pixel), ``dispersion`` (expected index of
    dispersion around the brightest pixel, computed only where it decides) and ``extent``: per patch
    group, (subset, (m', K*K) bool) -- ``subset`` the group's rows examined (None = all); ``band``
    the ignore band around the extent, same layout as the extent's bool array."""

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
    band: list = None  # per patch group: (m', K*K) bool, pixels around the extent still >= peak_band_k sigma
    cls_expected: np.ndarray = None  # observed mode: the class from expected values
    snr_det: np.ndarray = None  # expected photons over the background noise of the extent (snr mode's test)


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
                                             ("dispersion", np.float64), ("snr_det", np.float64))}
    out["fs"] = np.full(n, np.nan)
    out["ss"] = np.full(n, np.nan)
    dispersed = np.ones(n, dtype=bool)
    extents, bands = [], []
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
        if rule.global_threshold > 0:  # DIALS' global threshold applies to the whole reading
            strong &= S + np.where(ok, diffuse[safe], 0.0) > rule.global_threshold
        n_weak_all[g.rows] = (ok & (S >= rule.k_weak * sigma)).sum(axis=1)
        sharp_all[g.rows] = (ok & (S >= rule.k_sharp * sigma)).any(axis=1)
        smax = S.max(axis=1)
        thr = np.maximum(np.maximum(rule.k_pixel * np.sqrt(V), (rule.frac_of_max * smax)[:, None]),
                         rule.min_pixel_photons)
        extent = ok & (S >= thr)
        if rule.peak_band_k > 0:
            bands.append(ok & ~extent & (S >= np.maximum(rule.peak_band_k * np.sqrt(V), 0.5 * rule.min_pixel_photons)))
        else:
            bands.append(np.zeros_like(extent))
        photons = np.where(extent, S, 0).sum(axis=1, dtype=np.float64)
        var = np.where(extent, V, 0).sum(axis=1, dtype=np.float64)
        var_det = np.where(extent, np.maximum(V, rule.snr_var_floor), 0).sum(axis=1, dtype=np.float64)
        npix = extent.sum(axis=1)
        r = g.rows
        out["n_strong"][r] = strong.sum(axis=1)
        out["npix"][r] = npix
        out["photons"][r] = photons
        out["max_photons"][r] = smax
        with np.errstate(invalid="ignore", divide="ignore"):
            out["snr"][r] = np.where(npix > 0, photons / np.sqrt(photons + var), 0.0)
            out["snr_det"][r] = np.where(npix > 0, photons / np.sqrt(var_det), 0.0)
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
    return SpotStats(cls=cls, extent=extents, band=bands, **out)


def _group_rows(patches: SpotPatches, stats: SpotStats):
    """(group restricted to the examined rows, extent, band) per patch group."""
    for g, (sub, extent), band in zip(patches.groups, stats.extent, stats.band or [None] * len(stats.extent)):
        if sub is not None:
            g = type(g)(g.rows[sub], g.index[sub], g.value[sub])
        yield g, extent, band


def paint_spot_labels(labels_flat: np.ndarray, patches: SpotPatches, stats: SpotStats) -> None:
    """Write label 255 for marginal and then label 1 for visible spots' extents, then 255 on the
    background pixels of the visible spots' bands (in place)."""
    for cls in (IGNORE, PEAK):
        for g, extent, _ in _group_rows(patches, stats):
            rows = stats.cls[g.rows] == cls
            if not np.any(rows):
                continue
            pix = g.index[rows][extent[rows]]
            if cls == IGNORE:
                pix = pix[labels_flat[pix] != PEAK]
            labels_flat[pix] = cls
    for g, _, band in _group_rows(patches, stats):
        if band is None:
            continue
        rows = stats.cls[g.rows] == PEAK
        if np.any(rows):
            pix = g.index[rows][band[rows]]
            labels_flat[pix[labels_flat[pix] == BACKGROUND]] = IGNORE


def artifact_label_masks(artifact: np.ndarray, other_var: np.ndarray, rule: LabelRule = LabelRule(),
                         k: float = None) -> tuple:
    """(label 2, ignore band) masks of artifact scatter ``artifact`` (photons) over noise of
    variance ``other_var``: label 2 where ``A >= max(k sqrt(V_other), artifact_min_photons)``
    (``k`` default ``rule.artifact_k``), band where it is below that but ``A >= artifact_band_k
    sqrt(V_other)`` (and ``>= artifact_band_k * artifact_min_photons``): the coin-toss edge."""
    k = rule.artifact_k if k is None else k
    sd = np.sqrt(np.maximum(other_var, 0))
    lab2 = artifact >= np.maximum(k * sd, rule.artifact_min_photons)
    if rule.artifact_band_k <= 0:
        return lab2, np.zeros_like(lab2)
    b = rule.artifact_band_k
    band = ~lab2 & (artifact >= np.maximum(b * sd, b * rule.artifact_min_photons))
    return lab2, band


def artifact_label_mask(artifact: np.ndarray, other_var: np.ndarray, rule: LabelRule = LabelRule()) -> np.ndarray:
    """True where artifact scatter stands out of the rest of the noise (see the module doc)."""
    return artifact_label_masks(artifact, other_var, rule)[0]


def snr_classes(patches: SpotPatches, stats: SpotStats, rule: LabelRule, shape: tuple) -> tuple:
    """(cls, merged) per spot in ``snr`` mode (module doc): 1 where the expected integrated SNR is
    against the background (``stats.snr_det``) is >= ``rule.snr_peak``, 255 from ``rule.snr_ignore``, else 0 (spots without extent 0);
    ``merged`` True for label-1 spots whose extent is 8-connected to a brighter label-1 spot's
    (a finder reports the component once: it is listed by its brightest spot)."""
    from scipy import ndimage

    has = stats.npix > 0
    cls = np.zeros(patches.n, dtype=np.uint8)
    cls[has & (stats.snr_det >= rule.snr_ignore)] = IGNORE
    peak = has & (stats.snr_det >= rule.snr_peak)
    cls[peak] = PEAK
    merged = np.zeros(patches.n, dtype=bool)
    if np.count_nonzero(peak) < 2:
        return cls, merged
    size = int(shape[0]) * int(shape[1])
    painted = np.zeros(size, dtype=bool)
    top = np.zeros(patches.n, dtype=np.int64)
    for g, extent, _ in _group_rows(patches, stats):
        rows = peak[g.rows]
        if not np.any(rows):
            continue
        idx, ext, val = g.index[rows], extent[rows], g.value[rows]
        painted[idx[ext]] = True
        best = np.argmax(np.where(ext, val, -1.0), axis=1)
        top[g.rows[rows]] = idx[np.arange(len(idx)), best]
    comp, _ = ndimage.label(painted.reshape(shape), structure=np.ones((3, 3), dtype=bool))
    p = np.flatnonzero(peak)
    group = comp.ravel()[top[p]]
    sort = np.lexsort((-stats.photons[p], group))
    order, g_sorted = p[sort], group[sort]
    first = np.r_[True, g_sorted[1:] != g_sorted[:-1]]
    merged[order[~first]] = True
    cls[merged] = IGNORE
    return cls, merged
