"""Powder rings of a calibrant (silver behenate, CeO2, LaB6, Si, ...) on any detector geometry.

:func:`render_powder_rings` gives the *expected* photons per pixel of a calibrant's Debye-Scherrer
rings for the project's :class:`~peaknet_gui.geometry.detector.Geometry` (one or many panels,
tilted or not, beam centre anywhere -- also off the detector, where only arcs are seen).
:func:`simulate_calibrant_frame` adds a diffuse background, an optional beamstop shadow and
module gaps, and Poisson noise, and returns the frame with its known geometry (for tests and
the demo calibrant run).

Ring positions come from pyFAI's calibrant registry (:mod:`peaknet_gui.calib.calibrants`).
The 2-theta of every pixel comes from the project's own pixel map, so multi-panel layouts need
no pyFAI detector.  Each ring is a Gaussian in 2-theta whose width is the instrument width
(``ring_fwhm_px`` at the detector distance, or a pyFAI resolution function such as
``pyFAI.crystallography.resolution.Caglioti``) widened by the pixel's own angular size, so
narrow rings are integrated over pixels rather than point-sampled.  Intensity: the calibrant's
tabulated intensities (or an ``exp(-q/q_falloff)`` falloff), spread over the ring's
circumference (``1/sin 2theta``), times the pixel's solid angle and the polarisation factor;
optional ``texture`` (``cos 2(phi - phi0)`` preferred orientation) and ``granularity`` (random
azimuthal modulation of each ring, as from a coarse powder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..calib.calibrants import DEFAULT_Q_FALLOFF, CalibrantLike, calibrant_name, ring_table
from ..errors import CalibrationError
from ..geometry.detector import Geometry
from ..geometry.pixelmap import pixel_map

_FWHM_TO_SIGMA = 1.0 / np.sqrt(8.0 * np.log(2.0))
_CUTOFF_SIGMA = 6.0


@dataclass
class _PixelAngles:
    valid: np.ndarray  # bool (ss, fs): pixel lies on a panel
    twotheta: np.ndarray  # radians, NaN off panels
    azimuth: np.ndarray  # radians, atan2(y, x)
    solid_angle: np.ndarray  # relative to normal incidence, (r_hat . n)^3
    pixel_tth: np.ndarray  # angular size of the pixel along 2-theta (radians)
    q: np.ndarray  # 1/Angstrom (4 pi sin(theta)/lambda)


def _resolve_wavelength(geometry: Geometry, wavelength_a: Optional[float]) -> float:
    if wavelength_a is None:
        if not geometry.photon_energy_ev:
            raise CalibrationError("powder rings: give wavelength_a (the geometry has no photon energy)")
        return geometry.wavelength_a()
    if not np.isfinite(wavelength_a) or wavelength_a <= 0:
        raise CalibrationError(f"powder rings: wavelength must be positive, not {wavelength_a}")
    return float(wavelength_a)


def _pixel_angles(geometry: Geometry, shape: tuple, wavelength_a: float) -> _PixelAngles:
    pm = pixel_map(geometry, shape)
    valid = pm.panel >= 0
    x, y, z = pm.x, pm.y, pm.z
    r = np.sqrt(x * x + y * y + z * z)
    tth = np.arctan2(np.hypot(x, y), z)
    phi = np.arctan2(y, x)
    cos_n = np.full(shape, np.nan)
    pix = np.full(shape, np.nan)
    for i, p in enumerate(geometry.panels):
        n = np.cross(np.asarray(p.fs, float), np.asarray(p.ss, float))
        n /= np.linalg.norm(n)
        sl = p.slices()
        cos_n[sl] = np.abs(x[sl] * n[0] + y[sl] * n[1] + z[sl] * n[2]) / r[sl]
        pix[sl] = p.pixel_size
    with np.errstate(invalid="ignore", divide="ignore"):
        pixel_tth = pix * cos_n / r  # d(2theta)/dr * pixel for a pixel facing the sample
    q = 4.0 * np.pi * np.sin(tth / 2.0) / wavelength_a
    return _PixelAngles(valid, tth, phi, cos_n**3, pixel_tth, q)


def _instrument_sigma(ring_tth: np.ndarray, resolution, ring_fwhm_px: float, geometry: Geometry) -> np.ndarray:
    """Gaussian sigma (radians of 2-theta) of each ring from the instrument alone."""
    if resolution is None:
        pix = float(np.mean([p.pixel_size for p in geometry.panels]))
        fwhm = np.full(len(ring_tth), ring_fwhm_px * pix / geometry.mean_camera_length())
    elif hasattr(resolution, "fwhm"):  # pyFAI resolution function (radians in, radians out)
        fwhm = np.broadcast_to(np.asarray(resolution.fwhm(np.asarray(ring_tth)), float), ring_tth.shape)
    else:
        fwhm = np.full(len(ring_tth), np.deg2rad(float(resolution)))
    return np.asarray(fwhm, float) * _FWHM_TO_SIGMA


def _azimuthal_modulation(rng: np.random.Generator, phi: np.ndarray, granularity: float, n_harmonics: int = 24):
    """1 + granularity * (random smooth function of phi, unit RMS), clipped at 0."""
    k = np.arange(1, n_harmonics + 1)
    amp = rng.normal(size=n_harmonics) / np.sqrt(k)
    phase = rng.uniform(0, 2 * np.pi, size=n_harmonics)
    amp /= np.sqrt(0.5 * np.sum(amp**2))
    mod = np.zeros_like(phi)
    for a, kk, ph in zip(amp, k, phase):
        mod += a * np.cos(kk * phi + ph)
    return np.clip(1.0 + granularity * mod, 0.0, None)


def render_powder_rings(
    geometry: Geometry,
    calibrant: CalibrantLike = "AgBh",
    wavelength_a: Optional[float] = None,
    shape: Optional[tuple] = None,
    *,
    peak_photons: float = 100.0,
    ring_fwhm_px: float = 2.0,
    resolution=None,
    q_falloff: float = DEFAULT_Q_FALLOFF,
    polarization: Optional[float] = 0.99,
    solid_angle: bool = True,
    texture: float = 0.0,
    texture_phase_deg: float = 0.0,
    granularity: float = 0.0,
    max_rings: Optional[int] = None,
    seed=None,
) -> np.ndarray:
    """Expected photons per pixel of ``calibrant``'s rings, float32 array of ``shape`` (ss, fs).

    ``geometry``: the detector (beam centre anywhere, also off the panels); ``shape`` defaults
    to ``geometry.data_shape``; pixels outside every panel are 0.  ``wavelength_a`` defaults to
    the geometry's photon energy.  ``peak_photons``: photons in the brightest pixel of the
    strongest ring visible on the detector (before solid-angle and polarisation factors).
    ``ring_fwhm_px``: instrument ring width in pixels at the detector distance (beam size,
    sample thickness), used unless ``resolution`` is given: a FWHM in degrees of 2-theta or a
    pyFAI resolution function.  ``polarization``: horizontal polarisation fraction (pyFAI's
    factor; None for unpolarised-free, i.e. no factor).  ``texture``: amplitude of a
    ``cos 2(phi - texture_phase)`` modulation; ``granularity``: RMS of a random azimuthal
    modulation per ring (needs ``seed`` for reproducibility).  ``max_rings``: only the first N
    rings (largest d).
    """
    shape = tuple(shape) if shape is not None else geometry.data_shape
    geometry.check_data_shape(shape, "requested frame shape")
    wl = _resolve_wavelength(geometry, wavelength_a)
    ang = _pixel_angles(geometry, shape, wl)
    out = np.zeros(shape, dtype=np.float64)
    if not np.any(ang.valid):
        return out.astype(np.float32)
    rings = ring_table(calibrant, wl, q_falloff=q_falloff)
    if max_rings is not None:
        rings = rings.select(np.arange(min(max_rings, len(rings))))
    sig_inst = _instrument_sigma(rings.twotheta_rad, resolution, ring_fwhm_px, geometry)

    flat = np.flatnonzero(ang.valid)
    tth = ang.twotheta.ravel()[flat]
    order = np.argsort(tth, kind="stable")
    tth_sorted = tth[order]
    lo_tth, hi_tth = tth_sorted[0], tth_sorted[-1]
    mean_pix = float(np.nanmedian(ang.pixel_tth))

    # amplitude per ring: integrated intensity over the ring circumference (powder Lorentz-like)
    amp = rings.intensity / np.maximum(np.sin(rings.twotheta_rad), 1e-9)
    sig_nominal = np.sqrt(sig_inst**2 + mean_pix**2 / 12.0)
    peak = amp / (sig_nominal * np.sqrt(2 * np.pi))
    visible = (rings.twotheta_rad >= lo_tth - 3 * sig_nominal) & (rings.twotheta_rad <= hi_tth + 3 * sig_nominal)
    if not np.any(visible):
        return out.astype(np.float32)
    scale = peak_photons / peak[visible].max()

    rng = np.random.default_rng(seed)
    flat_out = np.zeros(len(flat))
    pix_tth = ang.pixel_tth.ravel()[flat]
    phi_all = ang.azimuth.ravel()[flat]
    for n in np.flatnonzero(visible):
        t0 = rings.twotheta_rad[n]
        reach = _CUTOFF_SIGMA * np.sqrt(sig_inst[n] ** 2 + (4 * mean_pix) ** 2)
        a, b = np.searchsorted(tth_sorted, [t0 - reach, t0 + reach])
        if b <= a:
            continue
        sel = order[a:b]
        s2 = sig_inst[n] ** 2 + pix_tth[sel] ** 2 / 12.0
        val = scale * amp[n] * np.exp(-((tth[sel] - t0) ** 2) / (2 * s2)) / np.sqrt(2 * np.pi * s2)
        if granularity > 0:
            val *= _azimuthal_modulation(rng, phi_all[sel], granularity)
        flat_out[sel] += val

    if texture:
        flat_out *= np.clip(1.0 + texture * np.cos(2 * (phi_all - np.deg2rad(texture_phase_deg))), 0.0, None)
    if solid_angle:
        flat_out *= ang.solid_angle.ravel()[flat]
    if polarization is not None:
        t = tth
        flat_out *= 0.5 * (1 + np.cos(t) ** 2 - polarization * np.cos(2 * phi_all) * np.sin(t) ** 2)
    out.ravel()[flat] = flat_out
    return out.astype(np.float32)


# ------------------------------------------------------------------------------------------------
# full noisy calibrant frames
# ------------------------------------------------------------------------------------------------


@dataclass
class CalibrantFrame:
    """A simulated calibrant frame and the truth it was made with."""

    data: np.ndarray  # float32 (ss, fs), ADU (photons * adu_per_photon + read noise)
    expected: np.ndarray  # float32 expected photons (rings + background), before noise
    bad: np.ndarray  # bool, True = module gap / beamstop shadow / outside panels
    geometry: Geometry
    calibrant: str
    wavelength_a: float
    ring_twotheta_rad: np.ndarray = field(default_factory=lambda: np.zeros(0))  # rings on the detector
    beam_center: tuple = (np.nan, np.nan)  # (fs, ss) of panel 0's plane


def module_gap_mask(shape: tuple, module: tuple = (195, 487), gap: tuple = (17, 7)) -> np.ndarray:
    """True in the inter-module gaps of a Pilatus-like tiling (module (ss, fs) and gap sizes in px)."""
    ss_n, fs_n = shape
    ss = np.arange(ss_n) % (module[0] + gap[0]) >= module[0]
    fs = np.arange(fs_n) % (module[1] + gap[1]) >= module[1]
    return ss[:, None] | fs[None, :]


def simulate_calibrant_frame(
    geometry: Geometry,
    calibrant: CalibrantLike = "AgBh",
    wavelength_a: Optional[float] = None,
    shape: Optional[tuple] = None,
    *,
    peak_photons: float = 200.0,
    background_photons: float = 1.0,
    diffuse_photons: float = 20.0,
    diffuse_q: float = 0.05,
    beamstop_radius_px: float = 0.0,
    module_gaps: bool = False,
    gap_value: float = 0.0,
    adu_per_photon: float = 1.0,
    read_noise_adu: float = 0.0,
    saturation_adu: Optional[float] = None,
    seed=0,
    **ring_options,
) -> CalibrantFrame:
    """A noisy calibrant frame with known geometry.

    Background = ``background_photons`` (flat) + ``diffuse_photons / (1 + (q/diffuse_q)^2)``
    (air and sample small-angle scatter).  ``beamstop_radius_px`` > 0 shadows a disc around the
    beam (bad, ~0 counts).  ``module_gaps`` marks Pilatus-like gaps (bad, value ``gap_value``).
    Counts are Poisson in photons, times ``adu_per_photon``, plus Gaussian read noise, clipped
    at ``saturation_adu``.  ``ring_options`` go to :func:`render_powder_rings`.
    """
    shape = tuple(shape) if shape is not None else geometry.data_shape
    wl = _resolve_wavelength(geometry, wavelength_a)
    rng = np.random.default_rng(seed)
    rings = render_powder_rings(
        geometry, calibrant, wl, shape, peak_photons=peak_photons, seed=rng.integers(2**31), **ring_options
    ).astype(np.float64)
    ang = _pixel_angles(geometry, shape, wl)
    bg = np.where(ang.valid, background_photons + diffuse_photons / (1.0 + (np.nan_to_num(ang.q) / diffuse_q) ** 2), 0.0)
    expected = rings + bg
    bad = ~ang.valid
    bc = geometry.beam_center(0)
    if beamstop_radius_px > 0:
        ss, fs = np.mgrid[0 : shape[0], 0 : shape[1]]
        shadow = np.hypot(fs - bc[0], ss - bc[1]) <= beamstop_radius_px
        expected = np.where(shadow, 0.02 * expected, expected)
        bad |= shadow
    photons = rng.poisson(np.clip(expected, 0, None)).astype(np.float64)
    data = photons * adu_per_photon
    if read_noise_adu > 0:
        data += rng.normal(0.0, read_noise_adu, size=shape)
    if saturation_adu is not None:
        data = np.minimum(data, saturation_adu)
    if module_gaps:
        gaps = module_gap_mask(shape)
        bad |= gaps
        data[gaps] = gap_value
    data[~ang.valid] = 0.0
    tth_valid = ang.twotheta[ang.valid]
    table = ring_table(calibrant, wl)
    on = (table.twotheta_rad >= tth_valid.min()) & (table.twotheta_rad <= tth_valid.max())
    return CalibrantFrame(
        data=data.astype(np.float32),
        expected=expected.astype(np.float32),
        bad=bad,
        geometry=geometry,
        calibrant=calibrant_name(calibrant),
        wavelength_a=wl,
        ring_twotheta_rad=table.twotheta_rad[on],
        beam_center=bc,
    )
