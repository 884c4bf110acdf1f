"""Coarse search for the beam centre and the detector distance on a calibrant frame.

pyFAI's control-point extraction (:mod:`.rings`) needs a starting geometry good to a fraction of
the ring spacing.  A user's rough start may be tens of pixels and ~10 % off, so we search first:

1. **Ring pixels**: a variance-stabilised (square-root) frame minus its local mean (a box of
   ``box`` pixels, masked pixels excluded) -- pixels above 3 robust sigmas are ring candidates.
2. **Beam centre**: the lab point around which the candidates' radii are most concentrated,
   searched on a grid around the start and refined coarse-to-fine (8, 2, 0.5, 0.125 px).  On
   the wide first grid the measure is the excess over what a uniform spread of candidates over
   the detector would give at that centre (chi-square of the radius histogram against one of a
   sample of all valid pixels): the plain sum of squared counts also rewards centres whose
   annuli merely cut the detector unevenly, which far from the start can beat the true centre;
   the finer stages, a few pixels wide, use the sum of squared counts.  Works for full rings and
   for arcs of a beam centre off the detector, and for several panels (radii are measured in the
   lab frame).
3. **Ring radii**: peaks of the fraction of candidate pixels per annulus, sub-pixel centroids.
4. **Distance**: the scale ``D`` at which the calibrant's ring radii ``D tan(2 theta_n)`` best
   explain the observed radii (fraction of observed rings matched times fraction of predicted
   rings found), scanned over 1/4..4 times the start, then least squares on the matched rings.
   A best match far outside the allowed distance range means the energy (or the distance) is
   wrong; that is reported with the wavelength the rings imply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage
from scipy.signal import find_peaks

from ..errors import CalibrationError
from ..geometry.detector import HC_EV_A, Geometry
from ..geometry.pixelmap import pixel_map
from .calibrants import RingTable

log = logging.getLogger(__name__)


@dataclass
class ObservedRings:
    """Rings seen around a beam centre: radii in pixels (in the plane of the detector at the
    start distance) and their strength (fraction of the annulus' pixels that are ring pixels)."""

    radius_px: np.ndarray
    strength: np.ndarray


@dataclass
class DistanceMatch:
    distance_m: float
    score: float  # 0..1: fraction of observed rings matched x fraction of predicted rings seen
    ring_index: np.ndarray  # calibrant ring index (RingTable.index) of each matched observed ring
    radius_px: np.ndarray  # the matched observed radii
    best_anywhere_m: float  # best distance over the whole scan (for wrong-energy messages)
    best_anywhere_score: float


@dataclass
class CoarseResult:
    geometry: Geometry  # start geometry moved to the found beam centre and distance
    beam_shift_px: tuple  # (dx, dy) lab pixels the beam moved from the start
    observed: ObservedRings
    match: DistanceMatch
    n_candidates: int


def ring_candidates(data: np.ndarray, valid: np.ndarray, box: int = 15, k: float = 3.0, max_pixels: int = 150_000):
    """Flat indices of ring pixels (bright compared with their neighbourhood)."""
    a = np.sqrt(np.clip(np.where(valid, data, 0.0), 0.0, None).astype(np.float64))
    w = valid.astype(np.float64)
    num = ndimage.uniform_filter(a, box, mode="constant")
    den = ndimage.uniform_filter(w, box, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        hp = np.where(valid & (den > 0.3), a - num / den, 0.0)
    v = hp[valid]
    if v.size == 0:
        return np.zeros(0, np.int64)
    med = np.median(v)
    mad = 1.4826 * np.median(np.abs(v - med))
    if not mad > 0:
        mad = np.std(v) or 1.0
    idx = np.flatnonzero(hp > med + k * mad)
    if len(idx) > max_pixels:
        vals = hp.ravel()[idx]
        idx = idx[np.argpartition(-vals, max_pixels)[:max_pixels]]
    return idx


def _lab_px(geometry: Geometry, shape: tuple):
    """Lab x, y in pixels (per panel resolution) and z in metres of every pixel; NaN off panels."""
    pm = pixel_map(geometry, shape)
    res = np.full(shape, np.nan)
    for p in geometry.panels:
        res[p.slices()] = p.res
    return pm.x * res, pm.y * res, pm.z


def _concentration(x, y, cx, cy, binw) -> float:
    r = np.hypot(x - cx, y - cy) / binw
    h = np.bincount(r.astype(np.int64)).astype(np.float64)
    return float(np.sum(h * h))


def _excess_concentration(x, y, xa, ya, cx, cy, binw) -> float:
    """Chi-square of the candidates' radius histogram against the one expected if they were
    spread like the valid pixels ``xa, ya`` (a sample) around the same centre."""
    rc = (np.hypot(x - cx, y - cy) / binw).astype(np.int64)
    ra = (np.hypot(xa - cx, ya - cy) / binw).astype(np.int64)
    nb = int(max(rc.max(initial=0), ra.max(initial=0))) + 1
    h = np.bincount(rc, minlength=nb).astype(np.float64)
    e = np.bincount(ra, minlength=nb).astype(np.float64) * (len(x) / max(len(xa), 1))
    return float(np.sum((h - e) ** 2 / (e + 1.0)))


def find_beam_shift(x: np.ndarray, y: np.ndarray, search_px: float = 64.0,
                    all_xy: Optional[tuple] = None) -> tuple:
    """Lab point (dx, dy) (pixels, relative to the current beam) the ring pixels are centred on.
    ``all_xy``: lab x, y of a sample of all valid pixels, for the first (wide) grid (module doc)."""
    c = (0.0, 0.0)
    stages = [(search_px, max(search_px / 8.0, 2.0), 4.0), (8.0, 2.0, 1.0), (2.0, 0.5, 0.5), (0.5, 0.125, 0.25)]
    for k, (span, step, binw) in enumerate(stages):
        n = int(round(span / step))
        best = (-np.inf, c)
        for i in range(-n, n + 1):
            for j in range(-n, n + 1):
                cc = (c[0] + i * step, c[1] + j * step)
                if k == 0 and all_xy is not None:
                    s = _excess_concentration(x, y, all_xy[0], all_xy[1], cc[0], cc[1], binw)
                else:
                    s = _concentration(x, y, cc[0], cc[1], binw)
                if s > best[0]:
                    best = (s, cc)
        c = best[1]
    return c


def observed_rings(rho_candidates: np.ndarray, rho_all: np.ndarray, binw: float = 0.25) -> ObservedRings:
    """Ring radii from the fraction of ring pixels per annulus (``rho``: radii in pixels)."""
    if rho_candidates.size == 0:
        return ObservedRings(np.zeros(0), np.zeros(0))
    nb = int(np.nanmax(rho_all) / binw) + 2
    cand = np.bincount((rho_candidates / binw).astype(np.int64), minlength=nb)[:nb].astype(np.float64)
    allp = np.bincount((rho_all / binw).astype(np.int64), minlength=nb)[:nb].astype(np.float64)
    cs = ndimage.gaussian_filter1d(cand, 2.0)
    al = ndimage.gaussian_filter1d(allp, 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(al >= 4.0, cs / al, 0.0)
    base = np.median(frac[al >= 4.0]) if np.any(al >= 4.0) else 0.0
    peaks, _ = find_peaks(frac, height=max(0.05, 4.0 * base), prominence=max(0.03, 2.0 * base), distance=max(1, int(2.0 / binw)))
    radii, strength = [], []
    for p in peaks:
        a, b = max(p - 8, 0), min(p + 9, nb)
        w = cand[a:b]
        if w.sum() <= 0:
            continue
        radii.append(float(np.sum(w * (np.arange(a, b) + 0.5) * binw) / w.sum()))
        strength.append(float(frac[p]))
    return ObservedRings(np.asarray(radii), np.asarray(strength))


def _match(obs: np.ndarray, pred: np.ndarray) -> tuple:
    """(score, obs->pred nearest index, matched mask) for observed vs predicted radii (px)."""
    if len(pred) == 0 or len(obs) == 0:
        return 0.0, np.zeros(len(obs), np.int64), np.zeros(len(obs), bool)
    dm = np.abs(obs[:, None] - pred[None, :])
    j = dm.argmin(1)
    ok = dm[np.arange(len(obs)), j] < np.maximum(1.5, 0.01 * obs)
    seen = dm.min(0) < np.maximum(1.5, 0.01 * pred)
    return float(ok.mean() * seen.mean()), j, ok


def match_distance(
    observed: ObservedRings,
    rings: RingTable,
    pixel_size_m: float,
    start_distance_m: float,
    tolerance: float = 0.25,
) -> DistanceMatch:
    """Distance whose predicted ring radii best explain ``observed`` (see module doc)."""
    obs = observed.radius_px
    tan = np.tan(rings.twotheta_rad) / pixel_size_m  # radius per metre of distance
    lo, hi = obs.min() - 3.0, obs.max() + 3.0

    def score_at(d):
        pred = d * tan
        inside = (pred >= lo) & (pred <= hi)
        return _match(obs, pred[inside])[0]

    scales = np.exp(np.linspace(np.log(0.25), np.log(4.0), 4001))
    scores = np.array([score_at(start_distance_m * s) for s in scales])
    allowed = (scales >= 1.0 / (1.0 + tolerance)) & (scales <= 1.0 + tolerance)
    i_all = int(np.argmax(scores))
    i_ok = int(np.flatnonzero(allowed)[np.argmax(scores[allowed])])
    d = start_distance_m * scales[i_ok]
    ok = np.zeros(len(obs), bool)
    j = np.zeros(len(obs), np.int64)
    for _ in range(4):  # least squares on the matched rings
        _, j, ok = _match(obs, d * tan)
        if not ok.any():
            break
        d = float(np.sum(obs[ok] * tan[j[ok]]) / np.sum(tan[j[ok]] ** 2))
    return DistanceMatch(
        distance_m=d, score=float(scores[i_ok]), ring_index=rings.index[j[ok]], radius_px=obs[ok],
        best_anywhere_m=start_distance_m * scales[i_all], best_anywhere_score=float(scores[i_all]),
    )


def shifted_geometry(geometry: Geometry, dx_px: float, dy_px: float, distance_m: Optional[float] = None) -> Geometry:
    """``geometry`` moved so that lab point (dx, dy) (pixels) becomes the beam, at a new distance."""
    g = geometry.copy()
    for p in g.panels:
        scale = p.res / geometry.panels[0].res
        p.corner_x -= dx_px * scale
        p.corner_y -= dy_px * scale
    if distance_m is not None:
        delta = distance_m - geometry.mean_camera_length()
        if g.clen is not None:
            g.clen += delta
        for p in g.panels:
            if p.clen is not None:
                p.clen += delta
    return g


def coarse_search(
    data: np.ndarray,
    valid: np.ndarray,
    geometry: Geometry,
    rings: RingTable,
    *,
    search_px: float = 64.0,
    distance_tolerance: float = 0.25,
    box: int = 15,
    min_rings: int = 2,
    source: str = "frame",
) -> CoarseResult:
    """Beam centre and distance from a rough start (see module doc).  CalibrationError when the
    frame shows too few rings or the rings do not fit the calibrant at this energy."""
    shape = data.shape
    x, y, z = _lab_px(geometry, shape)
    valid = valid & np.isfinite(x)
    idx = ring_candidates(data, valid, box=box)
    if len(idx) < 20:
        raise CalibrationError(f"{source}: no calibrant rings found (only {len(idx)} bright ring pixels)")
    d0 = geometry.mean_camera_length()
    zc = z.ravel()[idx] / d0  # project radii onto the plane at the start distance
    xc, yc = x.ravel()[idx] / zc, y.ravel()[idx] / zc
    zall = z[valid] / d0
    xa, ya = x[valid] / zall, y[valid] / zall
    if len(xa) > 200_000:  # a sample is enough for the expected (uniform) histogram
        pick = np.random.default_rng(0).choice(len(xa), 200_000, replace=False)
        sample = (xa[pick], ya[pick])
    else:
        sample = (xa, ya)
    dx, dy = find_beam_shift(xc, yc, search_px, all_xy=sample)
    rho_c = np.hypot(xc - dx, yc - dy)
    rho_all = np.hypot(xa - dx, ya - dy)
    obs = observed_rings(rho_c, rho_all)
    if len(obs.radius_px) < min_rings:
        raise CalibrationError(
            f"{source}: too few calibrant rings to fit ({len(obs.radius_px)} found, need at least {min_rings})"
        )
    pix = geometry.panels[0].pixel_size
    match = match_distance(obs, rings, pix, d0, distance_tolerance)
    _check_match(match, obs, rings, d0, pix, min_rings, distance_tolerance, source, search_px)
    g = shifted_geometry(geometry, dx, dy, match.distance_m)
    log.info("coarse search: beam moved by (%.2f, %.2f) px, distance %.2f mm, %d rings matched (score %.2f)",
             dx, dy, match.distance_m * 1e3, len(match.radius_px), match.score)
    return CoarseResult(g, (dx, dy), obs, match, len(idx))


def _check_match(match, obs, rings, d0, pix, min_rings, tolerance, source, search_px=64.0):
    n = len(np.unique(match.ring_index))
    wl = rings.wavelength_a
    wrong = match.best_anywhere_score >= 0.6 and match.best_anywhere_score > match.score + 0.15
    if wrong or match.score < 0.3:
        if match.best_anywhere_score >= 0.6:
            scale = match.best_anywhere_m / d0
            wl_fit = wl * scale
            raise CalibrationError(
                f"{source}: the {rings.calibrant} rings do not match the given energy "
                f"({HC_EV_A / wl / 1e3:.3f} keV, {wl:.5f} A) and distance ({d0 * 1e3:.1f} mm +/- "
                f"{tolerance * 100:.0f}%): the observed ring spacing fits {wl_fit:.5f} A "
                f"({HC_EV_A / wl_fit / 1e3:.3f} keV) at {d0 * 1e3:.1f} mm, or {match.best_anywhere_m * 1e3:.1f} mm "
                f"at {wl:.5f} A. Check the photon energy (or the distance)."
            )
        raise CalibrationError(
            f"{source}: the {len(obs.radius_px)} rings found (radii {', '.join(f'{r:.1f}' for r in obs.radius_px[:8])} px) "
            f"do not match {rings.calibrant} at {HC_EV_A / wl / 1e3:.3f} keV for any distance near "
            f"{d0 * 1e3:.1f} mm (best match score {match.best_anywhere_score:.2f}); wrong calibrant or energy, "
            f"or is the beam centre more than {search_px:g} px from the start (widen the search)?"
        )
    if n < min_rings:
        raise CalibrationError(
            f"{source}: too few calibrant rings to fit ({n} matched {rings.calibrant} rings, need at least {min_rings})"
        )
