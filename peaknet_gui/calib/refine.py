"""Refine beam centre, distance and detector tilt from one calibrant frame.

    result = calibrate(frame, rough_geometry, "AgBh", wavelength_a=1.0)
    result.beam_center, result.distance_m, result.tilt_deg, result.uncertainty, result.geometry

Procedure: a coarse search (:mod:`.search`: beam centre from ring concentricity, distance from
the ring radii -- the start may be tens of pixels and ~10-25 % off), then cycles of pyFAI
control-point extraction (:func:`.rings.extract_control_points`, on the rings that stand out of
the radial profile) and least squares on pyFAI's 2-theta model (:mod:`.model`; wavelength
fixed).  Rings whose points scatter like noise and points further than 4 robust sigmas from
their ring are dropped.  A cycle series ends when the direct-beam centre moves by less than
0.05 px and the distance by less than 0.02 %.

Tilt (``fit_tilt``): the first series refines distance and PONI with the start's tilt (zero for
a flat start); then, unless ``fit_tilt=False``, a second series refines pyFAI's rot1 and rot2 too
(rot3 with ``fit_rot3``), starting from there.  With ``fit_tilt="auto"`` (the default) the tilt
is kept only when the data determine it (:func:`.uncertainty.decide_tilt`: enough rings over
enough azimuth, not degenerate with the centre, a small uncertainty); otherwise the flat fit
stands, with a warning saying why and what the free fit found.  ``fit_tilt=True`` keeps the
tilt fit regardless (with the warning).  Multi-panel detectors move as one rigid body
(:mod:`.geometry_convert`); per-ring and per-panel residuals (:mod:`.residuals`) and formal
1-sigma errors (:mod:`.uncertainty`) come with the result (:class:`.result.CalibrationResult`).
Errors:
:class:`~peaknet_gui.errors.CalibrationError` for a frame with too few rings, rings that fit a
different energy, or a failed fit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from ..errors import CalibrationError
from ..frame import Frame
from ..geometry.detector import HC_EV_A, Geometry
from ._quiet import quiet_pyfai
from .calibrants import CalibrantLike, calibrant_name, load_calibrant, ring_table
from .geometry_convert import PyFAIGeometry, to_pyfai
from .integrate import FrameIntegrator
from .model import TthModel, least_squares_fit
from .residuals import panel_residuals, ring_residuals
from .result import CalibrationResult
from .rings import ControlPoints, extract_control_points, pick_rings
from .search import CoarseResult, coarse_search
from .uncertainty import decide_tilt, derived, fit_uncertainty, tilt_of

log = logging.getLogger(__name__)

FLAT = (0, 1, 2)  # dist, poni1, poni2
TILT = (0, 1, 2, 3, 4)  # + rot1, rot2


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


def _noisy_rings(model: TthModel, data, params, dtth, tth_ring, min_rings: int) -> np.ndarray:
    """Bool per point: its ring is too noisy to use.

    Points of a ring too faint for single pixels scatter uniformly over pyFAI's search band
    (+/- a quarter of the ring spacing: robust sigma ~ 0.18 spacing); a real ring's points sit
    within a fraction of a pixel.  Rings whose robust radial scatter exceeds 0.05 spacing (and
    0.3 px) go.
    """
    ring = data[:, 2].astype(int)
    grad = model.gradient_px(params)
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


@dataclass
class _Fit:
    params: tuple
    cps: ControlPoints
    dtth: np.ndarray  # 2-theta residual per point (radians)
    model: TthModel
    free: tuple
    iterations: int = 0
    weights: Optional[np.ndarray] = None
    extracted: Optional[ControlPoints] = None  # the points as extracted (before the cuts)


def _refine_once(conv: PyFAIGeometry, cps: ControlPoints, tth_ring: np.ndarray, free: tuple, start_params,
                 min_rings: int) -> _Fit:
    """Least squares on ``cps``: noisy rings dropped, then points further than 4 robust sigmas
    from their ring dropped, refining again after each cut."""
    data = cps.points
    model = TthModel(conv.integrator.detector, data[:, 0], data[:, 1])
    target = tth_ring[data[:, 2].astype(int)]
    fit = least_squares_fit(model, target, start_params, free)
    noisy = _noisy_rings(model, data, fit.params, fit.residuals, tth_ring, min_rings)
    if noisy.any():
        data, target, model = data[~noisy], target[~noisy], model.subset(~noisy)
        fit = least_squares_fit(model, target, fit.params, free)
    for _ in range(3):
        d = fit.residuals
        med = np.median(d)
        sig = 1.4826 * np.median(np.abs(d - med))
        keep = np.abs(d - med) <= max(4.0 * sig, 1e-12)
        if keep.all() or keep.sum() < 6:
            break
        data, target, model = data[keep], target[keep], model.subset(keep)
        fit = least_squares_fit(model, target, fit.params, free)
    weights = _ring_weights(data[:, 2].astype(int), fit.residuals)
    fit = least_squares_fit(model, target, fit.params, free, weights)
    return _Fit(fit.params, ControlPoints(data), fit.residuals, model, tuple(free), weights=weights)


def _ring_weights(ring: np.ndarray, dtth: np.ndarray) -> np.ndarray:
    """Weight of each point: 1 / (its ring's robust 2-theta scatter)^2, the scatter floored at a
    quarter of the rings' median so that no ring of a few lucky points dominates.  Faint rings
    give noisier points than strong ones; equal weights would let them blur the fit."""
    ids = np.unique(ring)
    sig = {}
    for k in ids:
        r = dtth[ring == k]
        sig[k] = 1.4826 * np.median(np.abs(r - np.median(r))) if len(r) >= 3 else np.nan
    vals = np.array([v for v in sig.values() if np.isfinite(v) and v > 0])
    if len(vals) == 0:
        return np.ones(len(ring))
    floor = 0.25 * float(np.median(vals))
    s = np.array([sig[k] if np.isfinite(sig[k]) and sig[k] > 0 else np.median(vals) for k in ring])
    w = 1.0 / np.maximum(s, floor) ** 2
    return w / np.mean(w)


def _rings_seen(data, bad, conv: PyFAIGeometry, calibrant, min_snr: float) -> list:
    """Calibrant ring indices with a peak in the radial profile at the current geometry."""
    integ = FrameIntegrator.from_conversion(conv)
    npt = int(2 * np.hypot(*data.shape))
    prof = integ.profile(data, bad=bad, unit="2th_rad", npt=npt, solid_angle=False)
    return sorted({r.index for r in pick_rings(prof, calibrant, min_snr=min_snr)})


def _cycles(data, bad_px, conv, calibrant, wl, seen, params, free, min_rings, max_iterations, smooth_px, src,
            first_points: Optional[ControlPoints] = None) -> _Fit:
    """Extraction + refinement cycles until the direct beam and the distance settle;
    ``first_points``: control points for the first cycle (those the previous series ended on:
    extracted within 0.05 px of ``params``), saving one extraction."""
    tth_ring = np.asarray(load_calibrant(calibrant, wl).get_2th(), float)
    prev = None
    fit = None
    for it in range(1, max_iterations + 1):
        conv.integrator.set_param(list(params))
        if it == 1 and first_points is not None:
            cps = first_points
        else:
            cps = extract_control_points(data, bad_px, conv, calibrant, wl, smooth_px=smooth_px,
                                         max_rings=max(seen) + 1)
            cps = ControlPoints(cps.points[np.isin(cps.points[:, 2].astype(int), seen)])
        if len(cps.rings) < min_rings or len(cps) < 3 * min_rings:
            raise CalibrationError(
                f"{src}: too few calibrant rings to fit: control points found on {len(cps.rings)} ring(s) "
                f"({len(cps)} points), need at least {min_rings} rings"
            )
        fit = _refine_once(conv, cps, tth_ring, free, params, min_rings)
        fit.iterations = it
        fit.extracted = cps
        params = fit.params
        if not (np.isfinite(params).all() and params[0] > 0):
            raise CalibrationError(f"{src}: the geometry refinement failed (distance {params[0]!r})")
        now = derived(conv, params)[:3]
        log.debug("iteration %d (free %s): beam centre %s, distance %.6f m, %d points", it, free, now[:2], now[2],
                  len(fit.cps))
        # converged when a new extraction moves the beam by less than 0.05 px (the points' own
        # jitter between extractions is ~0.02 px) and the distance by less than 0.02 %
        if prev is not None and np.all(np.abs(now[:2] - prev[:2]) < 0.05) and abs(now[2] / prev[2] - 1) < 2e-4:
            break
        prev = now
    return fit


def calibrate(frame, geometry: Geometry, calibrant: CalibrantLike = "AgBh", wavelength_a: Optional[float] = None,
              **options) -> CalibrationResult:
    """Refine ``geometry`` (a rough start) on one calibrant ``frame`` (Frame or 2-D array).

    ``wavelength_a`` defaults to the frame's metadata, then the geometry's photon energy.
    Options (keywords): ``bad`` (extra bool mask), ``fit_tilt`` ("auto": refine rot1/rot2 and
    keep them when the data determine them; True: keep them regardless; False: keep the start's
    tilt), ``fit_rot3`` (False), ``tilt_sigma_deg`` (0.02: the largest tilt uncertainty that
    counts as determined whatever the tilt; up to 0.1 for a tilt of 5 sigma or more, see
    :func:`.uncertainty.decide_tilt`), ``search_px`` (64: how far the coarse search looks for the beam
    centre), ``distance_tolerance`` (0.25: relative distance range allowed around the start; a
    better match beyond it means a wrong energy or distance and raises CalibrationError),
    ``min_rings`` (2; 3 with ``fit_tilt=True``), ``max_iterations`` (6 per series), ``coarse``
    (True; False skips the search when the start is good to ~1 px and ~1 %), ``smooth_px``
    (1.0), ``min_snr`` (5: a ring must stand out of the radial profile this much).
    """
    with quiet_pyfai():
        return _calibrate(frame, geometry, calibrant, wavelength_a, **options)


def _tilt_mode(fit_tilt) -> str:
    if isinstance(fit_tilt, str):
        if fit_tilt.lower() not in ("auto", "fit", "fixed"):
            raise CalibrationError(f"fit_tilt must be 'auto', 'fit', 'fixed', True or False, not {fit_tilt!r}")
        return fit_tilt.lower()
    return "fit" if fit_tilt else "fixed"


def _calibrate(
    frame,
    geometry: Geometry,
    calibrant: CalibrantLike = "AgBh",
    wavelength_a: Optional[float] = None,
    *,
    bad: Optional[np.ndarray] = None,
    fit_tilt: Union[bool, str] = "auto",
    fit_rot3: bool = False,
    tilt_sigma_deg: float = 0.02,
    search_px: float = 64.0,
    distance_tolerance: float = 0.25,
    min_rings: int = 2,
    max_iterations: int = 6,
    coarse: bool = True,
    smooth_px: float = 1.0,
    min_snr: float = 5.0,
) -> CalibrationResult:
    data, bad_px, src = _frame_arrays(frame, bad)
    mode = _tilt_mode(fit_tilt)
    wl = wavelength_a
    if wl is None and isinstance(frame, Frame) and frame.metadata.photon_energy_ev:
        wl = HC_EV_A / frame.metadata.photon_energy_ev
    if wl is None:
        if not geometry.photon_energy_ev:
            raise CalibrationError(f"{src}: the wavelength (photon energy) is needed for calibration")
        wl = geometry.wavelength_a()
    if mode == "fit":
        min_rings = max(min_rings, 3)
    geometry.check_data_shape(data.shape, src)
    rings = ring_table(calibrant, wl)
    start = geometry.copy()
    start.photon_energy_ev = HC_EV_A / wl
    cres: Optional[CoarseResult] = None
    g = start
    if coarse:
        cres = coarse_search(data, ~bad_px, start, rings, search_px=search_px, distance_tolerance=distance_tolerance,
                             min_rings=min_rings, source=src)
        g = cres.geometry
    conv = to_pyfai(g, data.shape, wl)
    coarse_bc = g.beam_center(0)
    coarse_d = g.mean_camera_length()
    seen = _rings_seen(data, bad_px, conv, calibrant, min_snr)
    if len(seen) < min_rings:
        raise CalibrationError(
            f"{src}: too few calibrant rings to fit: {len(seen)} {calibrant_name(calibrant)} ring(s) stand out of "
            f"the radial profile (signal/noise >= {min_snr:g}), need at least {min_rings}"
        )
    run = dict(max_iterations=max_iterations, smooth_px=smooth_px, src=src)
    final = _cycles(data, bad_px, conv, calibrant, wl, seen, conv.params, FLAT, min_rings, **run)
    unc = None
    status, decision, warnings = "fixed", None, []
    if mode != "fixed":
        free = TILT + ((5,) if fit_rot3 else ())
        tilted = None
        try:
            tilted = _cycles(data, bad_px, conv, calibrant, wl, seen, final.params, free, max(min_rings, 2),
                             first_points=final.extracted, **run)
        except CalibrationError as e:
            if mode == "fit":
                raise
            warnings.append(f"tilt not determined: the fit with tilt failed ({e}); kept fixed")
            status = "undetermined"
        if tilted is not None:
            unc_t = fit_uncertainty(tilted.model, tilted.dtth, tilted.params, tilted.free, conv, tilted.weights)
            decision = decide_tilt(unc_t, conv, tilted.params, tilted.cps.fs, tilted.cps.ss, len(tilted.cps.rings),
                                   max_sigma_deg=tilt_sigma_deg)
            if decision.determined:
                final, unc, status = tilted, unc_t, "fitted"
            elif mode == "fit":
                final, unc, status = tilted, unc_t, "fitted, poorly determined"
                warnings.append(decision.reason + "; refined anyway (fit_tilt=True)")
            else:
                status = "undetermined"
                warnings.append(decision.reason + "; kept fixed at the start's tilt")
    if unc is None:
        unc = fit_uncertainty(final.model, final.dtth, final.params, final.free, conv, final.weights)
    return _result(data, conv, final, unc, geometry, calibrant, wl, status, decision, warnings, coarse_bc, coarse_d)


def _result(data, conv, fit: _Fit, unc, start_geometry, calibrant, wl, status, decision, warnings, coarse_bc,
            coarse_d) -> CalibrationResult:
    params, cps, dtth = fit.params, fit.cps, fit.dtth
    refined = conv.geometry(params)
    refined.photon_energy_ev = HC_EV_A / wl
    conv.integrator.set_param(list(params))
    d_all = ring_table(calibrant, wl)
    d_of = dict(zip(d_all.index.tolist(), d_all.d_a.tolist()))
    used = [int(r) for r in cps.rings]
    resid_px = dtth / fit.model.gradient_px(params)
    x, y, _ = refined.lab_xyz(cps.fs, cps.ss)
    phi = np.rad2deg(np.arctan2(y, x))
    beam = derived(conv, params)
    tilt, tpr = tilt_of(*params[3:6])
    if unc.condition > 1e8:
        warnings.append(f"the fit is degenerate (condition number {unc.condition:.2g}): uncertainties are unreliable")
    return CalibrationResult(
        geometry=refined,
        start_geometry=start_geometry,
        calibrant=calibrant_name(calibrant),
        wavelength_a=float(wl),
        beam_center=(float(beam[0]), float(beam[1])),
        distance_m=float(beam[2]),
        tilts_deg=tuple(float(np.rad2deg(v)) + 0.0 for v in params[3:]),  # + 0.0: no "-0.0"
        tilt_fitted=status.startswith("fitted"),
        residual_px=float(np.sqrt(np.mean(resid_px**2))) if len(resid_px) else float("nan"),
        residual_2theta_deg=float(np.rad2deg(np.sqrt(np.mean(dtth**2)))) if len(dtth) else float("nan"),
        rings_used=used,
        ring_d_spacings_a=[float(d_of.get(i, np.nan)) for i in used],
        n_control_points=len(cps),
        control_points=cps,
        pyfai=conv,
        coarse_beam_center=tuple(float(v) for v in coarse_bc),
        coarse_distance_m=float(coarse_d),
        iterations=fit.iterations,
        poni=tuple(float(v) for v in params),
        tilt_deg=tilt + 0.0,
        tilt_plane_rotation_deg=tpr + 0.0,
        tilt_status=status,
        tilt_decision=decision,
        uncertainty=unc,
        ring_residuals=ring_residuals(cps.points[:, 2].astype(int), resid_px, phi, d_of),
        panel_residuals=panel_residuals(refined, cps.fs, cps.ss, resid_px, phi),
        warnings=warnings,
    )


__all__ = ["CalibrationResult", "calibrate"]
