"""Refine beam centre and detector distance (tilts optional) from one calibrant frame.

    result = calibrate(frame, rough_geometry, "AgBh", wavelength_a=1.0)
    result.beam_center, result.distance_m, result.residual_px, result.geometry

Procedure: a coarse search (:mod:`.search`: beam centre from ring concentricity, distance from
the ring radii -- the start may be tens of pixels and ~10-25 % off), then cycles of pyFAI
control-point extraction (:func:`.rings.extract_control_points`, on the rings that stand out of
the radial profile) and refinement on pyFAI's ``GeometryRefinement`` model (scipy least squares
for the outlier cuts, pyFAI's ``refine3`` to finish; wavelength and rot3 fixed, rot1/rot2 fixed
unless ``fit_tilt``).  Rings whose points scatter like noise and points further than 4 robust
sigmas from their ring are dropped.  The cycle ends when the beam centre moves by less than
0.05 px and the distance by less than 0.02 %.  Errors: :class:`~peaknet_gui.errors.CalibrationError`
for a frame with too few rings, rings that fit a different energy, or a failed fit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import CalibrationError
from ..frame import Frame
from ..geometry.detector import HC_EV_A, Geometry
from ._quiet import quiet_pyfai
from .calibrants import CalibrantLike, calibrant_name, load_calibrant, ring_table
from .geometry_convert import PyFAIGeometry, to_pyfai
from .integrate import FrameIntegrator
from .rings import ControlPoints, extract_control_points, pick_rings
from .search import CoarseResult, coarse_search

log = logging.getLogger(__name__)


@dataclass
class CalibrationResult:
    """A refined geometry and how well it fits.

    ``beam_center`` (fs, ss) in pixel indices of the frame (centre of first pixel at 0) where the
    beam meets panel 0's plane; ``distance_m`` the sample to that point along the beam (for an
    untilted detector the camera length ``clen`` of the refined geometry).  ``tilts_deg`` are pyFAI's (rot1, rot2, rot3) in
    degrees (zeros unless ``tilt_fitted``).  ``residual_px``: RMS distance (pixels, along the
    radial direction) of the control points from their rings.
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

    @property
    def photon_energy_ev(self) -> float:
        return HC_EV_A / self.wavelength_a

    def summary(self) -> str:
        bc = self.beam_center
        lines = [
            f"calibrant        {self.calibrant}, wavelength {self.wavelength_a:.5f} A ({self.photon_energy_ev / 1e3:.4f} keV)",
            f"beam centre      fs = {bc[0]:.2f} px, ss = {bc[1]:.2f} px (pixel indices, first pixel centre at 0)",
            f"distance         {self.distance_m * 1e3:.3f} mm",
        ]
        if self.tilt_fitted:
            t = self.tilts_deg
            lines.append(f"tilt (pyFAI)     rot1 = {t[0]:.4f} deg, rot2 = {t[1]:.4f} deg, rot3 = {t[2]:.4f} deg")
        lines += [
            f"residual         {self.residual_px:.3f} px RMS ({self.residual_2theta_deg * 1e3:.3f} mdeg 2theta)",
            f"rings used       {len(self.rings_used)}: " + ", ".join(
                f"#{i + 1} ({d:.3f} A)" for i, d in zip(self.rings_used[:12], self.ring_d_spacings_a[:12])
            ) + (" ..." if len(self.rings_used) > 12 else ""),
            f"control points   {self.n_control_points}",
        ]
        return "\n".join(lines)


def _frame_arrays(frame, bad):
    if isinstance(frame, Frame):
        data = frame.data
        bad = frame.bad if bad is None else (bad | (frame.bad if frame.bad is not None else False))
        src = str(frame.event)
    else:
        data = np.asarray(frame)
        src = "frame"
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise CalibrationError(f"{src}: a calibrant frame must be 2-D, not shape {data.shape}")
    b = np.zeros(data.shape, bool) if bad is None else np.asarray(bad, bool).copy()
    b |= ~np.isfinite(data)
    return data, b, src


