"""Measure how simulated frames compare with real ones (used by ``benchmarks/bench_sim_realism.py``).

* :func:`radial_stats`: median, mean and variance of the usable pixels in rings around the beam;
* :func:`dispersion_spots`: a DIALS-like dispersion spot finder (the classic "dispersion"
  threshold of ``dials.find_spots``: 7x7 box, a pixel is strong where the box's index of
  dispersion exceeds ``1 + sigma_background * sqrt(2 / (n - 1))`` and the pixel exceeds the box
  mean by ``sigma_strong * sqrt(gain * mean)``; 8-connected groups of >= ``min_spot_size`` strong
  pixels are spots; ``intensity_sum`` is the sum of their raw values, as DIALS reports it), so
  real and simulated frames are measured by the same ruler;
* :func:`read_dials_spots`: the ``*.spots.csv`` reference lists beside the real frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class SpotTable:
    """Spots as columns: centroid ``fs``/``ss`` (pixel indices), ``intensity_sum``, ``n_signal``,
    ``max_value`` (brightest pixel) and ``background`` (box mean around the spot)."""

    fs: np.ndarray
    ss: np.ndarray
    intensity_sum: np.ndarray
    n_signal: np.ndarray
    max_value: Optional[np.ndarray] = None
    background: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.fs)


def read_dials_spots(path) -> SpotTable:
    """A ``*.spots.csv`` (DIALS corner convention, converted to pixel indices here)."""
    import csv

    rows = list(csv.DictReader(open(path)))
    get = lambda k: np.array([float(r[k]) for r in rows])  # noqa: E731
    if not rows:
        z = np.zeros(0)
        return SpotTable(z, z, z, z)
    return SpotTable(get("x_fast_px") - 0.5, get("y_slow_px") - 0.5, get("intensity_sum"), get("n_signal"))


def _box_sums(a: np.ndarray, k: int) -> np.ndarray:
    """Sum over the (2k+1)^2 box around every pixel (zero padding): a separable running mean
    (accumulated in double precision), in ``a``'s floating dtype."""
    from scipy import ndimage

    n = 2 * k + 1
    return ndimage.uniform_filter(a, n, mode="constant", output=a.dtype) * a.dtype.type(n * n)


def _usable_image(data, bad, negative_ok: bool, dtype) -> tuple:
    """(usable mask, image with unusable pixels set to 0, scalar type) for the thresholds."""
    img = np.asarray(data, dtype=dtype)
    ok = np.isfinite(img)
    if not negative_ok:
        ok &= img >= 0
    if bad is not None:
        ok &= ~bad
    f = img.dtype.type
    return ok, np.where(ok, img, f(0)), f


def dispersion_mask(data: np.ndarray, bad: Optional[np.ndarray] = None, *, gain: float = 1.0, kernel: int = 3,
                    sigma_background: float = 6.0, sigma_strong: float = 3.0, global_threshold: float = 0.0,
                    min_count: int = 2, negative_ok: bool = False, dtype=np.float64) -> tuple:
    """(strong pixel mask, box mean) of DIALS' classic dispersion threshold.

    Negative (and non-finite) values are unusable unless ``negative_ok`` (images in photons after
    subtracting an offset, where read noise makes negative values legitimate).  ``dtype``
    float32 halves the time on large frames (the simulator's labels); the box sums are still
    accumulated in double precision."""
    ok, x, f = _usable_image(data, bad, negative_ok, dtype)
    m = _box_sums(ok.astype(x.dtype), kernel)
    s = _box_sums(x, kernel)
    with np.errstate(invalid="ignore", divide="ignore"):
        # the strong test first, on the whole frame; the dispersion test only where it passes
        gsm = f(gain) * s * m
        np.maximum(gsm, f(0), out=gsm)
        np.sqrt(gsm, out=gsm)
        gsm *= f(sigma_strong)
        b = m * x
        b -= s
        cand = (b > gsm) & ok & (x > global_threshold) & (m >= min_count - 0.5)
        del b, gsm
        strong = np.zeros(x.shape, dtype=bool)
        i = np.flatnonzero(cand)
        if len(i):
            s2 = _box_sums(x * x, kernel).ravel()[i]
            mi, si = m.ravel()[i], s.ravel()[i]
            mm1 = np.maximum(mi - 1, f(0))
            strong.ravel()[i] = mi * s2 - si * si > f(gain) * si * (mm1 + f(sigma_background) * np.sqrt(2 * mm1))
        mean = np.where(m > 0.5, s / np.maximum(m, f(1)), f(0))
    return strong, mean



