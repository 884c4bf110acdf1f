"""Residuals of a geometry fit per calibrant ring and per detector panel.

The residual of a control point is its radial distance (pixels) from the fitted ring: the
2-theta of the point at the fitted geometry minus the ring's 2-theta, over the local 2-theta
change per pixel; positive means the point lies outside the fitted ring.

Per panel, the residuals are also explained as a shift of the panel in its plane: a panel that
really sits ``s`` (lab x, y pixels) away from where the geometry puts it shows residuals
``-s . n`` (``n``: the radial direction at each point) -- a least-squares fit of ``a n_x + b n_y
+ c`` gives ``-(a, b)``; with three or more panels ``shift_px`` is that minus the median over
the panels (the rigid-body fit spreads one panel's error over all of them).  A panel whose
shift exceeds 0.3 px and 4 of its standard errors is flagged: it probably sits elsewhere than
the geometry says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.detector import Geometry


@dataclass
class RingResidual:
    ring: int  # calibrant ring index (0 = largest d)
    d_a: float
    n_points: int
    rms_px: float
    mean_px: float
    coverage_deg: float  # azimuth (10-degree sectors) around the direct beam with points


@dataclass
class PanelResidual:
    panel: str
    n_points: int
    rms_px: float
    mean_px: float
    shift_px: tuple  # (x, y) lab pixels the residuals say the panel is away from its place
    shift_sigma_px: float
    flagged: bool  # the shift stands out: the panel may be misplaced


def _stats(v: np.ndarray) -> tuple:
    return float(np.sqrt(np.mean(v**2))), float(np.mean(v))


def ring_residuals(rings: np.ndarray, resid_px: np.ndarray, phi_deg: np.ndarray, d_of: dict) -> list:
    """One :class:`RingResidual` per ring; ``rings``: ring index per point, ``phi_deg``: azimuth."""
    out = []
    for k in np.unique(rings):
        m = rings == k
        rms, mean = _stats(resid_px[m])
        ph = phi_deg[m]
        ph = ph[np.isfinite(ph)]
        cov = len(np.unique(np.floor((ph + 180.0) / 10.0).astype(int))) * 10.0
        out.append(RingResidual(int(k), float(d_of.get(int(k), np.nan)), int(m.sum()), rms, mean, float(cov)))
    return out


def panel_residuals(geometry: Geometry, fs: np.ndarray, ss: np.ndarray, resid_px: np.ndarray,
                    phi_deg: np.ndarray) -> list:
    """One :class:`PanelResidual` per panel holding control points (``phi_deg``: azimuth of each
    point around the direct beam)."""
    idx = geometry.panel_at(fs, ss)
    phi = np.deg2rad(phi_deg)
    out = []
    for i, p in enumerate(geometry.panels):
        m = (idx == i) & np.isfinite(phi)
        if not m.any():
            continue
        rms, mean = _stats(resid_px[m])
        n = int(m.sum())
        shift, sigma = (np.nan, np.nan), np.inf
        if n >= 6:
            A = np.stack([np.cos(phi[m]), np.sin(phi[m]), np.ones(n)], axis=1)
            coef, *_ = np.linalg.lstsq(A, resid_px[m], rcond=None)
            s2 = float(np.sum((resid_px[m] - A @ coef) ** 2) / max(n - 3, 1))
            cov = s2 * np.linalg.pinv(A.T @ A)
            shift = (float(-coef[0]), float(-coef[1]))
            sigma = float(np.sqrt(max(np.linalg.eigvalsh(cov[:2, :2]).max(), 0.0)))
        out.append(PanelResidual(p.name, n, rms, mean, shift, sigma, False))
    shifts = np.array([q.shift_px for q in out], float).reshape(-1, 2)
    ok = np.isfinite(shifts[:, 0])
    if ok.sum() >= 3:  # relative to the typical panel: the rigid fit spreads one panel's error over all
        shifts = shifts - np.median(shifts[ok], axis=0)
    for q, s in zip(out, shifts):
        q.shift_px = (float(s[0]), float(s[1]))
        size = float(np.hypot(*s)) if np.isfinite(s[0]) else 0.0
        q.flagged = bool(len(geometry.panels) > 1 and size > 0.3 and size > 4.0 * q.shift_sigma_px)
    return out
