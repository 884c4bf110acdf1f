"""Peak labels from the frame actually written: DIALS' dispersion test on the noisy readout.

With expected values alone (:func:`.labels.spot_stats`) whether a borderline spot is a peak is a
coin toss given the pixels a network sees.  In ``observed`` mode (:class:`.labels.LabelRule`,
the default) the class of every rendered spot is decided on the written frame instead:

1. the frame in photon units (:func:`photon_image`): ``(data - offset - panel pedestal) / gain``
   with unusable pixels out.  Where readout noise adds to Poisson noise (CCD, CSPAD) the image
   is shifted by the read-noise variance in photons^2, per panel (``x + s^2`` of ``Poisson +
   N(0, s^2)`` has mean = variance, what the dispersion test assumes; a finder that ignored
   read noise would call noise everywhere "strong");
2. DIALS' default threshold (``dispersion_extended``; the classic ``dispersion`` by
   ``LabelRule.observed_algorithm``) on it, panel by panel
   (:func:`peaknet_gui.sim.realism.panel_dispersion_mask`, gain 1, 7x7 box, sigma_background 6,
   sigma_strong 3, the rule's global threshold: 4 photons on CSPAD-like detectors, i.e. DIALS'
   100 ADU at gain 25), 8-connected groups of strong pixels within a panel (:func:`observed_strong`);
   on the real thaumatin stills this finder reproduces the DIALS 3.12 reference lists with
   recall 0.98 and precision 0.93 (``benchmarks/bench_sim_realism.py``);
3. a spot **passes** if an extent pixel of it belongs to a group of ``min_spot_size`` (3; 2 on
   CSPAD-like detectors) to ``max_spot_size`` strong pixels whose brightest pixel lies within
   ``max_separation`` (2 px) of its centroid (:func:`observed_classes`): label 1.  Spots that
   touch only groups failing the separation test (DIALS drops them; merged neighbours, streaks),
   spots visible in expectation that this noise draw does not pass, and spots that do not pass
   although their expected SNR (``peakSNR``'s definition) is at least
   ``LabelRule.unobserved_strong_snr`` (6: broad or elongated spots whose photons are spread too
   thinly for DIALS' per-pixel test -- real Bragg peaks by the SNR >= 6 criterion, neither taught
   as background nor required): 255.  Everything else (marginal spots that do not pass, noise
   groups): 0.  With :meth:`.labels.LabelRule.strict` (``peaknet simulate --strict-peak-labels``)
   every spot that does not pass is 0: what the test decides is a function of the pixels the
   network sees.

Spots that pass through the same strong group as a brighter spot (crowded or overlapping
reflections, which DIALS reports as one spot) are *merged*: the true peak list holds the
brightest spot of each group, the others are listed as marginal and labelled 255.
"""

from __future__ import annotations

import numpy as np

from .detectors import CCD, CSPAD, DetectorModel
from .labels import IGNORE, PEAK, LabelRule, SpotStats
from .noise import Personality
from .spots import SpotPatches


def photon_image(data: np.ndarray, det: DetectorModel, pers: Personality) -> np.ndarray:
    """The readout in photons (float32), offset, pedestals and gain removed, shifted by the
    readout variance (module doc)."""
    x = data.astype(np.float32)
    if det.kind not in (CCD, CSPAD):  # photon counter: counts are photons, Poisson only
        return x
    g = np.float32(max(pers.adu_per_photon, 1e-9))
    x -= np.float32(pers.offset_adu)
    rn = pers.read_noise_adu
    if det.kind == CCD:
        x /= g
        x += np.float32(rn * rn / (g * g))
        return x
    peds = pers.pedestal_adu
    for i, p in enumerate(det.geometry.panels):
        sl = p.slices()
        f = pers.panel_noise[i] if i < len(pers.panel_noise) else 1.0
        shift = (rn * f) ** 2 / (g * g)  # the per-frame common mode is constant over a box: no variance there
        x[sl] = (x[sl] - np.float32(peds[i] if i < len(peds) else 0.0)) / g + np.float32(shift)
    return x


