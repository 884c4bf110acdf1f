"""What a calibration fit returns (:class:`CalibrationResult`) and its text summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..geometry.detector import HC_EV_A, Geometry
from .geometry_convert import PyFAIGeometry
from .rings import ControlPoints
from .uncertainty import FitUncertainty, TiltDecision


@dataclass
class CalibrationResult:
    """A refined geometry and how well it fits.

    ``beam_center`` (fs, ss): the **direct-beam centre**, where the incident beam meets panel 0's
    plane, in pixel indices of the frame (centre of the first pixel at 0) -- for one flat panel
    pyFAI's ``getFit2D()`` ``centerX - 0.5, centerY - 0.5``.  ``distance_m``: from the sample to
    that point along the beam (Fit2D's ``directDist``; the camera length ``clen`` of an untilted
    detector).  ``poni``: pyFAI's (dist m, poni1 m, poni2 m, rot1, rot2, rot3 rad) -- for a
    multi-panel detector relative to its pixel-corner description (see :mod:`.geometry_convert`).
    ``tilts_deg``: (rot1, rot2, rot3) in degrees; ``tilt_deg`` / ``tilt_plane_rotation_deg``:
    pyFAI's Fit2D-style tilt and its direction.  ``tilt_status``: "fitted" (refined and
    determined), "fitted, poorly determined" (refined on request although the data do not pin it
    down), "undetermined" (kept fixed: the data do not determine it, see ``tilt_decision``) or
    "fixed" (not refined by request).  ``residual_px``: RMS radial distance of the control
    points from their rings.  ``uncertainty``: formal 1-sigma errors (:mod:`.uncertainty`).
    """

    geometry: Geometry
    start_geometry: Geometry
    calibrant: str
    wavelength_a: float
    beam_center: tuple
    distance_m: float
    tilts_deg: tuple
    tilt_fitted: bool
    residual_px: float
    residual_2theta_deg: float
    rings_used: list  # calibrant ring indices (0 = largest d)
    ring_d_spacings_a: list
    n_control_points: int
    control_points: ControlPoints
    pyfai: PyFAIGeometry = field(repr=False)
    coarse_beam_center: tuple = (np.nan, np.nan)
    coarse_distance_m: float = float("nan")
    iterations: int = 0
    poni: tuple = (np.nan,) * 6
    tilt_deg: float = 0.0
    tilt_plane_rotation_deg: float = 0.0
    tilt_status: str = "fixed"
    tilt_decision: Optional[TiltDecision] = None
    uncertainty: Optional[FitUncertainty] = None
    ring_residuals: list = field(default_factory=list)  # RingResidual per ring used
    panel_residuals: list = field(default_factory=list)  # PanelResidual per panel with points
    warnings: list = field(default_factory=list)

    @property
    def photon_energy_ev(self) -> float:
        return HC_EV_A / self.wavelength_a

    @property
    def direct_beam_center(self) -> tuple:
        return self.beam_center

    @property
    def poni_px(self) -> tuple:
        """The PONI as (fs, ss) pixel indices of one flat panel (NaN for a multi-panel detector)."""
        if self.pyfai.kind != "flat":
            return (np.nan, np.nan)
        det = self.pyfai.integrator.detector
        return (self.poni[2] / det.pixel2 - 0.5, self.poni[1] / det.pixel1 - 0.5)

    def _pm(self, value: float, sigma: float, fmt: str) -> str:
        return f"{value:{fmt}}" + (f" +/- {sigma:{fmt}}" if np.isfinite(sigma) else "")

    def summary(self) -> str:
        u = self.uncertainty
        sb = u.sigma_beam_px if u is not None else (np.nan, np.nan)
        sd = u.sigma_distance_m if u is not None else np.nan
        bc = self.beam_center
        lines = [
            f"calibrant        {self.calibrant}, wavelength {self.wavelength_a:.5f} A ({self.photon_energy_ev / 1e3:.4f} keV)",
            f"direct-beam centre fs = {self._pm(bc[0], sb[0], '.3f')} px, ss = {self._pm(bc[1], sb[1], '.3f')} px "
            "(pixel indices, first pixel centre at 0; Fit2D centerX/Y - 0.5)",
            f"distance         {self._pm(self.distance_m * 1e3, sd * 1e3, '.3f')} mm (sample to direct-beam centre)",
        ]
        p = self.poni
        px = self.poni_px
        where = f" = fs {px[0]:.2f}, ss {px[1]:.2f} px" if np.isfinite(px[0]) else ""
        lines.append(f"PONI (pyFAI)     dist {p[0] * 1e3:.3f} mm, poni1 {p[1] * 1e3:.4f} mm, poni2 {p[2] * 1e3:.4f} mm"
                     f"{where}; rot1 {self.tilts_deg[0]:.4f}, rot2 {self.tilts_deg[1]:.4f}, rot3 {self.tilts_deg[2]:.4f} deg")
        lines.append(self.tilt_text())
        lines += [
            f"residual         {self.residual_px:.3f} px RMS ({self.residual_2theta_deg * 1e3:.3f} mdeg 2theta)",
            f"rings used       {len(self.rings_used)}: " + ", ".join(
                f"#{i + 1} ({d:.3f} A)" for i, d in zip(self.rings_used[:12], self.ring_d_spacings_a[:12])
            ) + (" ..." if len(self.rings_used) > 12 else ""),
            f"control points   {self.n_control_points}",
        ]
        if self.ring_residuals:
            lines.append("per ring         ring   d (A)  points  RMS px  mean px  azimuth deg")
            lines += [f"                 #{r.ring + 1:<4d} {r.d_a:6.3f} {r.n_points:7d} {r.rms_px:7.3f} {r.mean_px:+8.3f} "
                      f"{r.coverage_deg:8.0f}" for r in self.ring_residuals]
        if len(self.panel_residuals) > 1:
            lines.append("per panel        panel        points  RMS px  mean px  shift x, y px")
            lines += [f"                 {q.panel:12s} {q.n_points:6d} {q.rms_px:7.3f} {q.mean_px:+8.3f}  "
                      f"{q.shift_px[0]:+.2f}, {q.shift_px[1]:+.2f} +/- {q.shift_sigma_px:.2f}"
                      + ("  <- off?" if q.flagged else "") for q in self.panel_residuals]
        lines += [f"warning          {w}" for w in self.warnings]
        return "\n".join(lines)

    def tilt_text(self) -> str:
        """One line on the tilt: value, uncertainty, direction, or why it was kept fixed."""
        u = self.uncertainty
        d = self.tilt_decision
        if self.tilt_status.startswith("fitted"):
            st = u.sigma_tilt_deg if u is not None else np.nan
            sp = u.sigma_tilt_plane_rotation_deg if u is not None else np.nan
            poor = " (poorly determined)" if self.tilt_status != "fitted" else ""
            return (f"tilt             {self._pm(self.tilt_deg, st, '.3f')} deg{poor}, direction (tiltPlanRotation) "
                    f"{self._pm(self.tilt_plane_rotation_deg, sp, '.1f')} deg")
        if self.tilt_status == "undetermined" and d is not None:
            return (f"tilt             undetermined, kept at {self.tilt_deg:.3f} deg ({d.reason.split(': ', 1)[-1]}); "
                    f"a free fit gave {d.tilt_deg:.3f} +/- {d.sigma_tilt_deg:.3f} deg")
        return f"tilt             {self.tilt_deg:.3f} deg, not refined"

    def as_dict(self) -> dict:
        """The figures (JSON-ready)."""
        u = self.uncertainty
        d = self.tilt_decision
        return {
            "calibrant": self.calibrant, "wavelength_a": self.wavelength_a, "photon_energy_ev": self.photon_energy_ev,
            "direct_beam_center_fs": self.beam_center[0], "direct_beam_center_ss": self.beam_center[1],
            "beam_center_fs": self.beam_center[0], "beam_center_ss": self.beam_center[1],
            "distance_mm": self.distance_m * 1e3,
            "poni": dict(zip(("dist_m", "poni1_m", "poni2_m", "rot1_rad", "rot2_rad", "rot3_rad"), map(float, self.poni))),
            "poni_px": [float(v) for v in self.poni_px],
            "tilt_status": self.tilt_status, "tilt_fitted": self.tilt_fitted, "rot_deg": list(self.tilts_deg),
            "tilt_deg": self.tilt_deg, "tilt_plane_rotation_deg": self.tilt_plane_rotation_deg,
            "tilt_decision": None if d is None else {
                "determined": d.determined, "reason": d.reason, "rings": d.n_rings, "azimuth_coverage_deg": d.coverage_deg,
                "free_fit_tilt_deg": d.tilt_deg, "free_fit_sigma_tilt_deg": d.sigma_tilt_deg,
                "free_fit_tilt_plane_rotation_deg": d.tilt_plane_rotation_deg, "tilt_inflation": d.inflation},
            "uncertainty": None if u is None else u.as_dict(),
            "residual_px": self.residual_px, "residual_2theta_deg": self.residual_2theta_deg,
            "rings_used": [i + 1 for i in self.rings_used], "ring_d_spacings_a": self.ring_d_spacings_a,
            "control_points": self.n_control_points,
            "ring_residuals": [dict(ring=r.ring + 1, d_a=r.d_a, points=r.n_points, rms_px=r.rms_px, mean_px=r.mean_px,
                                    azimuth_coverage_deg=r.coverage_deg) for r in self.ring_residuals],
            "panel_residuals": [dict(panel=q.panel, points=q.n_points, rms_px=q.rms_px, mean_px=q.mean_px,
                                     shift_px=list(q.shift_px), shift_sigma_px=q.shift_sigma_px, flagged=q.flagged)
                                for q in self.panel_residuals],
            "warnings": list(self.warnings),
            "beam_center_convention": "pixel index; centre of first pixel at 0",
        }