def dispersion_extended_mask(data: np.ndarray, bad: Optional[np.ndarray] = None, *, gain: float = 1.0,
                             kernel: int = 3, sigma_background: float = 6.0, sigma_strong: float = 3.0,
                             global_threshold: float = 0.0, min_count: int = 2, negative_ok: bool = False,
                             dtype=np.float64) -> tuple:
    """(strong pixel mask, background mean) of DIALS' ``dispersion_extended`` threshold, the
    default of ``dials.find_spots`` since DIALS 2 (and what the reference spot lists were made
    with).  As described in DIALS' documentation and papers (implemented here independently):

    1. the index-of-dispersion test of the classic algorithm over the (2k+1)^2 box marks
       "not background" pixels (unusable pixels count as not background);
    2. that region is eroded: only pixels whose whole (2k-1)^2 neighbourhood is not background
       (Chebyshev distance >= k to the nearest background pixel) stay candidates;
    3. the local background mean is taken over a (2k+5)^2 box *without* those candidates, and a
       candidate is strong where its value is >= mean + sigma_strong * sqrt(gain * mean) and
       above ``global_threshold``.

    Weak, small spots whose dispersed region is too thin to survive the erosion are not found,
    which makes it markedly more conservative than the classic test on noisy frames."""
    from scipy import ndimage

    ok, x, f = _usable_image(data, bad, negative_ok, dtype)
    m = _box_sums(ok.astype(x.dtype), kernel)
    s = _box_sums(x, kernel)
    s2 = _box_sums(x * x, kernel)
    with np.errstate(invalid="ignore", divide="ignore"):
        mm1 = np.maximum(m - 1, f(0))
        cv = (m * s2 - s * s) > f(gain) * s * (mm1 + f(sigma_background) * np.sqrt(2 * mm1))
        cv &= (m >= min_count - 0.5) & (s >= 0)
    del s2, mm1
    not_bg = cv | ~ok
    del cv
    r = max(int(kernel) - 1, 0)
    core = ndimage.binary_erosion(not_bg, structure=np.ones((2 * r + 1, 2 * r + 1), bool), border_value=1) & ok
    del not_bg
    bg_ok = ok & ~core
    k2 = int(kernel) + 2
    mb = _box_sums(bg_ok.astype(x.dtype), k2)
    sb = _box_sums(np.where(bg_ok, x, f(0)), k2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(mb >= 1.5, sb / np.maximum(mb, f(1)), f(0))
        mean = np.maximum(mean, f(0))
        strong = core & (x > global_threshold) & (x >= mean + f(sigma_strong) * np.sqrt(f(gain) * mean))
    return strong, mean


ALGORITHMS = ("dispersion_extended", "dispersion")


def panel_dispersion_mask(data: np.ndarray, bad: Optional[np.ndarray] = None, panels: Optional[list] = None,
                          algorithm: str = "dispersion_extended", **kw) -> tuple:
    """:func:`dispersion_extended_mask` (DIALS' default, ``algorithm="dispersion_extended"``) or
    :func:`dispersion_mask` (``"dispersion"``) panel by panel (``panels``: slices of the data
    array; None = the whole array as one panel), as DIALS does: no box straddles two panels."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, not {algorithm!r}")
    fn = dispersion_extended_mask if algorithm == "dispersion_extended" else dispersion_mask
    if not panels:
        return fn(data, bad, **kw)
    strong = np.zeros(np.shape(data), dtype=bool)
    mean = np.zeros(np.shape(data), dtype=kw.get("dtype", np.float64))
    for sl in panels:
        strong[sl], mean[sl] = fn(data[sl], None if bad is None else bad[sl], **kw)
    return strong, mean


def label_groups(strong: np.ndarray, panels: Optional[list] = None) -> tuple:
    """8-connected groups of strong pixels (label image, count), never joined across panels."""
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    if not panels:
        return ndimage.label(strong, structure=eight)
    lab = np.zeros(strong.shape, dtype=np.int32)
    n = 0
    for sl in panels:
        part, k = ndimage.label(strong[sl], structure=eight)
        lab[sl] = np.where(part > 0, part + n, 0)
        n += k
    return lab, n


def group_separation(comp: np.ndarray, n: int, image: np.ndarray) -> np.ndarray:
    """Per group of the label image ``comp`` (``n`` groups; index 0 = none): how far its
    brightest pixel of ``image`` lies from its intensity-weighted centroid, in pixels -- DIALS'
    peak-to-centroid distance (the caller applies ``max_separation``).  Computed on the grouped
    pixels only (bincount), not over the whole frame; ties of the brightest value go to the
    first pixel in raster order."""
    flat = np.flatnonzero(comp)
    sep = np.zeros(n + 1)
    if flat.size == 0:
        return sep
    lab = comp.ravel()[flat].astype(np.int64)
    w = np.maximum(image.ravel()[flat], 0).astype(np.float64)
    ss, fs = np.divmod(flat, comp.shape[1])
    tot = np.bincount(lab, w, minlength=n + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cs = np.bincount(lab, w * ss, minlength=n + 1) / tot
        cf = np.bincount(lab, w * fs, minlength=n + 1) / tot
    order = np.lexsort((flat, -w, lab))  # by group, brightest first, then raster order
    starts = order[np.r_[0, np.flatnonzero(np.diff(lab[order])) + 1]]
    g = lab[starts]
    with np.errstate(invalid="ignore"):
        sep[g] = np.nan_to_num(np.hypot(ss[starts] - cs[g], fs[starts] - cf[g]), nan=0.0)
    return sep


def dispersion_spots(data: np.ndarray, bad: Optional[np.ndarray] = None, *, gain: float = 1.0, min_spot_size: int = 3,
                     max_spot_size: int = 1000, max_separation: Optional[float] = 2.0, panels: Optional[list] = None,
                     **kw) -> SpotTable:
    """Spots of :func:`panel_dispersion_mask` (see the module doc); ``panels``: slices of the
    panels of a multi-panel slab (each found separately, as DIALS does).  As ``dials.find_spots``
    does by default, spots whose brightest pixel lies more than ``max_separation`` pixels from
    their centroid (merged neighbours, streaks) are dropped (None: kept)."""
    from scipy import ndimage

    strong, mean = panel_dispersion_mask(data, bad, panels, gain=gain, **kw)
    lab, n = label_groups(strong, panels)
    if n == 0:
        z = np.zeros(0)
        return SpotTable(z, z, z, z, z, z)
    img = np.where(strong, np.asarray(data, dtype=np.float64), 0.0)
    idx = np.arange(1, n + 1)
    npx = ndimage.sum(strong, lab, idx)
    tot = ndimage.sum(img, lab, idx)
    ss_i, fs_i = np.indices(strong.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        fs = ndimage.sum(img * fs_i, lab, idx) / tot
        ss = ndimage.sum(img * ss_i, lab, idx) / tot
    mx = ndimage.maximum(img, lab, idx)
    bg = ndimage.mean(mean, lab, idx)
    keep = (npx >= min_spot_size) & (npx <= max_spot_size)
    if max_separation is not None:
        keep &= group_separation(lab, n, img)[1:] <= max_separation
    return SpotTable(fs[keep], ss[keep], tot[keep], npx[keep], mx[keep], bg[keep])


@dataclass
class RadialStats:
    edges: np.ndarray  # pixels from the beam
    median: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    count: np.ndarray


def radial_stats(data: np.ndarray, usable: np.ndarray, beam_fs: float, beam_ss: float, step: float = 100.0,
                 r_max: Optional[float] = None, exclude: Optional[np.ndarray] = None) -> RadialStats:
    """Per ring of width ``step`` pixels around the beam: median, mean and variance of the usable
    pixels (``exclude``: pixels to leave out, e.g. spots)."""
    ss, fs = np.indices(data.shape)
    r = np.hypot(fs - beam_fs, ss - beam_ss)
    use = usable.copy()
    if exclude is not None:
        use &= ~exclude
    r_max = r_max or float(r[use].max())
    edges = np.arange(0.0, r_max + step, step)
    n = len(edges) - 1
    med, mean, var, cnt = (np.full(n, np.nan) for _ in range(4))
    cnt = np.zeros(n)
    ring = np.digitize(r[use], edges) - 1
    vals = data[use].astype(np.float64)
    order = np.argsort(ring, kind="stable")
    ring, vals = ring[order], vals[order]
    bounds = np.searchsorted(ring, np.arange(n + 1))
    for i in range(n):
        v = vals[bounds[i] : bounds[i + 1]]
        if len(v) > 50:
            med[i], mean[i], var[i], cnt[i] = np.median(v), v.mean(), v.var(), len(v)
    return RadialStats(edges, med, mean, var, cnt)


def quantiles(x, q=(5, 25, 50, 75, 95)) -> list:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return [float(v) for v in np.percentile(x, q)] if len(x) else [float("nan")] * len(q)


def match_fraction(a_fs, a_ss, b_fs, b_ss, radius: float = 2.0) -> float:
    """Fraction of points a with a point b within ``radius`` pixels."""
    if len(a_fs) == 0:
        return float("nan")
    if len(b_fs) == 0:
        return 0.0
    from scipy.spatial import cKDTree

    d, _ = cKDTree(np.column_stack([b_fs, b_ss])).query(np.column_stack([a_fs, a_ss]), k=1)
    return float(np.mean(d <= radius))


@dataclass
class SpotShapes:
    """Second-moment shape of spots: axis ratio, major/minor RMS widths (pixels), direction of
    the major axis (degrees from +fs) and its angle to the radial direction (0 radial, 90 tangential)."""

    ratio: np.ndarray
    major: np.ndarray
    minor: np.ndarray
    angle_deg: np.ndarray
    to_radial_deg: np.ndarray


def spot_shapes(image: np.ndarray, bad: np.ndarray, fs, ss, beam: tuple, half: int = 5,
                floor: float = 0.15) -> SpotShapes:
    """Second moments of the background-subtracted pixels (>= ``floor`` x the maximum) in a
    (2 half + 1)^2 box around each spot (skipping boxes that touch bad pixels or the edge)."""
    out = []
    img = np.asarray(image, dtype=np.float64)
    yy, xx = np.mgrid[0 : 2 * half + 1, 0 : 2 * half + 1]
    for x, y in zip(fs, ss):
        x0, y0 = int(round(x)) - half, int(round(y)) - half
        if x0 < 15 or y0 < 15 or y0 + 2 * half + 16 > img.shape[0] or x0 + 2 * half + 16 > img.shape[1]:
            continue
        if bad[y0 : y0 + 2 * half + 1, x0 : x0 + 2 * half + 1].any():
            continue
        around = img[y0 - 10 : y0 + 2 * half + 11, x0 - 10 : x0 + 2 * half + 11]
        okb = ~bad[y0 - 10 : y0 + 2 * half + 11, x0 - 10 : x0 + 2 * half + 11]
        p = img[y0 : y0 + 2 * half + 1, x0 : x0 + 2 * half + 1] - np.median(around[okb])
        p = np.clip(p, 0, None)
        if p.max() <= 0:
            continue
        p[p < floor * p.max()] = 0
        w = p.sum()
        mx, my = (p * xx).sum() / w, (p * yy).sum() / w
        cxx = (p * (xx - mx) ** 2).sum() / w
        cyy = (p * (yy - my) ** 2).sum() / w
        cxy = (p * (xx - mx) * (yy - my)).sum() / w
        ev, vec = np.linalg.eigh([[cxx, cxy], [cxy, cyy]])
        ang = np.degrees(np.arctan2(vec[1, 1], vec[0, 1])) % 180
        rad = np.degrees(np.arctan2(my + y0 - beam[1], mx + x0 - beam[0])) % 180
        out.append((np.sqrt(ev[1] / max(ev[0], 1e-3)), np.sqrt(ev[1]), np.sqrt(max(ev[0], 0)), ang,
                    abs(((ang - rad) + 90) % 180 - 90)))
    a = np.array(out) if out else np.zeros((0, 5))
    return SpotShapes(*(a[:, i] for i in range(5)))