def _fix_list(fit_tilt: bool) -> list:
    # rot3 (about the beam) barely changes 2-theta: the tilt is rot1 and rot2
    return ["wavelength", "rot3"] + ([] if fit_tilt else ["rot1", "rot2"])


def _tth_gradient(gr, d1, d2, params) -> np.ndarray:
    """|d(2 theta)/d(pixel)| at control points."""
    p = list(params)
    g1 = gr.tth(d1 + 0.5, d2, p) - gr.tth(d1 - 0.5, d2, p)
    g2 = gr.tth(d1, d2 + 0.5, p) - gr.tth(d1, d2 - 0.5, p)
    return np.maximum(np.hypot(g1, g2), 1e-15)


def _noisy_rings(gr, data, params, dtth, tth_ring, min_rings: int) -> np.ndarray:
    """Bool per point: its ring is too noisy to use.

    Points of a ring too faint for single pixels scatter uniformly over pyFAI's search band
    (+/- a quarter of the ring spacing: robust sigma ~ 0.18 spacing); a real ring's points sit
    within a fraction of a pixel.  Rings whose robust radial scatter exceeds 0.05 spacing (and
    0.3 px) go.
    """
    ring = data[:, 2].astype(int)
    grad = _tth_gradient(gr, data[:, 0], data[:, 1], params)
    px = dtth / grad
    ids = np.unique(ring)
    rms, limit = {}, {}
    for k in ids:
        m = ring == k
        gap = np.min(np.abs(np.delete(tth_ring, k) - tth_ring[k])) if len(tth_ring) > 1 else np.inf
        spacing_px = gap / np.median(grad[m])
        rms[k] = float(1.4826 * np.median(np.abs(px[m] - np.median(px[m]))))  # robust scatter
        limit[k] = max(0.05 * spacing_px, 0.3)
    good = [k for k in ids if rms[k] <= limit[k]]
    if len(good) < min_rings:
        good = sorted(ids, key=lambda k: rms[k] / limit[k])[:min_rings]
    return ~np.isin(ring, good)


def _refine_once(conv: PyFAIGeometry, cps: ControlPoints, calibrant, wl: float, fit_tilt: bool, start_params,
                 min_rings: int):
    """pyFAI GeometryRefinement on ``cps``: noisy rings dropped, then points further than 4
    robust sigmas from their ring dropped, refining again after each cut.

    Returns (params, kept control points, their 2-theta residuals, the GeometryRefinement)."""
    from pyFAI.geometryRefinement import GeometryRefinement

    det = conv.integrator.detector
    params = tuple(start_params)
    data = cps.points
    tth_ring = np.asarray(load_calibrant(calibrant, wl).get_2th(), float)

    free = [0, 1, 2] + ([3, 4] if fit_tilt else [])
    scale = np.array([1e-3, 1e-4, 1e-4, 1e-3, 1e-3, 1e-3])[free]

    def run(data, params, polish=False):
        """Least squares (scipy, on pyFAI's 2-theta model) -- fast for the outlier cuts; the
        final fit is polished by pyFAI's own ``refine3``."""
        from scipy.optimize import least_squares

        gr = GeometryRefinement(data=data, calibrant=load_calibrant(calibrant, wl), detector=det, wavelength=wl * 1e-10)
        gr.auto_gc = False  # pyFAI would run the garbage collector on every parameter change
        gr.set_param(list(params))
        d1, d2, target = data[:, 0], data[:, 1], tth_ring[data[:, 2].astype(int)]
        full = np.array(params, dtype=np.float64)

        def resid(x):
            p = full.copy()
            p[free] = x
            return gr.tth(d1, d2, list(p)) - target

        sol = least_squares(resid, full[free], x_scale=scale, method="lm" if len(data) > 2 * len(free) else "trf")
        full[free] = sol.x
        gr.set_param([float(v) for v in full])
        if polish:
            gr.refine3(fix=_fix_list(fit_tilt))
        params = (gr.dist, gr.poni1, gr.poni2, gr.rot1, gr.rot2, gr.rot3)
        dtth = gr.tth(d1, d2, list(params)) - target
        return gr, params, dtth

    gr, params, dtth = run(data, params)
    noisy = _noisy_rings(gr, data, params, dtth, tth_ring, min_rings)
    if noisy.any():
        data = data[~noisy]
        gr, params, dtth = run(data, params)
    for _ in range(3):
        med = np.median(dtth)
        sig = 1.4826 * np.median(np.abs(dtth - med))
        keep = np.abs(dtth - med) <= max(4.0 * sig, 1e-12)
        if keep.all() or keep.sum() < 6:
            break
        data = data[keep]
        gr, params, dtth = run(data, params)
    gr, params, dtth = run(data, params, polish=True)
    return params, ControlPoints(data), dtth, gr


