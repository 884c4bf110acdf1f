"""Reflections excited in a still: Ewald-sphere excitation with finite mosaicity, bandwidth and
crystal size (partial reflections), Wilson-scaled random structure-factor intensities, and the
angular size of each diffracted beam.

Beam along +z, wave vector ``k0 = (0, 0, 1/lambda)`` (no 2 pi).  For a reciprocal-lattice point
``q = U B h`` the excitation error is ``eps = |k0 + q| - 1/lambda``.  The reciprocal-lattice
point has a Gaussian extent along the sphere normal and the Ewald sphere a Gaussian thickness::

    sigma_R^2 = (0.5 / domain_size)^2 + (|q| eta)^2        finite mosaic domains; mosaic spread (RMS, rad)
    sigma_S^2 = (|q|^2 lambda / 2 * bandwidth)^2            bandwidth = RMS dlambda/lambda
              + (sin 2theta / lambda)^2 (div_h^2 cos^2 phi + div_v^2 sin^2 phi)   beam divergence (RMS, rad)

A still records the overlap of the two: the partiality (fraction of the reflection's integrated
intensity) is ``sigma_S / sigma * exp(-eps^2 / (2 sigma^2))`` with ``sigma^2 = sigma_R^2 +
sigma_S^2`` -- a thin shell through a big lattice point catches only a slice of it (low-resolution
reflections of small domains are many but partial).  The diffracted beam leaves along
``k0 + q`` with an angular spread of ``2 sin(theta) eta`` across the scattering plane (mosaic
arcs) and ``2 tan(theta) bandwidth`` along 2-theta (bandwidth streaks); a divergent beam shifts
the spot with the incident direction (elongation along the divergence, handled by the frame
composer).

Full (integrated) intensity: ``strength * |F|^2 * exp(-B / (2 d^2))`` with
``|F|^2 ~ Exponential(1)`` (acentric Wilson statistics); recorded = full * partiality *
polarisation (applied by the frame composer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .lattice import UnitCell, miller_table


@dataclass
class CrystalParams:
    """One lattice in the beam.  ``rotation`` is U (3x3, list of lists for JSON)."""

    cell: UnitCell
    rotation: list
    mosaicity_deg: float = 0.05  # RMS misorientation
    domain_size_um: float = 1.0
    b_factor: float = 20.0
    d_limit_a: float = 2.0  # no reflections beyond this resolution
    strength: float = 1000.0  # photons of a full reflection with |F|^2 = 1 at d = infinity

    def as_dict(self) -> dict:
        return {
            "cell": self.cell.as_dict(),
            "rotation": np.asarray(self.rotation).round(8).tolist(),
            "mosaicity_deg": self.mosaicity_deg,
            "domain_size_um": self.domain_size_um,
            "b_factor": self.b_factor,
            "d_limit_a": self.d_limit_a,
            "strength": self.strength,
        }


@dataclass
class Reflections:
    """Excited reflections of one lattice (arrays of length N)."""

    hkl: np.ndarray  # int32 (N, 3)
    d: np.ndarray  # Angstrom
    partiality: np.ndarray
    photons: np.ndarray  # expected photons in the spot, before polarisation
    direction: np.ndarray  # (N, 3) unit vectors of the diffracted beams
    twotheta: np.ndarray  # radians
    sigma_radial_rad: np.ndarray  # angular RMS along 2-theta
    sigma_azimuthal_rad: np.ndarray  # angular RMS across the scattering plane
    lattice: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def __len__(self) -> int:
        return len(self.d)

    @classmethod
    def empty(cls) -> "Reflections":
        z = np.zeros(0)
        return cls(np.zeros((0, 3), np.int32), z, z, z, np.zeros((0, 3)), z, z, z, np.zeros(0, np.int32))

    def select(self, sel) -> "Reflections":
        return Reflections(*(getattr(self, f)[sel] for f in (
            "hkl", "d", "partiality", "photons", "direction", "twotheta", "sigma_radial_rad",
            "sigma_azimuthal_rad", "lattice")))

    @classmethod
    def concatenate(cls, items: list) -> "Reflections":
        if not items:
            return cls.empty()
        return cls(*(np.concatenate([getattr(r, f) for r in items]) for f in (
            "hkl", "d", "partiality", "photons", "direction", "twotheta", "sigma_radial_rad",
            "sigma_azimuthal_rad", "lattice")))


def excitation(q: np.ndarray, wavelength_a: float) -> tuple:
    """Excitation error (1/A) and unit direction of ``k0 + q`` for lab-frame vectors q (N, 3)."""
    k = 1.0 / wavelength_a
    kq = q.copy()
    kq[:, 2] += k
    norm = np.linalg.norm(kq, axis=1)
    return norm - k, kq / norm[:, None]


SHELL_FLOOR = 1e-6  # 1/A: no beam is perfectly monochromatic and parallel


def shell_widths2(qn2: np.ndarray, direction: np.ndarray, crystal: "CrystalParams", wavelength_a: float,
                  bandwidth: float, divergence: tuple) -> tuple:
    """(sigma_R^2, sigma_S^2) of the module doc for reflections with |q|^2 ``qn2`` diffracted along
    unit vectors ``direction`` (N, 3)."""
    eta = np.deg2rad(crystal.mosaicity_deg)
    sig2_r = (0.5 / (crystal.domain_size_um * 1e4)) ** 2 + qn2 * eta**2
    k = 1.0 / wavelength_a
    sig2_s = ((0.5 * qn2 * wavelength_a * bandwidth) ** 2 + SHELL_FLOOR**2
              + k * k * ((direction[:, 0] * divergence[0]) ** 2 + (direction[:, 1] * divergence[1]) ** 2))
    return sig2_r, sig2_s


def typical_partiality(crystal: "CrystalParams", wavelength_a: float, bandwidth: float, divergence: tuple,
                       d: float = 3.0) -> float:
    """The partiality of a reflection at resolution ``d`` lying on the Ewald sphere (azimuth 45
    degrees): the factor by which a still records less than the full intensity there."""
    tth = 2 * np.arcsin(min(wavelength_a / (2 * d), 1.0))
    direction = np.array([[np.sin(tth) / np.sqrt(2), np.sin(tth) / np.sqrt(2), np.cos(tth)]])
    r2, s2 = shell_widths2(np.array([1.0 / d**2]), direction, crystal, wavelength_a, bandwidth, divergence)
    return float(np.sqrt(s2 / (r2 + s2))[0])


def excite(crystal: CrystalParams, wavelength_a: float, bandwidth: float, d_min_detector: float,
           rng: np.random.Generator, *, min_partiality: float = 0.02, lattice_index: int = 0,
           max_twotheta: Optional[float] = None, divergence: tuple = (0.0, 0.0)) -> Reflections:
    """Reflections of ``crystal`` excited in a still at ``wavelength_a`` (see the module doc).

    ``d_min_detector``: the highest resolution the detector sees (no point in enumerating more);
    ``min_partiality``: reflections whose excitation factor ``exp(-eps^2 / 2 sigma^2)`` is below it
    are dropped (they would be invisible anyway);
    ``divergence``: RMS beam divergence (horizontal = x, vertical = y) in radians.
    """
    tab = miller_table(crystal.cell, max(float(d_min_detector), 0.5))
    if len(tab) == 0:
        return Reflections.empty()
    UB = np.asarray(crystal.rotation, dtype=np.float64) @ crystal.cell.reciprocal_matrix()
    # pre-selection (float32) from the orientation-free |q|^2 and one dot product:
    # eps ~ q_z + |q|^2 lambda / 2 must be within the largest tolerance any reflection has
    eta = np.deg2rad(crystal.mosaicity_deg)
    size_term = 0.5 / (crystal.domain_size_um * 1e4)
    lim = -2.0 * np.log(min_partiality) * 2.5
    qn2_max = min(float(tab.qn2.max()), 1.0 / crystal.d_limit_a**2)
    div_h, div_v = (float(v) for v in divergence)
    sig2_max = (size_term**2 + qn2_max * eta**2 + (0.5 * qn2_max * wavelength_a * bandwidth) ** 2
                + qn2_max * max(div_h, div_v) ** 2)  # sin 2theta / lambda <= |q|
    tol_max = np.float32(np.sqrt(lim * sig2_max) + 1e-3 * qn2_max)
    eps_approx = tab.hkl_f @ UB[2].astype(np.float32)
    eps_approx += np.float32(0.5 * wavelength_a) * tab.qn2
    pre = np.flatnonzero(np.abs(eps_approx) < tol_max)
    qn2 = tab.qn2[pre].astype(np.float64)
    pre = pre[qn2 * crystal.d_limit_a**2 <= 1.0]
    hkl = tab.hkl[pre]
    q = hkl.astype(np.float64) @ UB.T
    qn2 = np.einsum("ij,ij->i", q, q)
    qn = np.sqrt(qn2)
    eps, direction = excitation(q, wavelength_a)
    sig2_r, sig2_s = shell_widths2(qn2, direction, crystal, wavelength_a, bandwidth, (div_h, div_v))
    sig2 = sig2_r + sig2_s
    excited = np.exp(-0.5 * eps * eps / sig2)
    part = excited * np.sqrt(sig2_s / sig2)
    keep = excited >= min_partiality
    twotheta = np.arccos(np.clip(direction[:, 2], -1, 1))
    if max_twotheta is not None:
        keep &= twotheta <= max_twotheta
    hkl, qn, part, direction, twotheta = hkl[keep], qn[keep], part[keep], direction[keep], twotheta[keep]
    d = 1.0 / qn
    f2 = rng.exponential(1.0, size=len(d))
    photons = crystal.strength * f2 * np.exp(-crystal.b_factor / (2.0 * d * d)) * part
    theta = 0.5 * twotheta
    sig_az = 2.0 * np.sin(theta) * eta
    sig_rad = np.hypot(2.0 * np.tan(theta) * bandwidth, 0.5 * sig_az)
    return Reflections(
        hkl=hkl.astype(np.int32), d=d, partiality=part, photons=photons, direction=direction,
        twotheta=twotheta, sigma_radial_rad=sig_rad, sigma_azimuthal_rad=sig_az,
        lattice=np.full(len(d), lattice_index, np.int32),
    )
