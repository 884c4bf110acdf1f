"""Per-pixel maps of a geometry: x, y, z, radius, 2-theta, resolution, panel index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .detector import Geometry


@dataclass
class PixelMap:
    """Arrays of the frame's data shape (ss, fs).  Pixels outside every panel hold NaN (and
    ``panel == -1``).  Lengths in metres, angles in radians, ``inv_d`` in inverse Angstrom."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    panel: np.ndarray
    wavelength_a: Optional[float]

    @property
    def radius(self) -> np.ndarray:
        return np.hypot(self.x, self.y)

    @property
    def twotheta(self) -> np.ndarray:
        return np.arctan2(self.radius, self.z)

    @property
    def inv_d(self) -> np.ndarray:
        if not self.wavelength_a:
            return np.full(self.x.shape, np.nan)
        return 2.0 * np.sin(self.twotheta / 2.0) / self.wavelength_a

    @property
    def resolution_a(self) -> np.ndarray:
        """d-spacing in Angstrom (inf at the beam)."""
        with np.errstate(divide="ignore"):
            return 1.0 / self.inv_d


def pixel_map(geometry: Geometry, shape: Optional[tuple] = None, photon_energy_ev: Optional[float] = None) -> PixelMap:
    shape = tuple(shape) if shape is not None else geometry.data_shape
    geometry._check_clen()
    x = np.full(shape, np.nan)
    y = np.full(shape, np.nan)
    z = np.full(shape, np.nan)
    panel = np.full(shape, -1, dtype=np.int32)
    for i, p in enumerate(geometry.panels):
        ss, fs = np.mgrid[p.min_ss : p.max_ss + 1, p.min_fs : p.max_fs + 1]
        sl = p.slices()
        x[sl], y[sl], z[sl] = p.lab_xyz(fs, ss, geometry.clen)
        panel[sl] = i
    e = photon_energy_ev if photon_energy_ev is not None else geometry.photon_energy_ev
    wl = 12398.419843320026 / e if e else None
    return PixelMap(x=x, y=y, z=z, panel=panel, wavelength_a=wl)
