"""Physical sanity of a geometry read from a file: values CrystFEL would take but that cannot be.

* every panel's distance (``clen + coffset``) is a finite distance > 0 (``clen = -5`` put every
  peak at 1/d = 15.38 nm^-1; dxtbx's ``clen = 0`` with ``coffset = 0.13`` is fine);
* panel corners and directions are finite; a panel is at most :data:`MAX_PANEL_PIXELS` wide;
* no two panels cover the same part of the detector plane (an overlap deeper than a pixel:
  a typo in a corner); panels that merely touch or share an edge are fine.

:func:`check_geometry_sanity` (called by ``read_geom`` on a user's file; geometries embedded in streams
are parsed as they are) raises :class:`~peaknet_gui.errors.GeometryError` naming the
file and the problem.  :func:`crystfel_gaps` lists what an exported geometry lacks for CrystFEL
(the caller warns).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..errors import GeometryError

MAX_PANEL_PIXELS = 100_000


def check_geometry_sanity(geom, source: Optional[str] = None) -> None:
    src = source or getattr(geom, "source", None) or "geometry"
    if geom.clen is not None and not math.isfinite(geom.clen):
        raise GeometryError(f"{src}: clen = {geom.clen:g}: the camera length must be a finite distance in metres")
    for p in geom.panels:
        w, h = p.max_fs - p.min_fs + 1, p.max_ss - p.min_ss + 1
        if w > MAX_PANEL_PIXELS or h > MAX_PANEL_PIXELS:
            raise GeometryError(f"{src}: panel {p.name} is {w}x{h} pixels (at most {MAX_PANEL_PIXELS} a side)")
        values = [p.corner_x, p.corner_y, *p.fs, *p.ss, p.res, p.coffset or 0.0]
        if not all(math.isfinite(float(v)) for v in values if v is not None):
            raise GeometryError(f"{src}: panel {p.name} has a corner, direction or pixel size that is not a finite number")
        clen = p.clen if p.clen is not None else geom.clen
        if clen is not None and not clen + (p.coffset or 0.0) > 0:
            what = f"clen = {clen:g} m" + (f" + coffset = {p.coffset:g} m" if p.coffset else "")
            raise GeometryError(f"{src}: panel {p.name}: {what} puts the panel at or behind the sample "
                                "(the camera length must be a distance > 0, in metres)")
    pair = overlapping_panels(geom)
    if pair is not None:
        a, b, depth = pair
        raise GeometryError(f"{src}: panels {a} and {b} overlap in the detector plane (by {depth:.1f} pixels); "
                            "check their corner_x/corner_y")


def _quad(p) -> tuple:
    """(origin, fs edge, ss edge) of a panel in metres in the detector plane (x, y)."""
    w, h = p.max_fs - p.min_fs + 1, p.max_ss - p.min_ss + 1
    o = np.array([p.corner_x, p.corner_y], float) / p.res
    a = np.array(p.fs[:2], float) * w / p.res
    b = np.array(p.ss[:2], float) * h / p.res
    return o, a, b


def overlapping_panels(geom, min_depth_px: float = 1.0) -> Optional[tuple]:
    """(panel a, panel b, depth in pixels) of the first pair that overlaps more than
    ``min_depth_px`` (separating-axis test on the panels' parallelograms), else None."""
    panels = list(geom.panels)
    if len(panels) < 2:
        return None
    quads = [_quad(p) for p in panels]
    pix = [1.0 / p.res for p in panels]
    corners = []
    for o, a, b in quads:
        corners.append(np.array([o, o + a, o + b, o + a + b]))
    lo = np.array([c.min(axis=0) for c in corners])
    hi = np.array([c.max(axis=0) for c in corners])
    planes = [_plane(geom, p) for p in panels]
    for i in range(len(panels)):
        # bounding boxes first: most pairs are far apart
        cand = np.nonzero(np.all(lo[i + 1:] < hi[i], axis=1) & np.all(hi[i + 1:] > lo[i], axis=1))[0] + i + 1
        for j in cand:
            if planes[i] != planes[j]:  # at different (or unknown) distances: may overlap in projection
                continue
            depth = _sat_depth(corners[i], corners[j], quads[i], quads[j])
            tol = min_depth_px * min(pix[i], pix[j])
            if depth > tol:
                return panels[i].name, panels[j].name, depth / min(pix[i], pix[j])
    return None


def _plane(geom, p) -> tuple:
    """What decides a panel's distance from the sample (panels compared only within one plane)."""
    clen = p.clen if getattr(p, "clen", None) is not None else geom.clen
    path = getattr(p, "clen_path", None) or getattr(geom, "clen_path", None)
    return (None if clen is None else round(float(clen), 6), path, round(float(p.coffset or 0.0), 6))


def _sat_depth(ci, cj, qi, qj) -> float:
    depth = math.inf
    for _o, a, b in (qi, qj):
        for edge in (a, b):
            n = np.array([-edge[1], edge[0]])
            norm = float(np.hypot(*n))
            if norm == 0:
                continue
            n /= norm
            pi, pj = ci @ n, cj @ n
            d = min(pi.max(), pj.max()) - max(pi.min(), pj.min())
            if d <= 0:
                return 0.0
            depth = min(depth, d)
    return 0.0 if depth is math.inf else depth


def crystfel_gaps(geom) -> list:
    """What a geometry written for CrystFEL lacks (camera length, photon energy), as phrases."""
    gaps = []
    if geom.clen is None and getattr(geom, "clen_path", None) is None and all(
            getattr(p, "clen", None) is None for p in geom.panels):
        gaps.append("no camera length (clen): CrystFEL cannot compute resolutions or index")
    if getattr(geom, "photon_energy_ev", None) is None and getattr(geom, "photon_energy_path", None) is None:
        gaps.append("no photon energy")
    return gaps