def panel_slices(det: DetectorModel):
    """Slices of the panels of a multi-panel slab (None for one panel): DIALS finds spots panel by panel."""
    panels = det.geometry.panels
    return [p.slices() for p in panels] if len(panels) > 1 else None


def observed_strong(data: np.ndarray, bad: np.ndarray, det: DetectorModel, pers: Personality,
                    rule: LabelRule, with_image: bool = False):
    """DIALS' strong-pixel mask of the written frame (photon units, module doc); with
    ``with_image`` also the photon image it was found on."""
    from .realism import panel_dispersion_mask

    img = photon_image(data, det, pers)
    strong, _ = panel_dispersion_mask(img, bad, panel_slices(det), algorithm=rule.observed_algorithm, gain=1.0,
                                      kernel=rule.kernel, sigma_background=rule.observed_sigma_background,
                                      sigma_strong=rule.observed_sigma_strong, global_threshold=rule.global_threshold,
                                      negative_ok=True, dtype=np.float32)
    return (strong, img) if with_image else strong


def observed_classes(patches: SpotPatches, stats: SpotStats, strong: np.ndarray, rule: LabelRule,
                     panels: list = None, image: np.ndarray = None) -> tuple:
    """(cls, merged) per spot: ``cls`` 1 if it passes on the written frame, 255 if visible in
    expectation but not passing or if it touches a group that fails only DIALS' separation test,
    else 0; ``merged`` True for passing spots whose strong group belongs to a brighter passing
    spot (module doc).  ``strong``: the frame's strong-pixel mask; ``panels``: panel slices
    (groups never cross panels); ``image``: the photon image (for the separation test; None:
    no such test)."""
    from .realism import group_separation, label_groups

    comp, n = label_groups(strong, panels)
    size = np.bincount(comp.ravel(), minlength=n + 1)
    sized = (size >= rule.min_spot_size) & (size <= rule.max_spot_size)
    sized[0] = False
    good = sized.copy()
    if image is not None and rule.max_separation and n:
        good &= group_separation(comp, n, image) <= rule.max_separation
    split = sized & ~good
    comp = comp.ravel()
    passed = np.zeros(patches.n, dtype=bool)
    group_of = np.zeros(patches.n, dtype=np.int64)
    in_split = np.zeros(patches.n, dtype=bool)
    for g, (sub, extent) in zip(patches.groups, stats.extent):
        rows, idx, val = (g.rows, g.index, g.value) if sub is None else (g.rows[sub], g.index[sub], g.value[sub])
        if len(rows) == 0:
            continue
        hit = np.zeros(extent.shape, dtype=bool)
        hit[extent] = good[comp[idx[extent]]]
        passed[rows] = hit.any(axis=1)
        if split.any():
            touch = np.zeros(extent.shape, dtype=bool)
            touch[extent] = split[comp[idx[extent]]]
            in_split[rows] = touch.any(axis=1)
        best = np.argmax(np.where(hit, val, -1.0), axis=1)  # the spot's brightest pixel in a good group
        group_of[rows] = comp[np.maximum(idx[np.arange(len(rows)), best], 0)]
    passed &= stats.npix > 0
    cls = np.zeros(patches.n, dtype=np.uint8)
    unpassed = (in_split | (stats.cls == PEAK)) if rule.unpassed_visible_ignored else in_split
    cls[unpassed & ~passed & (stats.npix > 0)] = IGNORE
    if rule.unobserved_strong_snr > 0:  # a real reflection of high SNR is never "background"
        cls[(stats.snr >= rule.unobserved_strong_snr) & ~passed & (stats.npix > 0)] = IGNORE
    cls[passed] = PEAK
    merged = np.zeros(patches.n, dtype=bool)
    p = np.flatnonzero(passed)
    if len(p):
        order = p[np.lexsort((-stats.photons[p], group_of[p]))]
        first = np.r_[True, group_of[order][1:] != group_of[order][:-1]]
        merged[order[~first]] = True
    cls[merged] = IGNORE  # DIALS reports the group once: the other spots in it are "don't care"
    return cls, merged
