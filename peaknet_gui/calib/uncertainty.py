"""Uncertainties of a geometry fit, and whether the data determine the detector tilt.

* :func:`fit_uncertainty` -- the least-squares covariance of the refined PONI parameters,
  ``s^2 (J^T J)^-1`` with ``J`` the 2-theta Jacobian at the solution and ``s^2`` the residual
  variance per degree of freedom, propagated (numerical Jacobian) to the quantities users
  compare: the direct-beam centre (fs, ss pixel indices), the distance from the sample to it,
  the tilt and its direction.  These are *formal* 1-sigma errors: the control points are
  treated as independent, which neighbouring points along a ring are not quite.
* :func:`decide_tilt` -- the tilt counts as determined when the control points lie on enough
  rings (3) over enough azimuth (180 degrees around the direct beam: on a shorter arc a tilt
  looks much like a shifted centre), the tilt is not nearly degenerate with centre and distance
  (its sigma inflated at most 200 times by its correlations with them: beyond that, systematic
  errors of a fraction of the residual -- ring-shape bias, sensor parallax -- would move it
  freely), and the fit pins it down: 1-sigma of the tilt vector <= 0.02 degrees, or <= 0.1
  degrees for a tilt that stands out (>= 5 sigma: keeping such a tilt at zero would shift the
  centre far more than its uncertainty).  Otherwise it is kept fixed.  Why 0.02: across noise
  realisations the free tilt of an untilted detector scatters like its formal sigma per axis
  (AgBh on a Pilatus 2M at 200 mm: sigma 0.024 deg, tilts found 0.00-0.08 deg over seven
  frames), so a limit of 0.05 would let tilts of 0.1 deg and more through on a flat detector.

Tilt and tilt direction are pyFAI's ``getFit2D`` ``tilt`` / ``tiltPlanRotation`` (degrees):
the angle between the detector normal and the beam, and the direction of the tilt axis in the
detector plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .model import PARAM_NAMES, PARAM_SCALE, TthModel

#: the quantities :func:`derived` returns, in order
DERIVED_NAMES = ("beam_fs", "beam_ss", "distance_m", "tilt_deg", "tilt_plane_rotation_deg")


@dataclass
class FitUncertainty:
    """Formal 1-sigma errors of a fit (see the module doc)."""

    free: tuple  # names of the refined PONI parameters
    covariance: np.ndarray  # of the refined parameters (m, rad)
    correlation: np.ndarray
    condition: float  # condition number of the correlation matrix (large: parameters degenerate)
    dof: int
    rms_2theta_rad: float
    sigma_params: dict = field(default_factory=dict)  # name -> sigma (m or rad), refined ones only
    sigma_beam_px: tuple = (np.nan, np.nan)  # direct-beam centre (fs, ss)
    sigma_distance_m: float = np.nan
    sigma_tilt_deg: float = np.nan  # of the tilt vector (largest axis of the rot1/rot2 error ellipse)
    sigma_tilt_plane_rotation_deg: float = np.nan
    tilt_inflation: float = np.nan  # how many times larger the tilt's sigma is for its correlations

    def sigma_rot_deg(self) -> tuple:
        return tuple(float(np.rad2deg(self.sigma_params.get(n, np.nan))) for n in ("rot1", "rot2", "rot3"))

    def as_dict(self) -> dict:
        return {
            "refined": list(self.free), "dof": self.dof, "condition": self.condition,
            "sigma": {n: float(v) for n, v in self.sigma_params.items()},
            "sigma_beam_center_px": list(self.sigma_beam_px), "sigma_distance_mm": self.sigma_distance_m * 1e3,
            "sigma_tilt_deg": self.sigma_tilt_deg, "sigma_tilt_plane_rotation_deg": self.sigma_tilt_plane_rotation_deg,
        }


def tilt_of(rot1: float, rot2: float, rot3: float) -> tuple:
    """(tilt, tiltPlanRotation) in degrees of pyFAI rotations, as pyFAI's ``getFit2D`` gives them."""
    from pyFAI.geometry import Geometry as PGeometry

    g = PGeometry(dist=1.0, poni1=0.0, poni2=0.0, rot1=rot1, rot2=rot2, rot3=rot3, pixel1=1e-4, pixel2=1e-4)
    f = g.getFit2D()
    return float(f["tilt"]), float(f["tiltPlanRotation"])


def derived(conv, params: Sequence[float]) -> np.ndarray:
    """(beam fs, beam ss, distance m, tilt deg, tilt plane rotation deg) of PONI ``params`` on the
    geometry ``conv`` (a :class:`~.geometry_convert.PyFAIGeometry`): the direct-beam centre on
    panel 0's plane in pixel indices (Fit2D's centerX/Y - 0.5 for one flat panel) and the
    distance from the sample to it along the beam."""
    g = conv.geometry(params)
    fs, ss = g.beam_center(0)
    dist = float(g.panels[0].lab_xyz(fs, ss, g.clen)[2])
    tilt, tpr = tilt_of(*params[3:6])
    return np.array([fs, ss, dist, tilt, tpr])


def _wrap_deg(a):
    return (np.asarray(a) + 180.0) % 360.0 - 180.0


