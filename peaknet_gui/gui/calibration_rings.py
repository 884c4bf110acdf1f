"""Calibrant rings as polylines on the detector image: what the calibration dock's overlay draws.

Qt-free: :func:`ring_paths` traces the rings of a calibrant at one geometry (each scattering cone
cut with the panels' planes: ellipses on a tilted detector, arcs where the beam is off the
detector; any panel layout) in data (fs, ss) and, through the display's mapper, scene
coordinates; :func:`beam_scene` places a geometry's direct beam in the display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import GeometryError
from ..geometry.detector import Geometry

@dataclass
class RingPaths:
    """The calibrant's rings at one geometry, on the detector: each ring as a polyline in scene
    coordinates (NaN between separate arcs) and in data coordinates."""

    rings: list  # ExpectedRing, only those on the detector
    x: list  # per ring: scene x (float64, NaN breaks)
    y: list
    fs: list  # per ring: data fs / ss along the same points
    ss: list
    beam: Optional[tuple] = None  # scene (x, y) of the beam when the mapper can place it


#: at most this many rings are drawn on the image (the strongest ones): a silver behenate frame can
#: hold a hundred orders a few pixels apart, which as lines would hide the image
MAX_DRAWN_RINGS = 24


def ring_paths(geometry: Geometry, calibrant: str, wavelength_a: float, shape: tuple, mapper=None, *,
               only: Optional[list] = None, max_rings: int = MAX_DRAWN_RINGS) -> RingPaths:
    """Polylines of the calibrant's rings that fall on the detector (see :class:`RingPaths`):
    the ``max_rings`` strongest (relative intensity of the calibrant), or the rings ``only``
    (calibrant ring indices, e.g. those a fit used)."""
    from ..calib.calibrants import ring_table
    from ..calib.rings import expected_rings, ring_points

    rings = expected_rings(geometry, calibrant, wavelength_a, shape, only_on_detector=True, n_azimuth=360)
    if only is not None:
        wanted = {int(i) for i in only}
        rings = [r for r in rings if r.index in wanted]
    elif len(rings) > max_rings:
        table = ring_table(calibrant, wavelength_a)
        strength = dict(zip(table.index.tolist(), table.intensity.tolist()))
        keep = sorted(rings, key=lambda r: -strength.get(r.index, 0.0))[:max_rings]
        rings = sorted(keep, key=lambda r: r.twotheta_rad)
    out = RingPaths(rings=[], x=[], y=[], fs=[], ss=[])
    for ring in rings:
        n = int(np.clip(2.0 * math.pi * max(ring.radius_px, 1.0) / 3.0, 180, 4096))  # a point every ~3 px
        fs, ss = ring_points(geometry, ring.twotheta_rad, n, shape=shape, keep_nan_breaks=True)
        if not np.isfinite(fs).any():
            continue
        fs, ss = _close_loop(fs, ss)
        if mapper is not None:
            x, y = mapper.data_to_scene(fs, ss)
            x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        else:
            x, y = fs + 0.5, ss + 0.5
        out.rings.append(ring)
        out.x.append(x)
        out.y.append(y)
        out.fs.append(fs)
        out.ss.append(ss)
    out.beam = beam_scene(geometry, mapper)
    return out


def beam_scene(geometry: Geometry, mapper=None) -> Optional[tuple]:
    """Scene (x, y) of ``geometry``'s direct beam in a display laid out by ``mapper`` (which may
    belong to another geometry of the same detector); on panel 0's plane, possibly off the image."""
    try:
        bfs, bss = geometry.beam_center(0)
    except (GeometryError, ValueError, np.linalg.LinAlgError):
        return None
    assembler = getattr(mapper, "assembler", None)
    if assembler is None:
        return (bfs + 0.5, bss + 0.5)
    p0 = assembler.geom.panels[0]  # the display's own panel 0: where (bfs, bss) lies in its lab frame
    u, v = bfs - p0.min_fs + 0.5, bss - p0.min_ss + 0.5
    x = p0.corner_x + u * p0.fs[0] + v * p0.ss[0]
    y = p0.corner_y + u * p0.fs[1] + v * p0.ss[1]
    k = assembler.pixel_size * p0.res
    return mapper.lab_to_scene(x * k, y * k)


def _close_loop(fs: np.ndarray, ss: np.ndarray) -> tuple:
    """A full ring (no break at the +/-180 degree seam) joined back to its first point; an arc
    that crosses the seam rolled so it is drawn in one piece."""
    fin = np.isfinite(fs)
    if fin.all():
        return np.append(fs, fs[0]), np.append(ss, ss[0])
    if fin[0] and fin[-1]:  # one arc split by the seam: start it at a break instead
        k = int(np.flatnonzero(~fin)[-1]) + 1
        return np.roll(fs, -k), np.roll(ss, -k)
    return fs, ss


def concatenated(paths: RingPaths) -> tuple:
    """(x, y) of every ring in one array pair, NaN between rings (for one curve item)."""
    if not paths.x:
        return np.zeros(0), np.zeros(0)
    xs, ys = [], []
    for x, y in zip(paths.x, paths.y):
        xs += [x, [np.nan]]
        ys += [y, [np.nan]]
    return np.concatenate(xs), np.concatenate(ys)


__all__ = ["RingPaths", "ring_paths", "beam_scene", "concatenated", "MAX_DRAWN_RINGS"]
