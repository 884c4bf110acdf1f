"""Compose one simulated frame: background + artifacts + Bragg spots -> beamstop -> detector
readout, with per-pixel labels and the true peak list (:func:`simulate_frame`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..geometry.detector import HC_EV_A
from .artifacts import beamstop_transmission, render_calibrant, render_kapton, render_rings, render_streak
from .background import polarisation_factor, render_background
from .detectors import CCD, DetectorModel
from .labels import ARTIFACT, BACKGROUND, IGNORE, LabelRule, artifact_label_masks, paint_spot_labels, spot_stats
from .noise import Personality, draw_personality, read_out
from .params import FrameParams, SpotShape
from .projection import directions_from_angles, project_directions
from .reflections import Reflections, excite
from .spots import SpotSet, render_spots


@dataclass
class TruePeaks:
    """The visible (label-1) Bragg spots of a frame.  ``fs``/``ss``: centroid of the spot's
    labelled pixels weighted by its expected photons (what an ideal finder measures), pixel
    indices; ``fs_true``/``ss_true``: where the diffracted ray meets the detector; ``intensity``
    in detector units (ADU, expected, background-free) and ``photons``; ``max_value``: expected
    value of the brightest pixel above background (detector units)."""

    panel: np.ndarray
    fs: np.ndarray
    ss: np.ndarray
    fs_true: np.ndarray
    ss_true: np.ndarray
    intensity: np.ndarray
    photons: np.ndarray
    snr: np.ndarray
    npix: np.ndarray
    max_value: np.ndarray
    hkl: np.ndarray
    lattice: np.ndarray
    d: np.ndarray

    def __len__(self) -> int:
        return len(self.fs)


@dataclass
class SimFrame:
    data: np.ndarray  # detector dtype (ss, fs)
    labels: np.ndarray  # uint8: 0 background, 1 peak, 2 artifact, 255 unlabelled
    bad: np.ndarray  # bool: no usable reading (gaps, dead pixels, flagged hot pixels)
    peaks: TruePeaks
    marginal_fs: np.ndarray  # label-255 spots (centroids)
    marginal_ss: np.ndarray
    params: FrameParams
    personality: Personality
    detector: DetectorModel
    expected: Optional[np.ndarray] = None  # expected photons before readout (kept on request)
    n_reflections: int = 0
    extra: dict = field(default_factory=dict)
    # true reflections below the label rule's threshold but of expected SNR >= LabelRule.faint_snr
    # (label 0): a finder that reports one has found a real, weak reflection, not noise
    faint_fs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    faint_ss: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def photon_energy_ev(self) -> float:
        return self.params.photon_energy_ev

    @property
    def kind(self) -> str:
        return self.params.kind


def spot_covariances(shape: SpotShape, refl: Reflections, proj, psf_sigma: float, rng: np.random.Generator,
                     divergence: tuple = (0.0, 0.0)) -> np.ndarray:
    """(N, 2, 2) covariances in (fs, ss) pixels^2 of the projected spots (see :mod:`.reflections`);
    ``divergence``: RMS beam divergence (x, y) in radians, which moves each spot with the incident
    direction."""
    n = len(refl)
    jr, jt = proj.jac_r, proj.jac_t
    cov = (refl.sigma_radial_rad[:, None, None] ** 2) * jr[:, :, None] * jr[:, None, :]
    cov += (refl.sigma_azimuthal_rad[:, None, None] ** 2) * jt[:, :, None] * jt[:, None, :]
    if divergence[0] or divergence[1]:
        tth, phi = refl.twotheta, np.arctan2(refl.direction[:, 1], refl.direction[:, 0])
        # a tilt of the incident beam along x (y) turns the diffracted ray by its component
        # perpendicular to the ray: (e_r . x, e_t . x) = (cos 2t cos phi, -sin phi); y: (cos 2t sin phi, cos phi)
        for sig, er, et in ((divergence[0], np.cos(tth) * np.cos(phi), -np.sin(phi)),
                            (divergence[1], np.cos(tth) * np.sin(phi), np.cos(phi))):
            if sig:
                d = jr * er[:, None] + jt * et[:, None]
                cov += sig * sig * d[:, :, None] * d[:, None, :]
    base = shape.sigma_px * np.exp(rng.normal(0.0, shape.sigma_jitter, size=n))
    iso = base**2 + psf_sigma**2
    cov[:, 0, 0] += iso
    cov[:, 1, 1] += iso
    if shape.elongation > 1.0 and shape.elongated_fraction > 0:
        sel = rng.random(n) < shape.elongated_fraction
        if shape.elongation_mode == "radial":
            u = jr
        elif shape.elongation_mode == "tangential":
            u = jt
        else:
            a = np.deg2rad(shape.elongation_angle_deg)
            u = np.tile([np.cos(a), np.sin(a)], (n, 1))
        norm = np.linalg.norm(u, axis=1)
        u = np.where(norm[:, None] > 0, u / np.maximum(norm, 1e-12)[:, None], 0.0)
        f = rng.uniform(1.0, shape.elongation, size=n)
        add = np.where(sel, base**2 * (f * f - 1.0), 0.0)
        cov += add[:, None, None] * u[:, :, None] * u[:, None, :]
    return cov


def _speckle_spots(det: DetectorModel, speckles: list, wavelength_a: float) -> SpotSet:
    if not speckles:
        return SpotSet(*(np.zeros(0),) * 3, np.zeros((0, 2, 2)), np.zeros(0), np.zeros(0))
    tth, phi, photons, sig = (np.array(v, dtype=np.float64) for v in zip(*speckles))
    proj = project_directions(det.geometry, directions_from_angles(tth, phi))
    hit = proj.hit
    cov = np.zeros((int(hit.sum()), 2, 2))
    cov[:, 0, 0] = cov[:, 1, 1] = sig[hit] ** 2
    return SpotSet(proj.panel[hit], proj.fs[hit], proj.ss[hit], cov, np.zeros(int(hit.sum())), photons[hit])


def simulate_frame(det: DetectorModel, params: FrameParams, personality: Optional[Personality] = None,
                   rule: LabelRule = LabelRule(), keep_expected: bool = False) -> SimFrame:
    """One frame of ``det`` made from ``params`` (deterministic in ``params.seed``)."""
    rng = np.random.default_rng(params.seed)
    if personality is None:
        personality = draw_personality(det, np.random.default_rng(params.seed + 1))
    pix = det.pixels
    shape = det.shape
    size = shape[0] * shape[1]
    wl = HC_EV_A / params.photon_energy_ev

    # --- diffuse background and artifact scatter (flat over valid pixels)
    bg = render_background(pix, params.background, wl)
    art = np.zeros_like(bg)
    speckles = []
    for ring in params.rings:
        speckles += render_rings(pix, ring, wl, art)
    for streak in params.streaks:
        render_streak(pix, streak, art)
    for kap in params.kapton:
        render_kapton(pix, kap, wl, art)
    if params.calibrant is not None:
        art += render_calibrant(det, params.calibrant, wl)
    if speckles:
        sp = render_spots(_speckle_spots(det, speckles, wl), det.geometry, shape)
        art += sp.image(size)[pix.flat].astype(np.float32)
    trans_flat = beamstop_transmission(pix, params.beamstop) if params.beamstop is not None else None

    # --- Bragg spots
    tth_max = float(pix.tth_sorted[-1]) if len(pix.tth_sorted) else 0.0
    d_min_det = wl / (2 * np.sin(max(tth_max, 1e-3) / 2))
    refl = Reflections.concatenate([
        excite(c, wl, params.bandwidth, d_min_det, rng, lattice_index=i, max_twotheta=tth_max + 0.01,
               divergence=tuple(v * 1e-3 for v in params.divergence_mrad))
        for i, c in enumerate(params.crystals)])
    proj = project_directions(det.geometry, refl.direction)
    hit = proj.hit
    refl = refl.select(hit)
    proj = type(proj)(proj.panel[hit], proj.fs[hit], proj.ss[hit], proj.jac_r[hit], proj.jac_t[hit])
    phi = np.arctan2(refl.direction[:, 1], refl.direction[:, 0])
    photons = refl.photons * polarisation_factor(refl.twotheta, phi, params.background.polarisation,
                                                 params.background.polarisation_axis_deg)
    psf = personality.psf_sigma_px if det.kind == CCD else 0.0
    cov = spot_covariances(params.spot, refl, proj, psf, rng, tuple(v * 1e-3 for v in params.divergence_mrad))
    eta = np.full(len(refl), params.spot.lorentz)
    patches = render_spots(SpotSet(proj.panel, proj.fs, proj.ss, cov, eta, photons), det.geometry, shape)

    # --- beamstop shadow, expected photons, noise variance
    diffuse = pix.to_image(bg + art, dtype=np.float32)
    art_img = pix.to_image(art, dtype=np.float32)
    blocked = None
    if trans_flat is not None:
        trans = pix.to_image(trans_flat, fill=1.0, dtype=np.float32)
        blocked = diffuse * (1.0 - trans)  # photons the beamstop takes away
        diffuse *= trans
        art_img *= trans
        patches.scale(trans.ravel())
    spots_img = patches.image(size).reshape(shape).astype(np.float32)
    expected = diffuse + spots_img
    rn2 = np.float32(personality.read_noise_photons2)
    noise_var = (diffuse + rn2).ravel()

    # --- readout (the spots' profiles already hold the CCD's point spread: blurred once)
    data, bad = read_out(expected, det, personality, rng, spread=spots_img)

    # --- labels
    rule = rule.for_detector(det.kind)
    usable = ~bad.ravel()
    labels = np.zeros(size, dtype=np.uint8)
    if params.rings or params.streaks or params.kapton or params.calibrant is not None:
        other_var = noise_var - art_img.ravel()
        lab2, band = artifact_label_masks(art_img.ravel(), other_var, rule)
        labels[band] = IGNORE
        labels[lab2] = ARTIFACT
    if blocked is not None and params.beamstop_is_artifact:
        # the shadow is an artifact where the photons it blocks stand out of the unshadowed noise
        lab2, band = artifact_label_masks(blocked.ravel(), noise_var + blocked.ravel(), rule, k=rule.beamstop_k)
        labels[band & (labels == BACKGROUND)] = IGNORE
        labels[lab2] = ARTIFACT
    stats = spot_stats(patches, noise_var, usable, shape[1], rule, diffuse=diffuse.ravel())
    merged = np.zeros(patches.n, dtype=bool)
    if rule.mode == "observed" and np.any(stats.npix > 0):
        from .observed import observed_classes, observed_strong, panel_slices

        strong, photon_img = observed_strong(data, bad, det, personality, rule, with_image=True)
        stats.cls_expected = stats.cls
        stats.cls, merged = observed_classes(patches, stats, strong, rule, panel_slices(det), image=photon_img)
    elif rule.mode == "snr":
        from .labels import snr_classes

        stats.cls_expected = stats.cls
        stats.cls, merged = snr_classes(patches, stats, rule, shape)
    elif rule.mode not in ("observed", "expected"):
        raise ValueError(f"label mode must be 'snr', 'observed' or 'expected', not {rule.mode!r}")
    paint_spot_labels(labels, patches, stats)
    labels[~usable] = IGNORE
    labels = labels.reshape(shape)

    # --- truth
    gain = personality.adu_per_photon if det.kind != "pad" else 1.0
    vis = np.flatnonzero((stats.cls == 1) & ~merged)
    peaks = TruePeaks(
        panel=proj.panel[vis].astype(np.int32), fs=stats.fs[vis], ss=stats.ss[vis],
        fs_true=proj.fs[vis], ss_true=proj.ss[vis],
        intensity=stats.photons[vis] * gain, photons=stats.photons[vis], snr=stats.snr[vis],
        npix=stats.npix[vis].astype(np.int32), max_value=stats.max_photons[vis] * gain,
        hkl=refl.hkl[vis], lattice=refl.lattice[vis], d=refl.d[vis],
    )
    marg = np.flatnonzero((stats.cls == IGNORE) | merged)
    faint = np.flatnonzero((stats.cls == 0) & ~merged & (stats.npix > 0) & (stats.snr >= rule.faint_snr))
    spots_all = {"fs": proj.fs, "ss": proj.ss, "cls": stats.cls, "photons": photons, "n_strong": stats.n_strong,
                 "snr": stats.snr, "snr_det": stats.snr_det, "max_photons": stats.max_photons, "npix": stats.npix, "merged": merged,
                 "cls_expected": stats.cls if stats.cls_expected is None else stats.cls_expected}
    return SimFrame(
        data=data, labels=labels, bad=bad, peaks=peaks, marginal_fs=stats.fs[marg], marginal_ss=stats.ss[marg],
        params=params, personality=personality, detector=det, expected=expected if keep_expected else None,
        n_reflections=len(refl), extra={"spots": spots_all}, faint_fs=stats.fs[faint], faint_ss=stats.ss[faint],
    )
