"""What the calibration dock shows of a fit (Qt-free): the before/after table, residuals per ring
and per panel, and sentences on the fit's quality and the tilt.

* :func:`comparison_rows` -- quantity | start | refined | 1-sigma | change: the direct-beam
  centre (Fit2D's centerX/Y - 0.5, pixel indices), the distance to it, the tilt and its direction
  (pyFAI's Fit2D-style tilt / tiltPlanRotation), the PONI, residual, rings and points;
* :func:`ring_rows`, :func:`panel_rows` -- :mod:`peaknet_gui.calib.residuals` as text;
* :func:`tilt_note`, :func:`fit_quality_warning` -- the status line's sentences.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional

from ..errors import GeometryError
from ..geometry.detector import Geometry

if TYPE_CHECKING:  # pragma: no cover
    from ..calib.refine import CalibrationResult


def _distance_along_beam(g: Geometry) -> float:
    fs, ss = g.beam_center(0)
    return float(g.panels[0].lab_xyz(fs, ss, g.clen)[2])


def _start_tilt(g: Geometry, shape: tuple) -> tuple:
    """(tilt deg, tilt direction deg) of the start geometry (NaN when pyFAI cannot take it)."""
    from ..calib.geometry_convert import to_pyfai
    from ..calib.uncertainty import tilt_of

    try:
        return tilt_of(*to_pyfai(g, shape).params[3:6])
    except (GeometryError, ValueError):
        return (float("nan"),) * 2


def fit_quality_warning(result: CalibrationResult) -> Optional[str]:
    """A sentence when the fit looks doubtful (few rings or a large residual), else None."""
    why = []
    if len(result.rings_used) < 3:
        why.append(f"only {len(result.rings_used)} rings used")
    if result.residual_px > 3.0:
        why.append(f"residual {result.residual_px:.2f} px")
    if not why:
        return None
    return ("Doubtful fit (" + ", ".join(why) + "): check the energy and the rough beam centre (or widen the "
            "search), and that the refined rings lie on the image's rings.")


def tilt_note(result: CalibrationResult) -> tuple:
    """(sentence on the tilt for the status line, whether it is a warning)."""
    d = result.tilt_decision
    if result.tilt_status == "fitted":
        return f"Tilt {result.tilt_deg:.3f}\u00b0 refined (the rings determine it).", False
    if result.tilt_status == "undetermined":
        why = d.reason.split(": ", 1)[-1] if d is not None else "the fit with tilt failed"
        free = f"; a free fit gave {d.tilt_deg:.3f} \u00b1 {d.sigma_tilt_deg:.3f}\u00b0" if d is not None else ""
        return f"Tilt undetermined, kept at {result.tilt_deg:.2f}\u00b0 ({why}{free}).", True
    if result.tilt_status.startswith("fitted"):
        why = d.reason.split(": ", 1)[-1] if d is not None else ""
        return f"Tilt refined as asked but poorly determined ({why}).", True
    return f"Tilt not refined (kept at {result.tilt_deg:.2f}\u00b0).", False


def _pm(sigma: float, fmt: str = ".3f") -> str:
    return f"{sigma:{fmt}}" if sigma is not None and math.isfinite(sigma) else ""


def comparison_rows(result: CalibrationResult) -> list:
    """Rows (quantity, start, refined, 1-sigma, change) of the before/after table, as text.

    The beam centre is the direct-beam centre (Fit2D's centerX/Y - 0.5, pixel indices); the
    tilt is pyFAI's Fit2D-style tilt angle and the direction of its axis (tiltPlanRotation)."""
    start = result.start_geometry
    shape = result.pyfai.shape
    u = result.uncertainty
    sb = u.sigma_beam_px if u is not None else (float("nan"),) * 2
    sd = u.sigma_distance_m * 1e3 if u is not None else float("nan")
    sfs, sss = start.beam_center(0)
    rfs, rss = result.beam_center
    d0 = _distance_along_beam(start) * 1e3
    rd = result.distance_m * 1e3
    rows = [
        ("Beam fs (px)", f"{sfs:.2f}", f"{rfs:.2f}", _pm(sb[0]), f"{rfs - sfs:+.2f}"),
        ("Beam ss (px)", f"{sss:.2f}", f"{rss:.2f}", _pm(sb[1]), f"{rss - sss:+.2f}"),
        ("Distance (mm)", f"{d0:.2f}", f"{rd:.2f}", _pm(sd), f"{rd - d0:+.2f}"),
    ]
    st, sdir = _start_tilt(start, shape)
    fitted = result.tilt_status.startswith("fitted")
    if fitted:
        stilt = u.sigma_tilt_deg if u is not None else float("nan")
        sdirection = u.sigma_tilt_plane_rotation_deg if u is not None else float("nan")
        refined = f"{result.tilt_deg:.3f}" + ("?" if result.tilt_status != "fitted" else "")
        rows.append(("Tilt (\u00b0)", f"{st:.3f}", refined, _pm(stilt), f"{result.tilt_deg - st:+.3f}"))
        rows.append(("Tilt direction (\u00b0)", f"{sdir:.1f}" if st > 0 else "\u2013",
                     f"{result.tilt_plane_rotation_deg:.1f}", _pm(sdirection, ".1f"), ""))
    else:
        label = "undetermined" if result.tilt_status == "undetermined" else "not refined"
        rows.append(("Tilt (\u00b0)", f"{st:.3f}", label, "", ""))
    p = result.poni
    px = result.poni_px
    sp = u.sigma_params if u is not None else {}
    if math.isfinite(px[0]):  # one flat panel: pyFAI's PONI in pixel indices
        det = result.pyfai.integrator.detector
        rows.append(("PONI fs (px)", "\u2013", f"{px[0]:.2f}", _pm(sp.get("poni2", math.nan) / det.pixel2), ""))
        rows.append(("PONI ss (px)", "\u2013", f"{px[1]:.2f}", _pm(sp.get("poni1", math.nan) / det.pixel1), ""))
    else:  # a multi-panel detector's PONI is relative to its pixel-corner description
        rows.append(("PONI 1 (mm)", "\u2013", f"{p[1] * 1e3:.3f}", _pm(sp.get("poni1", math.nan) * 1e3, ".4f"), ""))
        rows.append(("PONI 2 (mm)", "\u2013", f"{p[2] * 1e3:.3f}", _pm(sp.get("poni2", math.nan) * 1e3, ".4f"), ""))
    rows += [
        ("Residual (px RMS)", "\u2013", f"{result.residual_px:.3f}", "", ""),
        ("Rings / points", "\u2013", f"{len(result.rings_used)} / {result.n_control_points}", "", ""),
    ]
    return rows


def ring_rows(result: CalibrationResult) -> list:
    """Per ring: (ring, d A, points, RMS px, mean px, azimuth deg) as text."""
    return [(f"#{r.ring + 1}", f"{r.d_a:.3f}", f"{r.n_points}", f"{r.rms_px:.3f}", f"{r.mean_px:+.3f}",
             f"{r.coverage_deg:.0f}") for r in result.ring_residuals]


def panel_rows(result: CalibrationResult) -> list:
    """Per panel (multi-panel detectors): (panel, points, RMS px, mean px, shift px, flagged)."""
    if len(result.geometry.panels) < 2:
        return []
    out = []
    for q in result.panel_residuals:
        shift = (f"{q.shift_px[0]:+.2f}, {q.shift_px[1]:+.2f}" if math.isfinite(q.shift_px[0]) else "\u2013")
        out.append((q.panel, f"{q.n_points}", f"{q.rms_px:.3f}", f"{q.mean_px:+.3f}", shift,
                    "off?" if q.flagged else ""))
    return out


def rings_used_text(result: CalibrationResult) -> str:
    return ", ".join(f"#{i + 1} ({d:.3f} \u00c5)" for i, d in zip(result.rings_used, result.ring_d_spacings_a))


__all__ = ["comparison_rows", "ring_rows", "panel_rows", "tilt_note", "fit_quality_warning", "rings_used_text"]
