"""Per-pixel geometry the simulator needs, computed once per detector and reused every frame:
scattering angle, azimuth, solid angle and obliquity, and pixels sorted by 2-theta (so a narrow
ring touches only the pixels of its band)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np



@dataclass
class PixelGeometry:
    """Flat arrays over the *valid* pixels (on a panel, not in a gap), plus their flat indices
    into the (ss, fs) data array.  Angles in radians; ``solid`` is the pixel's solid angle
    relative to a pixel of the detector's mean size facing the sample at the mean camera length
    (cos^3 2-theta for a flat detector perpendicular to the beam)."""

    shape: tuple
    flat: np.ndarray  # int64 indices of valid pixels in the raveled data array
    twotheta: np.ndarray  # float32
    phi: np.ndarray  # float32 azimuth atan2(y, x)
    solid: np.ndarray  # float32
    order: np.ndarray  # argsort of twotheta (int64 into the flat arrays)
    tth_sorted: np.ndarray  # float32 twotheta[order]
    px_per_rad: float  # pixels per radian of 2-theta near the beam (camera length / pixel)
    sin_theta: np.ndarray = None  # float32 sin(2-theta / 2)
    cos2_tth: np.ndarray = None  # float32 cos^2(2-theta)
    cos2phi: np.ndarray = None  # float32 cos(2 phi)
    sin2phi: np.ndarray = None  # float32 sin(2 phi)

    @classmethod
    def of(cls, detector) -> "PixelGeometry":
        geom = detector.geometry
        shape = geom.data_shape
        valid = detector.valid
        x = np.zeros(shape, np.float32)
        y = np.zeros(shape, np.float32)
        z = np.ones(shape, np.float32)
        cos_obl = np.ones(shape, np.float32)
        pixsize = np.ones(shape, np.float32)
        for p in geom.panels:
            sl = p.slices()
            u = (np.arange(p.width, dtype=np.float64) + 0.5)[None, :]
            v = (np.arange(p.height, dtype=np.float64) + 0.5)[:, None]
            px = (p.corner_x + u * p.fs[0] + v * p.ss[0]) / p.res
            py = (p.corner_y + u * p.fs[1] + v * p.ss[1]) / p.res
            pz = p.distance(geom.clen) + (u * p.fs[2] + v * p.ss[2]) / p.res
            x[sl], y[sl], z[sl] = px, py, pz
            n = np.cross(np.asarray(p.fs, float), np.asarray(p.ss, float))
            n /= np.linalg.norm(n)
            cos_obl[sl] = np.abs(px * n[0] + py * n[1] + pz * n[2]) / np.sqrt(px * px + py * py + pz * pz)
            pixsize[sl] = p.pixel_size
        flat = np.flatnonzero(valid)
        x, y, z = x.ravel()[flat], y.ravel()[flat], z.ravel()[flat]
        rho = np.hypot(x, y)
        tth = np.arctan2(rho, z)
        phi = np.arctan2(y, x)
        dmean = geom.mean_camera_length()
        pmean = detector.pixel_size_m
        r2 = rho * rho + z * z
        solid = (pixsize.ravel()[flat] / np.float32(pmean)) ** 2 * cos_obl.ravel()[flat] * np.float32(dmean * dmean) / r2
        order = np.argsort(tth)
        return cls(
            shape=shape,
            flat=flat,
            twotheta=tth.astype(np.float32),
            phi=phi.astype(np.float32),
            solid=solid.astype(np.float32),
            order=order,
            tth_sorted=tth[order].astype(np.float32),
            px_per_rad=dmean / pmean,
            sin_theta=np.sin(0.5 * tth).astype(np.float32),
            cos2_tth=(np.cos(tth) ** 2).astype(np.float32),
            cos2phi=np.cos(2 * phi).astype(np.float32),
            sin2phi=np.sin(2 * phi).astype(np.float32),
        )

    def band(self, tth_lo: float, tth_hi: float) -> np.ndarray:
        """Indices (into the flat arrays) of the pixels with tth_lo <= 2-theta <= tth_hi."""
        a, b = np.searchsorted(self.tth_sorted, [tth_lo, tth_hi])
        return self.order[a:b]

    def resolution_inv_d(self, wavelength_a: float) -> np.ndarray:
        """1/d (inverse Angstrom) of every valid pixel."""
        return np.float32(2.0 / wavelength_a) * self.sin_theta

    def to_image(self, values: np.ndarray, fill: float = 0.0, dtype=np.float32) -> np.ndarray:
        out = np.full(self.shape, fill, dtype=dtype)
        out.ravel()[self.flat] = values
        return out