def fit_uncertainty(model: TthModel, residuals: np.ndarray, params: Sequence[float], free: Sequence[int],
                    conv=None, weights: Optional[np.ndarray] = None) -> FitUncertainty:
    """Covariance of the refined parameters ``free`` and the derived quantities (``conv`` given);
    ``weights``: those of a weighted fit (the residual variance is then the weighted one)."""
    free = tuple(int(i) for i in free)
    n, k = len(residuals), len(free)
    dof = max(n - k, 1)
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    s2 = float(np.sum(w * np.asarray(residuals) ** 2) / dof)
    # scaled columns: well-conditioned algebra
    J = model.jacobian(params, free) * PARAM_SCALE[list(free)] * np.sqrt(w)[:, None]
    jtj = J.T @ J
    cov_scaled = s2 * np.linalg.pinv(jtj)
    cov = cov_scaled * np.outer(PARAM_SCALE[list(free)], PARAM_SCALE[list(free)])
    sig = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sig, sig)
    ev = np.linalg.eigvalsh(np.nan_to_num(corr)) if k else np.ones(1)
    cond = float(ev.max() / ev.min()) if ev.min() > 0 else float("inf")
    rms = float(np.sqrt(np.mean(np.asarray(residuals) ** 2))) if n else float("nan")
    out = FitUncertainty(tuple(PARAM_NAMES[i] for i in free), cov, corr, cond, dof, rms,
                         {PARAM_NAMES[i]: float(s) for i, s in zip(free, sig)})
    rot = [j for j, i in enumerate(free) if i in (3, 4)]
    if len(rot) == 2:
        out.sigma_tilt_deg = float(np.rad2deg(np.sqrt(max(np.linalg.eigvalsh(cov[np.ix_(rot, rot)]).max(), 0.0))))
        vif = np.diag(np.linalg.pinv(np.nan_to_num(corr)))[rot]  # variance inflation factors
        out.tilt_inflation = float(np.sqrt(max(vif.max(), 1.0)))
    if conv is not None and k:
        base = derived(conv, params)
        G = np.zeros((len(base), k))
        for j, i in enumerate(free):
            h = PARAM_SCALE[i] * 1e-3
            a, b = np.array(params, float), np.array(params, float)
            a[i] += h
            b[i] -= h
            d = derived(conv, a) - derived(conv, b)
            d[4] = _wrap_deg(d[4])
            G[:, j] = d / (2 * h)
        cd = G @ cov @ G.T
        sd = np.sqrt(np.clip(np.diag(cd), 0, None))
        out.sigma_beam_px = (float(sd[0]), float(sd[1]))
        out.sigma_distance_m = float(sd[2])
        if np.isfinite(out.sigma_tilt_deg) and base[3] > 2 * out.sigma_tilt_deg:
            out.sigma_tilt_plane_rotation_deg = float(sd[4])
    return out


@dataclass
class TiltDecision:
    """Whether the data determine the detector tilt, and what the free fit found."""

    determined: bool
    reason: str  # a sentence for the user
    n_rings: int
    coverage_deg: float  # azimuth around the direct beam covered by control points (10-degree sectors)
    tilt_deg: float  # of the fit with the tilt free
    sigma_tilt_deg: float
    tilt_plane_rotation_deg: float
    condition: float
    inflation: float  # FitUncertainty.tilt_inflation of the free fit


def azimuth_coverage_deg(conv, params, fs: np.ndarray, ss: np.ndarray, sector_deg: float = 10.0) -> float:
    """Degrees of azimuth around the direct beam (sectors of ``sector_deg``) holding control points."""
    if len(fs) == 0:
        return 0.0
    x, y, _ = conv.geometry(params).lab_xyz(fs, ss)
    phi = np.rad2deg(np.arctan2(y, x))
    ok = np.isfinite(phi)
    sectors = np.unique(np.floor((phi[ok] + 180.0) / sector_deg).astype(int))
    return float(len(sectors) * sector_deg)


def decide_tilt(unc: FitUncertainty, conv, params, fs, ss, n_rings: int, *, min_rings: int = 3,
                min_coverage_deg: float = 180.0, max_sigma_deg: float = 0.02, max_inflation: float = 200.0,
                significant_sigma_deg: float = 0.1, significance: float = 5.0,
                tilt: Optional[tuple] = None) -> TiltDecision:
    """Is the tilt determined by this fit (tilt free)?  See the module doc for the rule:
    ``max_sigma_deg`` whatever the tilt, ``significant_sigma_deg`` for a tilt of at least
    ``significance`` sigmas."""
    t, tpr = tilt if tilt is not None else tilt_of(*params[3:6])
    cov = azimuth_coverage_deg(conv, params, fs, ss)
    why = []
    if n_rings < min_rings:
        why.append(f"control points on {n_rings} ring(s), need {min_rings}")
    if cov < min_coverage_deg:
        why.append(f"rings cover {cov:.0f} deg of azimuth, need {min_coverage_deg:.0f}")
    s = unc.sigma_tilt_deg
    if not (s <= max_sigma_deg):
        if not (s <= significant_sigma_deg):
            why.append(f"tilt uncertainty {s:.3g} deg > {significant_sigma_deg:g} deg")
        elif not (t >= significance * s):
            why.append(f"tilt uncertainty {s:.3g} deg > {max_sigma_deg:g} deg and the tilt found "
                       f"({t:.3g} deg) is below {significance:g} sigma")
    if not (unc.tilt_inflation <= max_inflation):
        why.append(f"tilt nearly degenerate with centre and distance (its uncertainty inflated "
                   f"{unc.tilt_inflation:.0f} times by their correlations, limit {max_inflation:g})")
    if why:
        reason = "tilt not determined: " + "; ".join(why)
    else:
        reason = f"tilt determined: {t:.3f} +/- {s:.3f} deg on {n_rings} rings over {cov:.0f} deg of azimuth"
    return TiltDecision(not why, reason, int(n_rings), cov, t, s, tpr, unc.condition, unc.tilt_inflation)
