"""Diffuse background: air and small-angle scatter decaying with radius, water/buffer rings
(~3-3.7 A and ~2.1 A), a flat floor (fluorescence), polarisation and solid angle.

All amplitudes are expected photons per pixel for a pixel facing the sample at the mean camera
length (``solid == 1``) before polarisation; ``s`` below is 1/d in inverse Angstrom::

    B(s) = air * exp(-s / air_decay) + saxs / (1 + (s / saxs_width)^2)
         + water * exp(-(s - 1/water_d)^2 / (2 water_width^2))
         + water * water_tail * exp(-(s - 1/water_d) / tail_decay) * step(s - 1/water_d)
         + water2 * exp(-(s - 1/water2_d)^2 / (2 water2_width^2)) + flat
    photons = scale * B(s) * solid * polarisation(2theta, phi)

The tail is the slow fall of liquid scattering beyond its main ring (atomic form factors and
Compton scatter); ``step`` is a smooth logistic step of width ``water_width``.
``scale`` is the shot-to-shot fluctuation (pulse energy, jet thickness), drawn per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pixels import PixelGeometry


@dataclass
class BackgroundParams:
    air: float = 1.0
    air_decay: float = 0.3
    saxs: float = 0.0
    saxs_width: float = 0.02
    water: float = 2.0
    water_d: float = 3.2
    water_width: float = 0.04
    water_tail: float = 0.5
    tail_decay: float = 0.2
    water2: float = 0.6
    water2_d: float = 2.1
    water2_width: float = 0.07
    flat: float = 0.05
    scale: float = 1.0
    polarisation: float = 0.99  # fraction of horizontal (x) polarisation
    polarisation_axis_deg: float = 0.0  # azimuth of the polarisation plane


def polarisation_factor(twotheta: np.ndarray, phi: np.ndarray, fraction: float, axis_deg: float = 0.0) -> np.ndarray:
    """pyFAI's factor 0.5 * (1 + cos^2 2t - P cos(2 (phi - axis)) sin^2 2t)."""
    c2 = np.cos(twotheta) ** 2
    s2 = 1.0 - c2
    return 0.5 * (1.0 + c2 - fraction * np.cos(2.0 * (phi - np.deg2rad(axis_deg))) * s2)


def radial_profile(s: np.ndarray, p: BackgroundParams) -> np.ndarray:
    """B(s) of the module doc (no solid angle, no polarisation, no scale)."""
    s = np.asarray(s, dtype=np.float32)
    out = p.air * np.exp(-s / np.float32(p.air_decay)) + np.float32(p.flat)
    if p.saxs > 0:
        out += p.saxs / (1.0 + (s / np.float32(p.saxs_width)) ** 2)
    if p.water > 0:
        ds = s - np.float32(1.0 / p.water_d)
        out += p.water * np.exp(-0.5 * (ds / np.float32(p.water_width)) ** 2)
        if p.water_tail > 0:
            step = 1.0 / (1.0 + np.exp(-ds / np.float32(0.5 * p.water_width)))
            out += (p.water * p.water_tail) * step * np.exp(-np.maximum(ds, 0) / np.float32(p.tail_decay))
    if p.water2 > 0:
        out += p.water2 * np.exp(-0.5 * ((s - np.float32(1.0 / p.water2_d)) / np.float32(p.water2_width)) ** 2)
    return out.astype(np.float32)


def render_background(pix: PixelGeometry, p: BackgroundParams, wavelength_a: float, sel=None) -> np.ndarray:
    """Expected photons of every valid pixel (flat float32 array over ``pix.flat``), or of the
    valid pixels ``sel`` (indices into the flat arrays) only."""
    pick = (lambda a: a) if sel is None else (lambda a: a[sel])
    s = np.float32(2.0 / wavelength_a) * pick(pix.sin_theta)
    b = radial_profile(s, p)
    c2t = pick(pix.cos2_tth)
    b *= pick(pix.solid)
    a = np.deg2rad(p.polarisation_axis_deg)
    cos2 = pick(pix.cos2phi) * np.float32(np.cos(2 * a)) + pick(pix.sin2phi) * np.float32(np.sin(2 * a))
    b *= np.float32(0.5) * (1 + c2t - np.float32(p.polarisation) * cos2 * (1 - c2t))  # cos2 = cos 2(phi - axis)
    b *= np.float32(p.scale)
    return b


def median_background(pix: PixelGeometry, p: BackgroundParams, wavelength_a: float, samples: int = 20000) -> float:
    """Median expected photons per valid pixel (from a regular subsample of the pixels)."""
    n = len(pix.flat)
    if n == 0:
        return 0.0
    sel = np.arange(0, n, max(1, n // samples))
    return float(np.median(render_background(pix, p, wavelength_a, sel)))
