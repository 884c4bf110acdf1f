"""Artifact scattering (label 2): sharp powder rings of metal shielding and ice (full or partial
arcs, grainy, with bright Bragg-like speckles sitting on them), liquid-jet / nozzle streaks,
kapton arcs, calibrant powder rings, and the beamstop with its arm (a shadow).

Every renderer returns expected photons over the detector's valid pixels (flat arrays, see
:class:`~.pixels.PixelGeometry`); the frame composer labels them with
:func:`~.labels.artifact_label_mask`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from .pixels import PixelGeometry

_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))

#: d-spacings (A) and relative intensities of materials that scatter into crystallography frames
MATERIALS = {
    "aluminium": ((2.338, 2.025, 1.432, 1.221, 1.169, 1.012), (100, 47, 22, 24, 7, 2)),
    "copper": ((2.087, 1.808, 1.278, 1.090, 1.044), (100, 46, 20, 17, 5)),
    "iron": ((2.027, 1.433, 1.170, 1.013), (100, 20, 30, 10)),
    "steel": ((2.073, 1.795, 1.269, 1.083, 1.036), (100, 45, 20, 20, 6)),
    "tungsten": ((2.238, 1.582, 1.292, 1.119), (100, 15, 23, 8)),
    "brass": ((2.128, 1.843, 1.303, 1.111), (100, 40, 20, 18)),
    "ice-hexagonal": ((3.897, 3.669, 3.441, 2.671, 2.249, 2.072, 1.918, 1.880, 1.720),
                      (100, 60, 70, 25, 40, 35, 15, 20, 8)),
    "ice-cubic": ((3.669, 2.249, 1.918, 1.590), (100, 50, 30, 8)),
}


@dataclass
class RingArtifact:
    """Debye-Scherrer rings of one material.  ``arcs``: list of (centre_deg, width_deg) azimuthal
    windows (empty = full rings); ``granularity``: RMS of a random azimuthal modulation;
    ``speckles``: number of grain reflections per ring, ``speckle_photons`` their total photons."""

    material: str
    d_spacings: list
    intensities: list
    peak_photons: float = 20.0
    fwhm_px: float = 2.0
    arcs: list = field(default_factory=list)
    granularity: float = 0.3
    speckles: int = 10
    speckle_photons: float = 300.0
    speckle_sigma_px: float = 1.0
    seed: int = 0


@dataclass
class StreakArtifact:
    """A jet/nozzle streak through the beam along azimuth ``angle_deg`` (both sides if
    ``two_sided``), Gaussian across (``width_px``), decaying as exp(-r/decay_px) along."""

    angle_deg: float = 0.0
    width_px: float = 2.0
    peak_photons: float = 30.0
    decay_px: float = 300.0
    two_sided: bool = True
    start_px: float = 5.0


@dataclass
class KaptonArtifact:
    """Anisotropic kapton-film scatter: arcs at ``d_spacings`` (A) of ``fwhm_px`` radial width,
    modulated as |cos(phi - axis)|^sharpness."""

    d_spacings: list = field(default_factory=lambda: [4.9])
    fwhm_px: float = 12.0
    peak_photons: float = 5.0
    axis_deg: float = 0.0
    sharpness: float = 4.0


@dataclass
class CalibrantArtifact:
    """Powder rings of a calibrant (rendered by :func:`peaknet_gui.sim.powder.render_powder_rings`)."""

    calibrant: str = "AgBh"
    peak_photons: float = 100.0
    fwhm_px: float = 2.0
    granularity: float = 0.2
    seed: int = 0


@dataclass
class Beamstop:
    """A beamstop disc of ``radius_px`` at ``offset_px`` (fs, ss) from the beam with an arm of
    ``arm_width_px`` going out along azimuth ``arm_angle_deg`` (no arm if width 0);
    ``transmission`` inside the shadow; ``edge_px`` soft edge width."""

    radius_px: float = 20.0
    offset_px: tuple = (0.0, 0.0)
    arm_angle_deg: float = 90.0
    arm_width_px: float = 10.0
    transmission: float = 0.02
    edge_px: float = 1.0


def ring_sigma_rad(tth: np.ndarray, fwhm_px: float, pix: PixelGeometry) -> np.ndarray:
    """Gaussian sigma in 2-theta of a ring ``fwhm_px`` wide radially on a flat detector."""
    return fwhm_px / _FWHM * np.cos(tth) ** 2 / pix.px_per_rad


def azimuthal_modulation(phi: np.ndarray, rng: np.random.Generator, rms: float, harmonics: int = 32) -> np.ndarray:
    """1 + rms * (random smooth function of phi with unit RMS), clipped at 0."""
    if rms <= 0:
        return np.ones_like(phi)
    k = np.arange(1, harmonics + 1)
    amp = rng.normal(size=harmonics) / np.sqrt(k)
    amp /= np.sqrt(0.5 * np.sum(amp**2))
    ph = rng.uniform(0, 2 * np.pi, size=harmonics)
    mod = np.zeros(phi.shape, dtype=np.float32)
    for a, kk, p in zip(amp, k, ph):
        mod += np.float32(a) * np.cos(kk * phi + np.float32(p))
    return np.clip(1.0 + rms * mod, 0.0, None)


def arc_window(phi: np.ndarray, arcs: list, soft_deg: float = 4.0) -> np.ndarray:
    """Smooth 0..1 window that is 1 inside the azimuthal arcs (degrees), all ones if no arcs."""
    if not arcs:
        return np.ones(phi.shape, dtype=np.float32)
    out = np.zeros(phi.shape, dtype=np.float32)
    deg = np.rad2deg(phi)
    for centre, width in arcs:
        dist = np.abs((deg - centre + 180.0) % 360.0 - 180.0) - 0.5 * width
        out = np.maximum(out, np.clip(0.5 - dist / soft_deg, 0.0, 1.0))
    return out


def render_rings(pix: PixelGeometry, art: RingArtifact, wavelength_a: float, out: np.ndarray) -> list:
    """Add the rings to ``out`` (flat, valid pixels); return the speckles as (tth, phi, photons,
    sigma_px) tuples for the spot renderer."""
    rng = np.random.default_rng(art.seed)
    inten = np.asarray(art.intensities, dtype=np.float64)
    inten = inten / inten.max()
    speckles = []
    for d, rel in zip(art.d_spacings, inten):
        s = wavelength_a / (2.0 * d)
        if s >= 1:
            continue
        tth0 = 2.0 * np.arcsin(s)
        sig = float(ring_sigma_rad(np.array(tth0), art.fwhm_px, pix))
        sel = pix.band(tth0 - 5 * sig, tth0 + 5 * sig)
        if len(sel) == 0:
            continue
        tth = pix.twotheta[sel]
        phi = pix.phi[sel]
        val = np.float32(art.peak_photons * rel) * np.exp(-0.5 * ((tth - np.float32(tth0)) / np.float32(sig)) ** 2)
        val *= arc_window(phi, art.arcs)
        val *= azimuthal_modulation(phi, rng, art.granularity)
        out[sel] += val * pix.solid[sel]
        n_sp = rng.poisson(art.speckles * rel ** 0.5) if art.speckles > 0 else 0
        for _ in range(n_sp):
            if art.arcs and rng.random() < 0.8:
                c, w = art.arcs[rng.integers(len(art.arcs))]
                ph = np.deg2rad(c + rng.uniform(-0.5, 0.5) * w)
            else:
                ph = rng.uniform(-np.pi, np.pi)
            speckles.append((tth0 + rng.normal(0, 0.3 * sig), ph,
                             art.speckle_photons * rng.lognormal(0.0, 0.7) * rel ** 0.5, art.speckle_sigma_px))
    return speckles


def _detector_plane(pix: PixelGeometry):
    """In-plane position (pixels) of every valid pixel relative to the beam."""
    r = np.tan(pix.twotheta) * np.float32(pix.px_per_rad)
    return r * np.cos(pix.phi), r * np.sin(pix.phi), r


def render_streak(pix: PixelGeometry, art: StreakArtifact, out: np.ndarray) -> None:
    x, y, r = _detector_plane(pix)
    a = np.deg2rad(art.angle_deg)
    along = x * np.float32(np.cos(a)) + y * np.float32(np.sin(a))
    across = -x * np.float32(np.sin(a)) + y * np.float32(np.cos(a))
    near = np.abs(across) < 6 * art.width_px
    if not art.two_sided:
        near &= along > 0
    near &= np.abs(along) > art.start_px
    sel = np.flatnonzero(near)
    val = np.float32(art.peak_photons) * np.exp(-0.5 * (across[sel] / np.float32(art.width_px)) ** 2)
    val *= np.exp(-np.abs(along[sel]) / np.float32(art.decay_px))
    out[sel] += val


def render_kapton(pix: PixelGeometry, art: KaptonArtifact, wavelength_a: float, out: np.ndarray) -> None:
    for d in art.d_spacings:
        s = wavelength_a / (2.0 * d)
        if s >= 1:
            continue
        tth0 = 2.0 * np.arcsin(s)
        sig = float(ring_sigma_rad(np.array(tth0), art.fwhm_px, pix))
        sel = pix.band(tth0 - 4 * sig, tth0 + 4 * sig)
        if len(sel) == 0:
            continue
        tth, phi = pix.twotheta[sel], pix.phi[sel]
        lobes = np.abs(np.cos(phi - np.float32(np.deg2rad(art.axis_deg)))) ** np.float32(art.sharpness)
        val = np.float32(art.peak_photons) * np.exp(-0.5 * ((tth - np.float32(tth0)) / np.float32(sig)) ** 2) * lobes
        out[sel] += val * pix.solid[sel]


_CALIBRANT_CACHE: dict = {}


def render_calibrant(detector, art: CalibrantArtifact, wavelength_a: float) -> np.ndarray:
    """Calibrant rings over the valid pixels (flat), via the calibration engineer's
    :func:`~peaknet_gui.sim.powder.render_powder_rings` (rendered once per detector, calibrant,
    wavelength and width at unit peak; scaled and made grainy here)."""
    from .powder import render_powder_rings

    pix = detector.pixels
    key = (id(pix), art.calibrant, round(wavelength_a, 6), round(art.fwhm_px, 2))
    base = _CALIBRANT_CACHE.get(key)
    if base is None:
        img = render_powder_rings(detector.geometry, art.calibrant, wavelength_a, detector.shape,
                                  peak_photons=1.0, ring_fwhm_px=art.fwhm_px)
        base = img.ravel()[pix.flat].astype(np.float32)
        if len(_CALIBRANT_CACHE) > 8:
            _CALIBRANT_CACHE.clear()
        _CALIBRANT_CACHE[key] = base
    out = base * np.float32(art.peak_photons)
    if art.granularity > 0:
        nz = np.flatnonzero(out > 1e-3 * art.peak_photons)
        out[nz] *= azimuthal_modulation(pix.phi[nz], np.random.default_rng(art.seed), art.granularity)
    return out


def beamstop_transmission(pix: PixelGeometry, bs: Beamstop) -> np.ndarray:
    """Transmission (0..1) of every valid pixel through the beamstop and its arm."""
    x, y, _ = _detector_plane(pix)
    x = x - np.float32(bs.offset_px[0])
    y = y - np.float32(bs.offset_px[1])
    edge = max(bs.edge_px, 0.3)
    depth = bs.radius_px - np.sqrt(x * x + y * y)  # > 0 inside the disc
    if bs.arm_width_px > 0:
        a = np.deg2rad(bs.arm_angle_deg)
        along = x * np.float32(np.cos(a)) + y * np.float32(np.sin(a))
        across = np.abs(-x * np.float32(np.sin(a)) + y * np.float32(np.cos(a)))
        arm = np.where(along > 0, 0.5 * bs.arm_width_px - across, -np.inf)
        depth = np.maximum(depth, arm)
    inside = np.clip(0.5 + depth / edge, 0.0, 1.0)
    return (1.0 - inside * (1.0 - bs.transmission)).astype(np.float32)


def as_dict(art) -> Optional[dict]:
    if art is None:
        return None
    d = asdict(art)
    d["type"] = type(art).__name__
    return d
