"""Spots of a powder ring (ice, salt, a calibrant): too many peaks at one scattering angle.

A spotty powder ring -- ice crystallites, salt, a few grains of a calibrant -- puts bright,
compact spots on a circle about the beam.  Each looks like a Bragg peak; only the circle they
share says otherwise, and the network, which sees a few hundred pixels around each spot at
quarter resolution, cannot see the circle.  The peak list can: Bragg peaks of a crystal are
spread smoothly in scattering angle, the spots of a ring crowd into an annulus a few pixels wide.

:func:`powder_ring_peaks` counts, for every peak, the peaks within a half-width of its radius
(1 and 2 px, ``widths_px``: a sharp calibrant ring, a ring of ice or salt spread over a few
pixels) and compares that count with what the peaks within ``context_px`` (the annulus itself
left out) predict for a smooth radial distribution; an annulus holding at least ``min_peaks``
peaks with a Poisson tail probability below ``p_value`` is a ring, and every peak inside it is a
ring spot.  The spots of the rings found are then left out of the other radii's context and the
test repeats: the orders of a calibrant (silver behenate: rings 15.6 px apart on the demo's
Rayonix) otherwise sit in each other's context and hide each other.  Once a frame holds a ring it
holds a powder, and its other rings need only ``min_peaks_beside_rings`` spots (the p-value
still decides).  An annulus whose spots come in Friedel pairs (a spot at -p for one at p, about
the beam) is a crystal's zone, not a ring: the symmetry-equivalent reflections of a still near a
zone axis share a radius too.  The radius is the equivalent radius on a flat detector normal to
the beam, ``tan(2 theta)`` times the detector distance in pixels (tilted and multi-panel
detectors alike), from the geometry; without one there is no test.

Default ``p_value`` 1e-7.  On 6000 simulated frames of 20-3000 peaks spread smoothly in radius,
4 had a chance crowding called a ring (the 2-px annulus alone, the test before 2026-12-07: 1);
on 150 simulated stills at a zone axis (sets of 4 and 8 equivalents, a fifth of them missing)
the radius alone flags a ring on 77, the Friedel-pair guard on none.  On the demo's
silver-behenate frame it takes 43 of the 45 components v14 finds there (rings n = 1-5; the 2-px
test alone: none) and 42 of 49 at the segmentation threshold of v14's refitted operating point
(0.3; the sparse rings n = 2 and 5 hold 5 spots each): the frame is no hit.  On the real frames
in ``../shared`` (thaumatin stills with ~1300 peaks, CSPAD thermolysin, JUNGFRAU, I03, I23,
L-cysteine) v14's figures against DIALS are the same with either test
(``benchmarks/bench_real_frames.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import poisson

from ..errors import GeometryError
from .peaklist import PeakList


@dataclass(frozen=True)
class RingTest:
    """Parameters of the powder-ring test (module docstring); not user settings."""

    widths_px: Tuple[float, ...] = (1.0, 2.0)  # half-widths of a ring's annulus, each tested
    context_px: float = 30.0  # half-width of the radial neighbourhood that sets the expectation
    p_value: float = 1e-7
    min_peaks: int = 6
    min_peaks_beside_rings: int = 4  # once a frame holds a ring, its other rings need this many spots
    max_rounds: int = 8  # of leaving found rings out of the others' context
    pair_px: float = 2.0  # a spot's Friedel mate: within this of its point mirrored through the beam
    zone_fraction: float = 0.5  # an annulus with at least this fraction of spots in Friedel pairs is a zone


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


def equivalent_polar(fs: np.ndarray, ss: np.ndarray, geometry) -> tuple:
    """(radius, azimuth) of the positions (pixel-index coordinates) about the beam, from one pass
    through the geometry.  The radius is ``tan(2 theta) * L``, ``L`` the median over the panels of
    their distance in pixels: the radius on a flat detector normal to the beam at that distance;
    without a camera length, the in-plane distance from the beam axis.  The azimuth (radians, lab
    frame) needs the camera length too (None without).  (None, None) without a geometry; NaN
    outside the panels."""
    if geometry is None or len(geometry.panels) == 0:
        return None, None
    fs = np.asarray(fs, dtype=np.float64)
    ss = np.asarray(ss, dtype=np.float64)
    length_px = equivalent_length_px(geometry)
    if np.isfinite(length_px):
        x, y, z = geometry.lab_xyz(fs, ss)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.hypot(x, y) / z * length_px, np.arctan2(y, x)
    from .detmaps import detector_maps

    maps = detector_maps(geometry, geometry.data_shape)
    iy = np.clip(np.rint(ss).astype(int), 0, maps.shape[0] - 1)
    ix = np.clip(np.rint(fs).astype(int), 0, maps.shape[1] - 1)
    return maps.radius_px[iy, ix].astype(np.float64), None


def equivalent_radius_px(fs: np.ndarray, ss: np.ndarray, geometry) -> Optional[np.ndarray]:
    """The radius of :func:`equivalent_polar`; None without a geometry."""
    return equivalent_polar(fs, ss, geometry)[0]


def _crowded(o: np.ndarray, w: float, test: RingTest, left_out: np.ndarray, min_peaks: int) -> np.ndarray:
    """For each of the sorted radii ``o``: does the annulus of half-width ``w`` about it hold too
    many peaks (at least ``min_peaks``) for what its context predicts?  The context counts the
    peaks within ``test.context_px`` on either side of the annulus, except those ``left_out``
    (the spots of rings already found: a neighbouring ring is no measure of the smooth Bragg
    background)."""
    c = float(test.context_px)
    lo, hi = np.searchsorted(o, o - w, "left"), np.searchsorted(o, o + w, "right")
    k = hi - lo
    counted = np.concatenate([[0], np.cumsum(~left_out)])
    inner = counted[lo] - counted[np.searchsorted(o, o - c, "left")]
    outer = counted[np.searchsorted(o, o + c, "right")] - counted[hi]
    # peaks per pixel of radius beside the annulus: the denser side (an edge of the detector,
    # the beamstop's shadow or a resolution cut-off empties the other), at least half a peak
    density = np.maximum(np.maximum(inner, outer), 0.5) / (c - w)
    p = poisson.sf(k - 1, density * 2.0 * w)
    return (k >= min_peaks) & (p < test.p_value)


def _annuli_of(o: np.ndarray, centres: np.ndarray, w: float, test: RingTest,
               xy: Optional[np.ndarray]) -> list:
    """Annuli of half-width ``w`` about the crowded radii ``centres`` (sorted), neighbours merged;
    with the spots' positions ``xy`` (in the order of ``o``), those that are a crystal's zone
    (:func:`_is_zone`) are left out."""
    if not len(centres):
        return []
    groups = np.split(centres, np.flatnonzero(np.diff(centres) > 2.0 * w) + 1)
    annuli = [(g[0] - w, g[-1] + w) for g in groups]
    if xy is None:
        return annuli
    return [(lo, hi) for lo, hi in annuli if not _is_zone(xy[(o >= lo) & (o <= hi)], test)]


def _is_zone(xy: np.ndarray, test: RingTest) -> bool:
    """Do the spots at positions ``xy`` (equivalent positions about the beam) come in Friedel
    pairs, a spot at -p for a spot at p?  The symmetry-equivalent reflections of a still near a
    zone axis do (both mates of a reflection whose plane holds the beam are on the Ewald
    sphere) and share a radius like a powder ring; the grains of a powder sit at random
    azimuths.  On the demo's silver-behenate frame 2 of 32 ring spots have a mate within 2 px."""
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    if len(xy) < 2:
        return False
    d, _ = cKDTree(xy).query(-xy)
    return bool(np.mean(d <= test.pair_px) >= test.zone_fraction)