def _residual_px(gr, cps: ControlPoints, params, dtth) -> float:
    """RMS radial residual in pixels: 2-theta errors over the local 2-theta gradient per pixel."""
    grad = _tth_gradient(gr, cps.points[:, 0], cps.points[:, 1], params)
    return float(np.sqrt(np.mean((dtth / grad) ** 2)))


def _rings_seen(data, bad, conv: PyFAIGeometry, calibrant, min_snr: float) -> list:
    """Calibrant ring indices with a peak in the radial profile at the current geometry."""
    integ = FrameIntegrator.from_conversion(conv)
    npt = int(2 * np.hypot(*data.shape))
    prof = integ.profile(data, bad=bad, unit="2th_rad", npt=npt, solid_angle=False)
    return sorted({r.index for r in pick_rings(prof, calibrant, min_snr=min_snr)})


def calibrate(frame, geometry: Geometry, calibrant: CalibrantLike = "AgBh", wavelength_a: Optional[float] = None,
              **options) -> CalibrationResult:
    """Refine ``geometry`` (a rough start) on one calibrant ``frame`` (Frame or 2-D array).

    ``wavelength_a`` defaults to the frame's metadata, then the geometry's photon energy.
    Options (keywords): ``bad`` (extra bool mask), ``fit_tilt`` (False), ``search_px`` (64: how
    far the coarse search looks for the beam centre), ``distance_tolerance`` (0.25: relative
    distance range allowed around the start; a better match beyond it means a wrong energy or
    distance and raises CalibrationError), ``min_rings`` (2; 3 with tilts), ``max_iterations``
    (6), ``coarse`` (True; False skips the search when the start is good to ~1 px and ~1 %),
    ``smooth_px`` (1.0), ``min_snr`` (5: a ring must stand out of the radial profile this much).
    """
    with quiet_pyfai():
        return _calibrate(frame, geometry, calibrant, wavelength_a, **options)


