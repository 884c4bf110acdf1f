"""pyFAI's 2-theta model of control points, fast enough for repeated least squares.

:class:`TthModel` caches the detector positions of the control points (pyFAI's
``detector.calc_cartesian_positions``: the half-pixel offset, regular and pixel-corner
detectors alike) and evaluates 2-theta for any PONI parameters ``(dist, poni1, poni2, rot1,
rot2, rot3)`` with pyFAI's formula in numpy (:func:`rotation_matrix` is pyFAI's
``Geometry.rotation_matrix``; the same numbers as ``pyFAI.geometry.Geometry.tth`` and its
compiled ``calc_tth`` to rounding) without building a pyFAI object (and running its garbage
collection) per evaluation.  numpy rather than ``calc_tth``: that one is OpenMP-parallel, and
on a loaded machine its threads wait for each other (a 1500-point call took 5-12 ms instead of
0.05 ms on a busy 2-core machine; numpy takes ~0.2 ms).  :func:`least_squares_fit` refines a subset of the parameters;
:meth:`TthModel.jacobian` gives the derivatives the covariance (:mod:`.uncertainty`) needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

#: PONI parameter names in pyFAI's order
PARAM_NAMES = ("dist", "poni1", "poni2", "rot1", "rot2", "rot3")
#: typical scale of each parameter (m, m, m, rad, rad, rad): finite-difference steps, x_scale
PARAM_SCALE = np.array([1e-3, 1e-4, 1e-4, 1e-3, 1e-3, 1e-3])


def rotation_matrix(rot1: float, rot2: float, rot3: float) -> np.ndarray:
    """pyFAI's detector -> lab rotation (``pyFAI.geometry.Geometry.rotation_matrix``): rot1 and
    rot2 left-handed about axes 1 and 2, rot3 right-handed about the beam, applied 1, 2, 3."""
    c1, s1, c2, s2, c3, s3 = np.cos(rot1), np.sin(rot1), np.cos(rot2), np.sin(rot2), np.cos(rot3), np.sin(rot3)
    r1 = np.array([[1.0, 0.0, 0.0], [0.0, c1, s1], [0.0, -s1, c1]])
    r2 = np.array([[c2, 0.0, -s2], [0.0, 1.0, 0.0], [s2, 0.0, c2]])
    r3 = np.array([[c3, -s3, 0.0], [s3, c3, 0.0], [0.0, 0.0, 1.0]])
    return r3 @ r2 @ r1


class TthModel:
    """2-theta (radians) of points ``(d1, d2)`` (pyFAI pixel coordinates: ss, fs; pixel centre
    at the integer) on ``detector`` for PONI parameters."""

    def __init__(self, detector, d1: np.ndarray, d2: np.ndarray):
        self.detector = detector
        self.d1 = np.asarray(d1, np.float64)
        self.d2 = np.asarray(d2, np.float64)
        self._pos = {}

    def _positions(self, o1: float = 0.0, o2: float = 0.0) -> tuple:
        key = (o1, o2)
        if key not in self._pos:
            p1, p2, p3 = self.detector.calc_cartesian_positions(self.d1 + o1, self.d2 + o2)
            p3 = np.zeros_like(p1) if p3 is None else np.ascontiguousarray(p3, np.float64)
            self._pos[key] = (np.ascontiguousarray(p1, np.float64), np.ascontiguousarray(p2, np.float64), p3)
        return self._pos[key]

    def tth(self, params: Sequence[float], o1: float = 0.0, o2: float = 0.0) -> np.ndarray:
        dist, poni1, poni2, rot1, rot2, rot3 = (float(v) for v in params)
        p1, p2, p3 = self._positions(o1, o2)
        r = rotation_matrix(rot1, rot2, rot3)
        x1, x2, x3 = p1 - poni1, p2 - poni2, dist + p3
        t1 = r[0, 0] * x1 + r[0, 1] * x2 + r[0, 2] * x3
        t2 = r[1, 0] * x1 + r[1, 1] * x2 + r[1, 2] * x3
        t3 = r[2, 0] * x1 + r[2, 1] * x2 + r[2, 2] * x3
        return np.arctan2(np.hypot(t1, t2), t3)

    def gradient_px(self, params) -> np.ndarray:
        """|d(2 theta)/d(pixel)| at each point (radians per pixel, >= 1e-15)."""
        g1 = self.tth(params, 0.5, 0.0) - self.tth(params, -0.5, 0.0)
        g2 = self.tth(params, 0.0, 0.5) - self.tth(params, 0.0, -0.5)
        return np.maximum(np.hypot(g1, g2), 1e-15)

    def jacobian(self, params, free: Sequence[int]) -> np.ndarray:
        """d(2 theta_i)/d(param_j) for the ``free`` parameter indices (central differences)."""
        p0 = np.asarray(params, np.float64)
        cols = []
        for j in free:
            h = PARAM_SCALE[j] * 1e-3
            a, b = p0.copy(), p0.copy()
            a[j] += h
            b[j] -= h
            cols.append((self.tth(a) - self.tth(b)) / (2 * h))
        return np.stack(cols, axis=1) if cols else np.zeros((len(self.d1), 0))

    def subset(self, keep: np.ndarray) -> "TthModel":
        """The model of a subset of the points (cached positions kept)."""
        out = TthModel.__new__(TthModel)
        out.detector, out.d1, out.d2 = self.detector, self.d1[keep], self.d2[keep]
        out._pos = {k: tuple(a[keep] for a in v) for k, v in self._pos.items()}
        return out


@dataclass
class LsqFit:
    params: tuple  # all six PONI parameters after the fit
    free: tuple  # indices of the refined ones
    residuals: np.ndarray  # 2-theta (model - ring) per point, radians
    success: bool


def least_squares_fit(model: TthModel, target: np.ndarray, start: Sequence[float], free: Sequence[int],
                      weights: Optional[np.ndarray] = None) -> LsqFit:
    """Refine parameters ``free`` (indices into :data:`PARAM_NAMES`) so that the model's 2-theta
    matches ``target`` (each point's ring) in the (``weights``-weighted) least-squares sense
    (scipy, Levenberg-Marquardt when the points outnumber twice the parameters)."""
    from scipy.optimize import least_squares

    full = np.array(start, dtype=np.float64)
    free = tuple(int(i) for i in free)
    sw = np.ones(len(target)) if weights is None else np.sqrt(np.asarray(weights, np.float64))

    def resid(x):
        p = full.copy()
        p[list(free)] = x
        return (model.tth(p) - target) * sw

    def jac(x):
        p = full.copy()
        p[list(free)] = x
        return model.jacobian(p, free) * sw[:, None]

    method = "lm" if len(target) > 2 * len(free) else "trf"
    sol = least_squares(resid, full[list(free)], jac=jac, x_scale=PARAM_SCALE[list(free)], method=method,
                        xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=200)
    full[list(free)] = sol.x
    return LsqFit(tuple(float(v) for v in full), free, model.tth(full) - target, bool(sol.success))
