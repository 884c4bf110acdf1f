"""Azimuthal integration of a frame with pyFAI, through the project's geometry.

    integ = FrameIntegrator(geometry, shape, wavelength_a=1.0)
    prof = integ.profile(frame)          # Frame (its .bad is used) or a 2-D array
    prof.q, prof.twotheta_deg, prof.d_a, prof.intensity

One integration gives I(q), I(2theta) and I(d): the profile is binned on one radial axis
(``unit``: ``"q_A^-1"`` by default, or ``"2th_deg"``, ``"2th_rad"``, ``"q_nm^-1"``, ``"r_mm"``)
and every other axis is computed from it.  Masked: pixels outside every panel, the frame's bad
pixels, the geometry's static mask (``bad_*`` regions, mask files) when asked, a user mask, and
non-finite values.  pyFAI's integrator (with its cached look-up table) is kept by the
:class:`FrameIntegrator`, so integrating many frames of one geometry is fast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import CalibrationError, InputError
from ..frame import Frame
from ..geometry.detector import Geometry
from .geometry_convert import PyFAIGeometry, to_pyfai

log = logging.getLogger(__name__)

_UNITS = ("q_A^-1", "q_nm^-1", "2th_deg", "2th_rad", "r_mm")


@dataclass
class RadialProfile:
    """An azimuthally integrated profile.  ``radial`` holds bin centres in ``unit``; ``q`` /
    ``twotheta_deg`` / ``d_a`` are the same bins on the other axes (q in 1/Angstrom, d in
    Angstrom, inf at q = 0).  ``intensity`` is the mean (solid-angle and, when asked,
    polarisation corrected) intensity per pixel; ``sigma`` its Poisson error; ``count`` the
    number of (fractional) pixels in the bin -- empty bins hold NaN intensity."""

    radial: np.ndarray
    intensity: np.ndarray
    sigma: Optional[np.ndarray]
    count: np.ndarray
    unit: str
    wavelength_a: float
    distance_m: float = float("nan")

    @property
    def q(self) -> np.ndarray:
        if self.unit == "q_A^-1":
            return self.radial
        if self.unit == "q_nm^-1":
            return self.radial / 10.0
        return 4.0 * np.pi * np.sin(self.twotheta_rad / 2.0) / self.wavelength_a

    @property
    def twotheta_rad(self) -> np.ndarray:
        if self.unit == "2th_rad":
            return self.radial
        if self.unit == "2th_deg":
            return np.deg2rad(self.radial)
        if self.unit == "r_mm":
            return np.arctan2(self.radial * 1e-3, self.distance_m)
        return 2.0 * np.arcsin(np.clip(self.q * self.wavelength_a / (4.0 * np.pi), -1, 1))

    @property
    def twotheta_deg(self) -> np.ndarray:
        return np.rad2deg(self.twotheta_rad)

    @property
    def d_a(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return 2.0 * np.pi / self.q

    def axis(self, name: str) -> np.ndarray:
        """``"q"``, ``"2theta"`` (degrees) or ``"d"`` axis of this profile."""
        return {"q": self.q, "2theta": self.twotheta_deg, "d": self.d_a}[name]


class FrameIntegrator:
    """pyFAI azimuthal integrator for one geometry, frame shape and wavelength."""

    def __init__(
        self,
        geometry: Geometry,
        shape: Optional[tuple] = None,
        wavelength_a: Optional[float] = None,
        photon_energy_ev: Optional[float] = None,
        static_mask: Optional[np.ndarray] = None,
    ):
        self.geometry = geometry
        self.shape = tuple(shape) if shape is not None else geometry.data_shape
        self.conv: PyFAIGeometry = to_pyfai(geometry, self.shape, wavelength_a, photon_energy_ev)
        if not self.conv.integrator._wavelength:
            raise CalibrationError("azimuthal integration needs the wavelength (photon energy unknown)")
        self.wavelength_a = self.conv.integrator.wavelength * 1e10
        self.static_mask = None if static_mask is None else np.asarray(static_mask, bool)

    @classmethod
    def from_conversion(cls, conv: PyFAIGeometry, static_mask: Optional[np.ndarray] = None) -> "FrameIntegrator":
        """Integrator sharing an existing conversion (its integrator follows later PONI changes)."""
        self = cls.__new__(cls)
        self.geometry = conv.base
        self.shape = conv.shape
        self.conv = conv
        if not conv.integrator._wavelength:
            raise CalibrationError("azimuthal integration needs the wavelength (photon energy unknown)")
        self.wavelength_a = conv.integrator.wavelength * 1e10
        self.static_mask = None if static_mask is None else np.asarray(static_mask, bool)
        return self

    @property
    def integrator(self):
        return self.conv.integrator

    def mask_for(self, data: np.ndarray, bad: Optional[np.ndarray] = None, mask: Optional[np.ndarray] = None) -> np.ndarray:
        """Combined bool mask (True = excluded) for one frame."""
        if data.shape != self.shape:
            raise InputError(f"frame shape {data.shape} does not match the geometry's {self.shape}")
        out = ~self.conv.valid | ~np.isfinite(data)
        for extra in (bad, mask, self.static_mask):
            if extra is not None:
                extra = np.asarray(extra, bool)
                if extra.shape != self.shape:
                    raise InputError(f"mask shape {extra.shape} does not match the frame's {self.shape}")
                out |= extra
        return out

    def profile(
        self,
        frame,
        *,
        npt: Optional[int] = None,
        unit: str = "q_A^-1",
        mask: Optional[np.ndarray] = None,
        bad: Optional[np.ndarray] = None,
        radial_range: Optional[tuple] = None,
        azimuth_range_deg: Optional[tuple] = None,
        polarization: Optional[float] = None,
        solid_angle: bool = True,
        method=("bbox", "csr", "cython"),
    ) -> RadialProfile:
        """Integrate ``frame`` (a :class:`Frame` or a 2-D array) to a :class:`RadialProfile`.

        ``npt`` defaults to the number of pixels across the detector diagonal.  ``azimuth_range_deg``
        is in pyFAI's chi (= atan2(y, x) of the lab frame for standard panels).
        """
        if unit not in _UNITS:
            raise CalibrationError(f"unknown radial unit {unit!r}; choose from {', '.join(_UNITS)}")
        if isinstance(frame, Frame):
            data, bad = frame.data, frame.bad if bad is None else bad
        else:
            data = frame
        data = np.asarray(data)
        if data.ndim != 2:
            raise InputError(f"frame must be 2-D, not shape {data.shape}")
        m = self.mask_for(data, bad, mask)
        if m.all():
            raise CalibrationError("azimuthal integration: every pixel is masked")
        clean = np.where(m, 0.0, data).astype(np.float32)
        if npt is None:
            npt = int(np.hypot(*self.shape))
        res = self.integrator.integrate1d(
            clean, npt, unit=unit, mask=m.astype(np.int8), radial_range=radial_range,
            azimuth_range=azimuth_range_deg, polarization_factor=polarization,
            correctSolidAngle=solid_angle, error_model="poisson", method=method,
        )
        count = np.asarray(res.count) if getattr(res, "count", None) is not None else np.full(len(res.radial), np.nan)
        inten = np.asarray(res.intensity, dtype=np.float64)
        empty = count <= 0 if np.isfinite(count).all() else np.zeros(len(inten), bool)
        inten = np.where(empty, np.nan, inten)
        sigma = None if res.sigma is None else np.where(empty, np.nan, np.asarray(res.sigma, float))
        return RadialProfile(
            radial=np.asarray(res.radial, dtype=np.float64), intensity=inten, sigma=sigma, count=count,
            unit=unit, wavelength_a=self.wavelength_a, distance_m=self.integrator.dist,
        )


def integrate_frame(
    frame,
    geometry: Geometry,
    *,
    wavelength_a: Optional[float] = None,
    photon_energy_ev: Optional[float] = None,
    npt: Optional[int] = None,
    unit: str = "q_A^-1",
    mask: Optional[np.ndarray] = None,
    static_mask: Optional[np.ndarray] = None,
    **options,
) -> RadialProfile:
    """One-shot :meth:`FrameIntegrator.profile`.  The photon energy defaults to the frame's
    metadata, then the geometry's."""
    data = frame.data if isinstance(frame, Frame) else np.asarray(frame)
    if wavelength_a is None and photon_energy_ev is None and isinstance(frame, Frame):
        photon_energy_ev = frame.metadata.photon_energy_ev
    integ = FrameIntegrator(geometry, data.shape, wavelength_a, photon_energy_ev, static_mask)
    return integ.profile(frame, npt=npt, unit=unit, mask=mask, **options)