def _calibrate(
    frame,
    geometry: Geometry,
    calibrant: CalibrantLike = "AgBh",
    wavelength_a: Optional[float] = None,
    *,
    bad: Optional[np.ndarray] = None,
    fit_tilt: bool = False,
    search_px: float = 64.0,
    distance_tolerance: float = 0.25,
    min_rings: int = 2,
    max_iterations: int = 6,
    coarse: bool = True,
    smooth_px: float = 1.0,
    min_snr: float = 5.0,
) -> CalibrationResult:
    data, bad_px, src = _frame_arrays(frame, bad)
    wl = wavelength_a
    if wl is None and isinstance(frame, Frame) and frame.metadata.photon_energy_ev:
        wl = HC_EV_A / frame.metadata.photon_energy_ev
    if wl is None:
        if not geometry.photon_energy_ev:
            raise CalibrationError(f"{src}: the wavelength (photon energy) is needed for calibration")
        wl = geometry.wavelength_a()
    if fit_tilt:
        min_rings = max(min_rings, 3)
    geometry.check_data_shape(data.shape, src)
    valid = ~bad_px
    rings = ring_table(calibrant, wl)
    start = geometry.copy()
    start.photon_energy_ev = HC_EV_A / wl
    cres: Optional[CoarseResult] = None
    g = start
    if coarse:
        cres = coarse_search(data, valid, start, rings, search_px=search_px, distance_tolerance=distance_tolerance,
                             min_rings=min_rings, source=src)
        g = cres.geometry
    conv = to_pyfai(g, data.shape, wl)
    params = conv.params
    coarse_bc = g.beam_center(0)
    coarse_d = g.mean_camera_length()
    prev_bc, prev_dist = np.array(coarse_bc), params[0]
    cps = ControlPoints(np.zeros((0, 3)))
    dtth = np.zeros(0)
    gr = None
    it = 0
    seen = _rings_seen(data, bad_px, conv, calibrant, min_snr)
    if len(seen) < min_rings:
        raise CalibrationError(
            f"{src}: too few calibrant rings to fit: {len(seen)} {calibrant_name(calibrant)} ring(s) stand out of "
            f"the radial profile (signal/noise >= {min_snr:g}), need at least {min_rings}"
        )
    for it in range(1, max_iterations + 1):
        conv.integrator.set_param(list(params))
        cps = extract_control_points(data, bad_px, conv, calibrant, wl, smooth_px=smooth_px, max_rings=max(seen) + 1)
        cps = ControlPoints(cps.points[np.isin(cps.points[:, 2].astype(int), seen)])
        if len(cps.rings) < min_rings or len(cps) < 3 * min_rings:
            raise CalibrationError(
                f"{src}: too few calibrant rings to fit: control points found on {len(cps.rings)} ring(s) "
                f"({len(cps)} points), need at least {min_rings} rings"
            )
        params, cps, dtth, gr = _refine_once(conv, cps, calibrant, wl, fit_tilt, params, min_rings)
        if not (np.isfinite(params).all() and params[0] > 0):
            raise CalibrationError(f"{src}: the geometry refinement failed (distance {params[0]!r})")
        bc = np.array(conv.geometry(params).beam_center(0))
        log.debug("iteration %d: beam centre %s, distance %.6f m, %d points", it, bc, params[0], len(cps))
        # converged when a new extraction moves the beam by less than 0.05 px (the points' own
        # jitter between extractions is ~0.02 px) and the distance by less than 0.02 %
        if it >= 2 and np.all(np.abs(bc - prev_bc) < 0.05) and abs(params[0] / prev_dist - 1) < 2e-4:
            break
        prev_bc, prev_dist = bc, params[0]
    refined = conv.geometry(params)
    refined.photon_energy_ev = HC_EV_A / wl
    conv.integrator.set_param(list(params))
    d_all = ring_table(calibrant, wl)
    d_of = dict(zip(d_all.index.tolist(), d_all.d_a.tolist()))
    used = [int(r) for r in cps.rings]
    bc = refined.beam_center(0)
    p0 = refined.panels[0]
    distance = float(p0.lab_xyz(bc[0], bc[1], refined.clen)[2])
    return CalibrationResult(
        geometry=refined,
        start_geometry=geometry,
        calibrant=calibrant_name(calibrant),
        wavelength_a=float(wl),
        beam_center=tuple(float(v) for v in bc),
        distance_m=distance,
        tilts_deg=tuple(float(np.rad2deg(v)) + 0.0 for v in params[3:]),  # + 0.0: no "-0.0"
        tilt_fitted=fit_tilt,
        residual_px=_residual_px(gr, cps, params, dtth),
        residual_2theta_deg=float(np.rad2deg(np.sqrt(np.mean(dtth**2)))) if len(dtth) else float("nan"),
        rings_used=used,
        ring_d_spacings_a=[float(d_of.get(i, np.nan)) for i in used],
        n_control_points=len(cps),
        control_points=cps,
        pyfai=conv,
        coarse_beam_center=tuple(float(v) for v in coarse_bc),
        coarse_distance_m=float(coarse_d),
        iterations=it,
    )
