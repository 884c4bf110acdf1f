"""Detector readout: photons -> stored values, with the detector's noise and defects.

* all: Poisson photon counting; hot pixels (stuck high), dead pixels; saturation.
* CCD (Rayonix-like): point-spread blur of the counted photons, per-pixel gain variation,
  ``gain`` ADU per photon, baseline ``offset``, Gaussian read noise, uint16 clipped at 65535.
* PAD (Pilatus/Eiger-like): integer counts, no read noise, count cutoff, gaps read ``gap_value``
  (-1), dead pixels ``dead_value`` (-2), hot pixels read the cutoff.
* CSPAD-like: ``gain`` ADU per photon with per-pixel variation, per-panel pedestal residuals and a
  per-panel, per-frame common-mode offset, Gaussian read noise, int16.

A :class:`Personality` is one detector's fixed character (gain, offset, defects), drawn once per
run (:func:`draw_personality`); per-frame noise comes from the frame's own random stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .detectors import CCD, CSPAD, PAD, DetectorModel


@dataclass
class Personality:
    adu_per_photon: float = 1.0
    offset_adu: float = 0.0
    read_noise_adu: float = 0.0
    common_mode_adu: float = 0.0
    psf_sigma_px: float = 0.0
    gain_spread: float = 0.0
    pedestal_adu: list = field(default_factory=list)  # per panel
    panel_noise: list = field(default_factory=list)  # per-panel factor on the read noise
    hot_pixels: list = field(default_factory=list)  # flat indices
    dead_pixels: list = field(default_factory=list)
    seed: int = 0
    _gain_map: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        return {
            "adu_per_photon": self.adu_per_photon, "offset_adu": self.offset_adu,
            "read_noise_adu": self.read_noise_adu, "common_mode_adu": self.common_mode_adu,
            "psf_sigma_px": self.psf_sigma_px, "gain_spread": self.gain_spread,
            "pedestal_adu": [round(float(v), 3) for v in self.pedestal_adu],
            "panel_noise": [round(float(v), 3) for v in self.panel_noise],
            "n_hot_pixels": len(self.hot_pixels), "n_dead_pixels": len(self.dead_pixels), "seed": self.seed,
        }

    @property
    def read_noise_photons2(self) -> float:
        """Readout noise variance in photons^2 (what the labels count as noise besides Poisson)."""
        g = max(self.adu_per_photon, 1e-9)
        return (self.read_noise_adu**2 + self.common_mode_adu**2) / (g * g)

    def gain_map(self, shape: tuple) -> Optional[np.ndarray]:
        if self.gain_spread <= 0:
            return None
        if self._gain_map is None or self._gain_map.shape != shape:
            rng = np.random.default_rng(self.seed + 7)
            self._gain_map = (1.0 + self.gain_spread * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
        return self._gain_map


def _u(rng, lo_hi) -> float:
    lo, hi = lo_hi
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def draw_personality(det: DetectorModel, rng: np.random.Generator) -> Personality:
    r = det.readout
    n_valid = int(det.valid.sum())
    valid_flat = np.flatnonzero(det.valid.ravel())
    n_hot = rng.poisson(_u(rng, r.hot_fraction) * n_valid)
    n_dead = rng.poisson(_u(rng, r.dead_fraction) * n_valid)
    hot = np.sort(rng.choice(valid_flat, size=min(n_hot, n_valid), replace=False)) if n_hot else np.zeros(0, int)
    dead = np.sort(rng.choice(valid_flat, size=min(n_dead, n_valid), replace=False)) if n_dead else np.zeros(0, int)
    ped_sigma = _u(rng, r.pedestal_sigma_adu)
    noise_spread = _u(rng, r.panel_noise_spread)
    return Personality(
        adu_per_photon=_u(rng, r.adu_per_photon),
        offset_adu=_u(rng, r.offset_adu),
        read_noise_adu=_u(rng, r.read_noise_adu),
        common_mode_adu=_u(rng, r.common_mode_adu),
        psf_sigma_px=_u(rng, r.psf_sigma_px),
        gain_spread=_u(rng, r.gain_spread),
        pedestal_adu=(rng.normal(0.0, ped_sigma, size=len(det.geometry.panels)).tolist() if ped_sigma > 0 else []),
        panel_noise=(rng.lognormal(0.0, noise_spread, size=len(det.geometry.panels)).tolist() if noise_spread > 0 else []),
        hot_pixels=hot.tolist(),
        dead_pixels=dead.tolist(),
        seed=int(rng.integers(2**31)),
    )


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.05:
        return img
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(img, sigma, mode="nearest", truncate=3.0)


def read_out(expected: np.ndarray, det: DetectorModel, pers: Personality, rng: np.random.Generator,
             spread: Optional[np.ndarray] = None) -> tuple:
    """Stored values (dtype of ``det``) and a bool array of pixels the file itself marks unusable
    (gaps, dead pixels, counting-detector hot pixels at the cutoff).

    A CCD's point spread blurs the photons of ``expected``; ``spread``: the part of ``expected``
    whose profile already holds the point spread (the rendered Bragg spots), counted but not
    blurred a second time."""
    shape = expected.shape
    if spread is not None and det.kind == CCD:
        rest = np.maximum(expected - spread, 0).astype(np.float64)
        photons = _blur(rng.poisson(rest).astype(np.float32), pers.psf_sigma_px)
        photons += rng.poisson(np.maximum(spread, 0).astype(np.float64)).astype(np.float32)
    else:
        photons = rng.poisson(np.maximum(expected, 0).astype(np.float64)).astype(np.float32)
        if det.kind == CCD:
            photons = _blur(photons, pers.psf_sigma_px)
    bad = ~det.valid.copy()
    hot = np.asarray(pers.hot_pixels, dtype=np.int64)
    dead = np.asarray(pers.dead_pixels, dtype=np.int64)
    if det.kind == PAD:
        data = np.minimum(photons, det.saturation_adu)
        data.ravel()[hot] = det.saturation_adu
        data.ravel()[dead] = det.dead_value
        bad.ravel()[hot] = True
        bad.ravel()[dead] = True
        data[~det.valid] = det.gap_value
        return data.astype(det.dtype), bad
    g = pers.gain_map(shape)
    adu = photons * np.float32(pers.adu_per_photon)
    if g is not None:
        adu *= g
    adu += np.float32(pers.offset_adu)
    if pers.read_noise_adu > 0:
        noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(pers.read_noise_adu)
        for i, f in enumerate(pers.panel_noise):
            noise[det.geometry.panels[i].slices()] *= np.float32(f)
        adu += noise
    if det.kind == CSPAD:
        peds = np.asarray(pers.pedestal_adu, dtype=np.float32)
        cm = rng.normal(0.0, pers.common_mode_adu, size=len(det.geometry.panels)) if pers.common_mode_adu > 0 else None
        for i, p in enumerate(det.geometry.panels):
            shift = (peds[i] if len(peds) > i else 0.0) + (cm[i] if cm is not None else 0.0)
            if shift:
                adu[p.slices()] += np.float32(shift)
    lo = 0.0 if det.dtype.startswith("uint") else float(np.iinfo(det.dtype).min) if det.dtype.startswith("int") else -np.inf
    adu.ravel()[hot] = rng.uniform(0.3, 1.0, size=len(hot)) * det.saturation_adu
    adu.ravel()[dead] = det.dead_value
    bad.ravel()[dead] = True
    adu[~det.valid] = det.gap_value
    np.clip(adu, lo, det.saturation_adu, out=adu)
    if det.dtype.startswith(("int", "uint")):
        return np.rint(adu).astype(det.dtype), bad
    return adu.astype(det.dtype), bad
