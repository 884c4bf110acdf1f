"""Spots of a powder ring (ice, salt, a calibrant): too many peaks at one scattering angle.

A spotty powder ring -- ice crystallites, salt, a few grains of a calibrant -- puts bright,
compact spots on a circle about the beam.  Each looks like a Bragg peak; only the circle they
share says otherwise, and the network, which sees a few hundred pixels around each spot at
quarter resolution, cannot see the circle.  The peak list can: Bragg peaks of a crystal are
spread smoothly in scattering angle, the spots of a ring crowd into an annulus a few pixels wide.

:func:`powder_ring_peaks` counts, for every peak, the peaks within ``width_px`` of its radius and
compares that count with what the peaks within ``context_px`` (the annulus itself left out)
predict for a smooth radial distribution; an annulus holding at least ``min_peaks`` peaks with a
Poisson tail probability below ``p_value`` is a ring, and every peak within ``width_px`` of a
ring's radius is a ring spot.  The radius is the equivalent radius on a flat detector normal to
the beam, ``tan(2 theta)`` times the detector distance in pixels (tilted and multi-panel
detectors alike), from the geometry; without one there is no test.

Default ``p_value`` 1e-7: on 2000 simulated frames of 50-3000 peaks spread smoothly in radius, no
chance crowding was called a ring (1e-6: 3).  On the real frames in ``../shared`` (thaumatin
stills with ~1300 peaks, CSPAD thermolysin, L-cysteine) it flags nothing; on the DLS I03 rotation
frame it flags the 7 spots of the 2.25 A ice ring among the argmax peaks (DIALS lists them as
spots; 6 at a minimum confidence of 0.55, none at 0.575, where fewer than ``min_peaks`` remain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.stats import poisson

from ..errors import GeometryError
from .peaklist import PeakList


@dataclass(frozen=True)
class RingTest:
    """Parameters of the powder-ring test (module docstring); not user settings."""

    width_px: float = 2.0  # half-width of a ring's annulus
    context_px: float = 30.0  # half-width of the radial neighbourhood that sets the expectation
    p_value: float = 1e-7
    min_peaks: int = 6


def equivalent_length_px(geometry) -> float:
    """``L`` of :func:`equivalent_radius_px`: the median over the panels of their distance from
    the sample in pixels; NaN without a camera length."""
    try:
        centres = [((p.min_fs + p.max_fs) / 2.0, (p.min_ss + p.max_ss) / 2.0) for p in geometry.panels]
        _, _, zc = geometry.lab_xyz(np.array([c[0] for c in centres]), np.array([c[1] for c in centres]))
        length_px = float(np.nanmedian(zc * np.array([p.res for p in geometry.panels])))
    except GeometryError:
        return float("nan")
    return length_px if np.isfinite(length_px) and length_px > 0 else float("nan")


def equivalent_radius_px(fs: np.ndarray, ss: np.ndarray, geometry) -> Optional[np.ndarray]:
    """``tan(2 theta) * L`` of the positions (pixel-index coordinates), ``L`` the median over the
    panels of their distance in pixels: the radius on a flat detector normal to the beam at that
    distance.  Without a camera length, the in-plane distance from the beam axis.  None without
    a geometry; NaN outside the panels."""
    if geometry is None or len(geometry.panels) == 0:
        return None
    fs = np.asarray(fs, dtype=np.float64)
    ss = np.asarray(ss, dtype=np.float64)
    length_px = equivalent_length_px(geometry)
    if np.isfinite(length_px):
        x, y, z = geometry.lab_xyz(fs, ss)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.hypot(x, y) / z * length_px
    from .detmaps import detector_maps

    maps = detector_maps(geometry, geometry.data_shape)
    iy = np.clip(np.rint(ss).astype(int), 0, maps.shape[0] - 1)
    ix = np.clip(np.rint(fs).astype(int), 0, maps.shape[1] - 1)
    return maps.radius_px[iy, ix].astype(np.float64)


def ring_annuli(radius: np.ndarray, test: RingTest = RingTest()) -> np.ndarray:
    """(n, 2) inner and outer radii of the annuli that hold too many peaks (module docstring),
    sorted; the annuli of neighbouring crowded radii are merged."""
    r = np.asarray(radius, dtype=np.float64)
    o = np.sort(r[np.isfinite(r)])
    if len(o) < test.min_peaks:
        return np.zeros((0, 2))
    w, c = float(test.width_px), float(test.context_px)
    lo, hi = np.searchsorted(o, o - w, "left"), np.searchsorted(o, o + w, "right")
    k = hi - lo
    inner = lo - np.searchsorted(o, o - c, "left")
    outer = np.searchsorted(o, o + c, "right") - hi
    # peaks per pixel of radius beside the annulus: the denser side (an edge of the detector,
    # the beamstop's shadow or a resolution cut-off empties the other), at least half a peak
    density = np.maximum(np.maximum(inner, outer), 0.5) / (c - w)
    p = poisson.sf(k - 1, density * 2.0 * w)
    centres = o[(k >= test.min_peaks) & (p < test.p_value)]
    if not len(centres):
        return np.zeros((0, 2))
    groups = np.split(centres, np.flatnonzero(np.diff(centres) > 2.0 * w) + 1)
    return np.array([(g[0] - w, g[-1] + w) for g in groups])


def powder_ring_peaks(radius: Optional[np.ndarray], test: RingTest = RingTest()) -> np.ndarray:
    """True for the peaks (by their equivalent radius, :func:`equivalent_radius_px`) inside a
    crowded annulus (:func:`ring_annuli`); all False when ``radius`` is None."""
    if radius is None:
        return np.zeros(0, dtype=bool)
    r = np.asarray(radius, dtype=np.float64)
    flags = np.zeros(len(r), dtype=bool)
    for lo, hi in ring_annuli(r, test):
        flags |= (r >= lo) & (r <= hi)
    return flags


def split_ring_peaks(peaks: PeakList, geometry, test: RingTest = RingTest()) -> tuple:
    """(peaks off the rings, ring spots) of ``peaks`` (module docstring)."""
    if len(peaks) < test.min_peaks:
        return peaks, PeakList()
    flags = powder_ring_peaks(equivalent_radius_px(peaks.fs, peaks.ss, geometry), test)
    if not flags.any():
        return peaks, PeakList()
    return peaks.select(~flags), peaks.select(flags)


def mask_spots(mask: np.ndarray, spots: PeakList, *, margin: int = 1) -> np.ndarray:
    """``mask`` with a disc over each spot (radius from its pixel count, plus ``margin``)."""
    if not len(spots):
        return mask
    out = mask.copy()
    h, w = out.shape
    radii = np.ceil(np.sqrt(np.maximum(spots.npix, 1) / np.pi)).astype(int) + int(margin)
    for x, y, r in zip(np.rint(spots.fs).astype(int), np.rint(spots.ss).astype(int), radii):
        y0, y1, x0, x1 = max(0, y - r), min(h, y + r + 1), max(0, x - r), min(w, x + r + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        out[y0:y1, x0:x1] |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
    return out