def ring_annuli(radius: np.ndarray, test: RingTest = RingTest(), azimuth: Optional[np.ndarray] = None) -> np.ndarray:
    """(n, 2) inner and outer radii of the annuli that hold too many peaks (module docstring),
    sorted, overlapping annuli merged.

    Each half-width of ``test.widths_px`` is tested (a sharp calibrant ring a pixel wide, a
    ring of ice or salt spread over a few).  The spots of the rings found are then left out of
    the context of the others and the test repeats until no new ring appears: rings a few
    context widths apart (the orders of silver behenate) otherwise raise each other's
    expectation and hide each other.  Only rings that pass the full test are left out, so a
    frame whose every radius is a little crowded (symmetry-equivalent reflections of a
    near-zone-axis still) keeps its dense context.  With the spots' azimuths (radians about the
    beam, :func:`equivalent_polar`), an annulus whose spots come in Friedel pairs is a
    crystal's zone, not a ring (:func:`_is_zone`)."""
    r = np.asarray(radius, dtype=np.float64)
    finite = np.isfinite(r)
    order = np.argsort(r[finite], kind="stable")
    o = r[finite][order]
    xy = None
    if azimuth is not None:
        a = np.asarray(azimuth, dtype=np.float64)[finite][order]
        xy = np.stack([o * np.cos(a), o * np.sin(a)], axis=1)
    if len(o) < test.min_peaks:
        return np.zeros((0, 2))
    left_out = np.zeros(len(o), dtype=bool)
    annuli: list = []
    for _ in range(max(1, test.max_rounds)):
        annuli = []
        # a frame that holds a powder ring holds a powder: its other rings may be sparser
        need = test.min_peaks_beside_rings if left_out.any() else test.min_peaks
        for w in test.widths_px:
            annuli += _annuli_of(o, o[_crowded(o, float(w), test, left_out, need)], float(w), test, xy)
        inside = np.zeros(len(o), dtype=bool)
        for lo, hi in annuli:
            inside |= (o >= lo) & (o <= hi)
        if np.array_equal(inside, left_out):
            break
        left_out = inside
    return _merged(annuli)


def _merged(annuli: list) -> np.ndarray:
    """Sorted (n, 2) intervals with overlapping ones joined."""
    if not annuli:
        return np.zeros((0, 2))
    out = []
    for lo, hi in sorted(annuli):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return np.array(out, dtype=np.float64)


def powder_ring_peaks(radius: Optional[np.ndarray], test: RingTest = RingTest(),
                      azimuth: Optional[np.ndarray] = None) -> np.ndarray:
    """True for the peaks (by their equivalent radius, :func:`equivalent_radius_px`, and, when
    given, azimuth, :func:`equivalent_polar`) inside a crowded annulus (:func:`ring_annuli`);
    all False when ``radius`` is None."""
    if radius is None:
        return np.zeros(0, dtype=bool)
    r = np.asarray(radius, dtype=np.float64)
    flags = np.zeros(len(r), dtype=bool)
    for lo, hi in ring_annuli(r, test, azimuth):
        flags |= (r >= lo) & (r <= hi)
    return flags


def split_ring_peaks(peaks: PeakList, geometry, test: RingTest = RingTest()) -> tuple:
    """(peaks off the rings, ring spots) of ``peaks`` (module docstring)."""
    if len(peaks) < test.min_peaks:
        return peaks, PeakList()
    radius, azimuth = equivalent_polar(peaks.fs, peaks.ss, geometry)
    flags = powder_ring_peaks(radius, test, azimuth)
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
