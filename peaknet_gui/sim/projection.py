"""Where diffracted rays meet the detector: ray-panel intersection through the project's
:class:`~peaknet_gui.geometry.detector.Geometry` (any number of panels, tilted or not), plus the
local Jacobian (pixels per radian of 2-theta and of azimuth) that shapes elongated spots.

A panel's pixel-centre positions are ``C + u F + v S`` (metres) with ``u = fs - min_fs + 0.5``,
``v = ss - min_ss + 0.5`` (see ``Panel.lab_xyz``); a ray from the sample ``t d`` meets the panel
plane at ``t = (C . n) / (d . n)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.detector import Geometry


@dataclass
class Projected:
    """Per ray: ``panel`` index (-1 = missed every panel), ``fs``/``ss`` pixel indices (NaN when
    missed), ``jac_r``/``jac_t`` (N, 2) = (d fs, d ss) per radian of 2-theta / of azimuthal
    angle on the sphere (both zero when missed)."""

    panel: np.ndarray
    fs: np.ndarray
    ss: np.ndarray
    jac_r: np.ndarray
    jac_t: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        return self.panel >= 0


def _panel_frame(geometry: Geometry, p):
    C = np.array([p.corner_x / p.res, p.corner_y / p.res, p.distance(geometry.clen)])
    F = np.asarray(p.fs, dtype=np.float64) / p.res
    S = np.asarray(p.ss, dtype=np.float64) / p.res
    G = np.stack([F, S], axis=1)  # 3x2
    return C, np.cross(F, S), np.linalg.pinv(G)


def directions_from_angles(twotheta, phi) -> np.ndarray:
    """Unit ray directions (N, 3) from 2-theta and azimuth (radians; beam along +z)."""
    twotheta = np.asarray(twotheta, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    st = np.sin(twotheta)
    return np.stack([st * np.cos(phi), st * np.sin(phi), np.cos(twotheta)], axis=-1)


def project_directions(geometry: Geometry, d: np.ndarray) -> Projected:
    """Intersect rays from the sample (unit vectors ``d``, (N, 3)) with the detector's panels."""
    geometry._check_clen()
    d = np.asarray(d, dtype=np.float64).reshape(-1, 3)
    n = len(d)
    panel = np.full(n, -1, dtype=np.int32)
    fs = np.full(n, np.nan)
    ss = np.full(n, np.nan)
    jac_r = np.zeros((n, 2))
    jac_t = np.zeros((n, 2))
    if n == 0:
        return Projected(panel, fs, ss, jac_r, jac_t)
    tth = np.arccos(np.clip(d[:, 2], -1.0, 1.0))
    phi = np.arctan2(d[:, 1], d[:, 0])
    e_r = np.stack([np.cos(tth) * np.cos(phi), np.cos(tth) * np.sin(phi), -np.sin(tth)], axis=1)
    e_t = np.stack([-np.sin(phi), np.cos(phi), np.zeros(n)], axis=1)
    for i, p in enumerate(geometry.panels):
        todo = np.flatnonzero(panel < 0)
        if len(todo) == 0:
            break
        C, nrm, pinv = _panel_frame(geometry, p)
        dd = d[todo]
        dn = dd @ nrm
        cn = C @ nrm
        with np.errstate(divide="ignore", invalid="ignore"):
            t = cn / dn
        ok = (np.abs(dn) > 1e-12) & (t > 0)
        P = t[:, None] * dd
        uv = (P - C) @ pinv.T
        ok &= (uv[:, 0] >= 0) & (uv[:, 0] < p.width) & (uv[:, 1] >= 0) & (uv[:, 1] < p.height)
        if not np.any(ok):
            continue
        sel = todo[ok]
        panel[sel] = i
        fs[sel] = uv[ok, 0] + p.min_fs - 0.5
        ss[sel] = uv[ok, 1] + p.min_ss - 0.5
        tt, dk, dnk = t[ok][:, None], dd[ok], dn[ok][:, None]
        for e, out in ((e_r[sel], jac_r), (e_t[sel], jac_t)):
            dP = tt * (e - dk * (e @ nrm)[:, None] / dnk)
            out[sel] = dP @ pinv.T
    return Projected(panel, fs, ss, jac_r, jac_t)
