"""Calibrant rings on a detector: where they are expected, where they are seen.

* :func:`expected_rings` -- every calibrant ring at the current geometry and energy: d, 2-theta,
  q, its radius in pixels around the beam centre, whether it falls on the detector and which
  fraction of its circumference the panels see (arcs when the beam is off the detector).
* :func:`ring_points` -- (fs, ss) points along a ring, for overlays (any panel layout).
* :func:`pick_rings` -- peaks of a radial profile (:mod:`.integrate`) matched to expected rings.
* :func:`extract_control_points` -- pyFAI's automatic control-point extraction
  (``pyFAI.goniometer.SingleGeometry.extract_cp``: pixels of each expected ring band above the
  band's mean + sigma, seeded along the ring by marching squares, climbed to local maxima by
  ``pyFAI.massif.Massif``) on a lightly smoothed frame so noise maxima do not pull the points.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage
from scipy.signal import find_peaks

from ..errors import CalibrationError
from ..geometry.detector import Geometry
from .calibrants import CalibrantLike, load_calibrant, ring_table
from .geometry_convert import PyFAIGeometry

log = logging.getLogger(__name__)


@dataclass
class ExpectedRing:
    index: int  # ring number in the calibrant's list (0 = largest d); pyFAI's ring id
    hkl: Optional[tuple]
    d_a: float
    twotheta_rad: float
    q_inv_a: float
    radius_px: float  # radius around the beam centre in the plane of panel 0 (untilted approx.)
    on_detector: bool  # some panel pixel sits on the ring
    coverage: float  # fraction of the ring's circumference on the panels (0..1)

    @property
    def twotheta_deg(self) -> float:
        return float(np.rad2deg(self.twotheta_rad))


def _twotheta_map(geometry: Geometry, shape: tuple) -> np.ndarray:
    from ..geometry.pixelmap import pixel_map

    return pixel_map(geometry, shape).twotheta


def expected_rings(
    geometry: Geometry,
    calibrant: CalibrantLike = "AgBh",
    wavelength_a: Optional[float] = None,
    shape: Optional[tuple] = None,
    *,
    only_on_detector: bool = False,
    n_azimuth: int = 720,
) -> list:
    """The calibrant's rings at this geometry and wavelength (default: the geometry's energy)."""
    shape = tuple(shape) if shape is not None else geometry.data_shape
    wl = wavelength_a if wavelength_a is not None else geometry.wavelength_a()
    table = ring_table(calibrant, wl)
    tth = _twotheta_map(geometry, shape)
    lo, hi = np.nanmin(tth), np.nanmax(tth)
    d0 = geometry.panels[0].distance(geometry.clen)
    out = []
    for k in range(len(table)):
        t = float(table.twotheta_rad[k])
        on = bool(lo <= t <= hi)
        cov = 0.0
        if on:
            fs, ss = ring_points(geometry, t, n_azimuth, shape=shape, keep_nan_breaks=False)
            cov = len(fs) / float(n_azimuth)
        if only_on_detector and not on:
            continue
        out.append(ExpectedRing(
            index=int(table.index[k]), hkl=table.hkl[k], d_a=float(table.d_a[k]), twotheta_rad=t,
            q_inv_a=float(table.q_inv_a[k]), radius_px=float(d0 * np.tan(t) * geometry.panels[0].res),
            on_detector=on, coverage=float(cov),
        ))
    return out


def ring_points(
    geometry: Geometry,
    twotheta_rad: float,
    n: int = 720,
    *,
    shape: Optional[tuple] = None,
    keep_nan_breaks: bool = True,
):
    """(fs, ss) data positions along the ring of ``twotheta_rad``, ``n`` azimuths.

    For each azimuth the scattered ray is intersected with every panel's plane; the point is
    kept where it falls inside that panel.  With ``keep_nan_breaks`` the arrays hold NaN between
    separate arcs (ready for a polyline plot); otherwise only the points on panels.
    """
    phi = np.linspace(-np.pi, np.pi, n, endpoint=False)
    s, c = np.sin(twotheta_rad), np.cos(twotheta_rad)
    ray = np.stack([s * np.cos(phi), s * np.sin(phi), np.full(n, c)], axis=1)
    fs_out = np.full(n, np.nan)
    ss_out = np.full(n, np.nan)
    for p in geometry.panels:
        f = np.asarray(p.fs, float) / p.res
        g = np.asarray(p.ss, float) / p.res
        origin = np.array([p.corner_x / p.res, p.corner_y / p.res, p.distance(geometry.clen)])
        normal = np.cross(f, g)
        denom = ray @ normal
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (origin @ normal) / denom
        pts = ray * t[:, None] - origin
        m = np.linalg.lstsq(np.stack([f, g], axis=1), pts.T, rcond=None)[0]  # (u, v) corner coords
        fs = m[0] + p.min_fs - 0.5
        ss = m[1] + p.min_ss - 0.5
        inside = (t > 0) & np.isnan(fs_out) & p.contains(fs, ss)
        fs_out[inside] = fs[inside]
        ss_out[inside] = ss[inside]
    if shape is not None:
        out = ~((fs_out >= -0.5) & (fs_out < shape[1] - 0.5) & (ss_out >= -0.5) & (ss_out < shape[0] - 0.5))
        fs_out[out] = np.nan
        ss_out[out] = np.nan
    if not keep_nan_breaks:
        ok = np.isfinite(fs_out)
        return fs_out[ok], ss_out[ok]
    return fs_out, ss_out


@dataclass
class PickedRing:
    index: int  # calibrant ring index
    twotheta_obs_rad: float
    twotheta_expected_rad: float
    prominence: float  # in units of the profile's noise


def pick_rings(profile, calibrant: CalibrantLike = "AgBh", *, min_snr: float = 5.0, tolerance_deg: Optional[float] = None) -> list:
    """Peaks of a :class:`~.integrate.RadialProfile` matched to the calibrant's rings.

    A peak counts when its prominence exceeds ``min_snr`` times the profile's noise (pyFAI's
    Poisson error of the bin, at least the MAD of the profile's second difference) and it lies within ``tolerance_deg`` (default: a quarter of the local ring
    spacing) of an expected ring.
    """
    tth = profile.twotheta_rad
    inten = np.asarray(profile.intensity, float)
    ok = np.isfinite(inten)
    if ok.sum() < 5:
        return []
    y = np.interp(np.arange(len(inten)), np.flatnonzero(ok), inten[ok])
    d2 = np.diff(y, 2)
    noise = np.full(len(y), 1.4826 * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6) or 1.0)
    if profile.sigma is not None:  # pyFAI's Poisson error of each bin's mean, where known
        sig = np.asarray(profile.sigma, float)
        good = np.isfinite(sig) & ok
        if good.sum() >= 5:
            noise = np.maximum(noise, np.interp(np.arange(len(y)), np.flatnonzero(good), sig[good]))
    peaks, props = find_peaks(y, prominence=0.0)
    snr = props["prominences"] / noise[peaks]
    keep = snr >= min_snr
    peaks, snr = peaks[keep], snr[keep]
    table = ring_table(calibrant, profile.wavelength_a)
    exp_t = table.twotheta_rad
    spacing = np.diff(exp_t)
    out = []
    used = set()
    for p, prom_snr in zip(peaks, snr):
        t = tth[p]
        a, b = max(p - 2, 0), min(p + 3, len(y))  # centroid around the peak
        w = np.clip(y[a:b] - y[a:b].min(), 0, None)
        if w.sum() > 0:
            t = float(np.sum(w * tth[a:b]) / w.sum())
        k = int(np.argmin(np.abs(exp_t - t)))
        local = spacing[min(k, len(spacing) - 1)] if len(spacing) else np.inf
        tol = np.deg2rad(tolerance_deg) if tolerance_deg is not None else local / 4.0
        if abs(exp_t[k] - t) <= tol and k not in used:
            used.add(k)
            out.append(PickedRing(int(table.index[k]), float(t), float(exp_t[k]), float(prom_snr)))
    return out


@dataclass
class ControlPoints:
    """Control points: pixel positions on rings, pyFAI order ``(d1 = ss, d2 = fs, ring)``."""

    points: np.ndarray  # (N, 3) float64

    def __len__(self) -> int:
        return len(self.points)

    @property
    def rings(self) -> np.ndarray:
        return np.unique(self.points[:, 2].astype(int)) if len(self.points) else np.zeros(0, int)

    @property
    def fs(self) -> np.ndarray:
        return self.points[:, 1]

    @property
    def ss(self) -> np.ndarray:
        return self.points[:, 0]


def extract_control_points(
    data: np.ndarray,
    bad: np.ndarray,
    conv: PyFAIGeometry,
    calibrant: CalibrantLike,
    wavelength_a: float,
    *,
    smooth_px: float = 1.0,
    pts_per_deg: float = 1.0,
    max_rings: Optional[int] = None,
    rings: Optional[list] = None,
    seed: int = 0,
) -> ControlPoints:
    """Control points on the rings expected at ``conv``'s geometry (pyFAI ``extract_cp``).

    ``rings``: only these calibrant ring indices (e.g. those :func:`pick_rings` sees; rings too
    faint to see would only give noise points); ring ids in the result are calibrant indices.
    """
    from pyFAI.calibrant import Calibrant
    from pyFAI.goniometer import SingleGeometry
    from pyFAI.massif import Massif

    bad = np.asarray(bad, bool) | ~conv.valid
    img = np.where(bad, 0.0, data).astype(np.float32)
    if not np.isfinite(img).all():
        raise CalibrationError("control points: the frame holds non-finite values outside the mask")
    smoothed = ndimage.gaussian_filter(img, smooth_px) if smooth_px else img
    ai = conv.integrator
    ai.detector.mask = bad.astype(np.int8)
    cal = load_calibrant(calibrant, wavelength_a)
    ids = None
    if rings is not None:
        table = ring_table(calibrant, wavelength_a)
        d_of = dict(zip(table.index.tolist(), table.d_a.tolist()))
        ids = np.array(sorted(int(r) for r in rings if int(r) in d_of), dtype=np.int64)
        if len(ids) == 0:
            return ControlPoints(np.zeros((0, 3)))
        cal = Calibrant(dspacing=[d_of[i] for i in ids], wavelength=wavelength_a * 1e-10)
    state = np.random.get_state()  # Massif shuffles with numpy's global generator
    np.random.seed(seed)
    try:
        sg = SingleGeometry("frame", image=img, calibrant=cal, detector=ai.detector, geometry=ai)
        sg.massif = Massif(smoothed, bad)
        cp = sg.extract_cp(max_rings=max_rings, pts_per_deg=pts_per_deg)
    finally:
        np.random.set_state(state)
    pts = np.asarray(cp.getList(), dtype=np.float64).reshape(-1, 3)
    if ids is not None and len(pts):
        pts[:, 2] = ids[pts[:, 2].astype(np.int64)]
    return ControlPoints(pts)
