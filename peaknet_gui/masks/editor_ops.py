"""What the mask editor computes (Qt-free): drawn shapes, value ranges, resolution annuli and whole
panels as boolean pixel masks of the frame's data array, and an editable mask with undo/redo.

Shapes are drawn on the *displayed* (assembled) image, in its scene coordinates: display pixel
``(row, col)`` covers ``[col, col+1) x [row, row+1)`` (see :mod:`peaknet_gui.gui.display`).  A data
pixel belongs to a shape when the scene position of its **centre** lies inside the shape, so on a
multi-panel detector every panel pixel is mapped back exactly, whatever the panel's orientation
(:class:`PixelCentres`).  Without a geometry the scene is the data array itself
(``x = fs + 0.5``, ``y = ss + 0.5``).

Masks are bool arrays of the data shape, True = masked (bad), as everywhere in the program.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import GeometryError


# --- shapes (scene coordinates) ---------------------------------------------------------------------
@dataclass(frozen=True)
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float

    def bbox(self) -> tuple:
        return min(self.x0, self.x1), min(self.y0, self.y1), max(self.x0, self.x1), max(self.y0, self.y1)


@dataclass(frozen=True)
class Circle:
    cx: float
    cy: float
    r: float

    def bbox(self) -> tuple:
        r = abs(self.r)
        return self.cx - r, self.cy - r, self.cx + r, self.cy + r


@dataclass(frozen=True)
class Polygon:
    points: tuple  # ((x, y), ...), at least 3

    def bbox(self) -> tuple:
        p = np.asarray(self.points, dtype=np.float64).reshape(-1, 2)
        return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


@dataclass(frozen=True)
class Stroke:
    """A brush (or eraser) stroke: every pixel within ``radius`` of the polyline ``points``."""

    points: tuple  # ((x, y), ...), at least 1
    radius: float

    def bbox(self) -> tuple:
        p = np.asarray(self.points, dtype=np.float64).reshape(-1, 2)
        r = abs(self.radius)
        return float(p[:, 0].min()) - r, float(p[:, 1].min()) - r, float(p[:, 0].max()) + r, float(p[:, 1].max()) + r


Shape = Union[Rect, Circle, Polygon, Stroke]


def _inside_polygon(x: np.ndarray, y: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Even-odd rule: True where (x, y) is inside the closed polygon ``pts`` (N x 2)."""
    inside = np.zeros(x.shape, dtype=bool)
    n = len(pts)
    for i in range(n):
        xa, ya = pts[i]
        xb, yb = pts[(i + 1) % n]
        if ya == yb:
            continue
        crosses = (ya > y) != (yb > y)
        xi = xa + (y - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (x < xi)
    return inside


def _near_polyline(x: np.ndarray, y: np.ndarray, pts: np.ndarray, r: float) -> np.ndarray:
    """True where (x, y) is within ``r`` of the polyline ``pts`` (N x 2, N >= 1)."""
    r2 = float(r) * float(r)
    near = (x - pts[0, 0]) ** 2 + (y - pts[0, 1]) ** 2 <= r2
    for (xa, ya), (xb, yb) in zip(pts[:-1], pts[1:]):
        dx, dy = xb - xa, yb - ya
        L2 = dx * dx + dy * dy
        if L2 == 0.0:
            continue
        t = np.clip(((x - xa) * dx + (y - ya) * dy) / L2, 0.0, 1.0)
        near |= (x - (xa + t * dx)) ** 2 + (y - (ya + t * dy)) ** 2 <= r2
    return near


class PixelCentres:
    """Scene position of every data pixel's centre, for one frame shape and display layout.

    ``assembler`` (:class:`~peaknet_gui.geometry.assemble.Assembler`) None: the display is the
    data array.  Pixels outside every panel are never selected.  When every panel pixel sits on
    one display pixel (:attr:`Assembler.pixel_aligned`: all but rotated or scaled panels), a shape
    is tested on the display pixels of its bounding box and mapped back through the display's
    index map; otherwise every data pixel's centre is mapped to the display once and tested.
    """

    def __init__(self, shape: tuple, assembler=None):
        self.shape = (int(shape[-2]), int(shape[-1]))
        self.assembler = assembler
        self.x = self.y = None
        self._index = None  # display pixel -> flat data index (-1: none), aligned layouts
        if assembler is None:
            return
        if getattr(assembler, "pixel_aligned", False):
            idx = assembler.display_to_data_index()
            self._index = idx.astype(np.int32) if idx.size and idx.max() < 2**31 - 1 else idx
            return
        if hasattr(assembler, "data_pixel_positions"):
            row, col = assembler.data_pixel_positions()
        else:
            ss, fs = np.mgrid[0:self.shape[0], 0:self.shape[1]]
            row, col = assembler.to_display(fs.ravel().astype(np.float64), ss.ravel().astype(np.float64))
        self.x = (np.asarray(col, dtype=np.float64) + 0.5).astype(np.float32).reshape(self.shape)
        self.y = (np.asarray(row, dtype=np.float64) + 0.5).astype(np.float32).reshape(self.shape)

    def select(self, shape: Shape) -> np.ndarray:
        """Bool mask (data shape): pixels whose centre lies inside ``shape``."""
        out = np.zeros(self.shape, dtype=bool)
        x0, y0, x1, y1 = shape.bbox()
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            return out
        if self.x is None:  # the data array or an aligned display: test the pixels of the bounding box
            h, w = self.shape if self._index is None else self._index.shape
            c0, c1 = max(int(math.floor(x0 - 0.5)), 0), min(int(math.ceil(x1 - 0.5)) + 1, w)
            r0, r1 = max(int(math.floor(y0 - 0.5)), 0), min(int(math.ceil(y1 - 0.5)) + 1, h)
            if c1 <= c0 or r1 <= r0:
                return out
            inside = _grid_contains(shape, r0, r1, c0, c1)
            if self._index is None:
                out[r0:r1, c0:c1] = inside
            else:
                idx = self._index[r0:r1, c0:c1][inside]
                out.ravel()[idx[idx >= 0]] = True
            return out
        cand = (self.x >= x0) & (self.x <= x1) & (self.y >= y0) & (self.y <= y1)
        idx = np.flatnonzero(cand)
        if idx.size:
            hit = _shape_contains(shape, self.x.ravel()[idx].astype(np.float64), self.y.ravel()[idx].astype(np.float64))
            out.ravel()[idx[hit]] = True
        return out


def _polygon_rows(pts: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Scanline fill of the grid rows r0..r1-1, columns c0..c1-1 (pixel centres at +0.5): the same
    pixels as :func:`_inside_polygon` (even-odd rule, same crossing formula), in O(rows x edges)."""
    out = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    y = np.arange(r0, r1, dtype=np.float64) + 0.5
    xs = []
    n = len(pts)
    for i in range(n):
        xa, ya = pts[i]
        xb, yb = pts[(i + 1) % n]
        if ya == yb:
            continue
        crosses = (ya > y) != (yb > y)
        xi = np.where(crosses, xa + (y - ya) * (xb - xa) / (yb - ya), np.nan)
        xs.append(xi)
    if not xs:
        return out
    xs = np.sort(np.stack(xs, axis=1), axis=1)  # NaN (no crossing) sorts last
    for k, row in enumerate(xs):
        row = row[np.isfinite(row)]
        for a, b in zip(row[0::2], row[1::2]):  # inside: a <= x < b for the centre x = c + 0.5
            lo = max(int(math.ceil(a - 0.5)), c0)
            hi = min(int(math.ceil(b - 0.5)), c1)
            if hi > lo:
                out[k, lo - c0:hi - c0] = True
    return out


def _grid_contains(shape: Shape, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Pixels of the grid window (rows r0..r1-1, columns c0..c1-1, centres at +0.5) inside ``shape``."""
    if isinstance(shape, Polygon):
        pts = np.asarray(shape.points, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 3:
            return np.zeros((r1 - r0, c1 - c0), dtype=bool)
        return _polygon_rows(pts, r0, r1, c0, c1)
    if isinstance(shape, Stroke):  # segment by segment, each in its own small window
        out = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        pts = np.asarray(shape.points, dtype=np.float64).reshape(-1, 2)
        r = abs(float(shape.radius))
        segs = [(pts[0], pts[0])] + list(zip(pts[:-1], pts[1:]))
        for a, b in segs:
            sc0 = max(int(math.floor(min(a[0], b[0]) - r - 0.5)), c0)
            sc1 = min(int(math.ceil(max(a[0], b[0]) + r - 0.5)) + 1, c1)
            sr0 = max(int(math.floor(min(a[1], b[1]) - r - 0.5)), r0)
            sr1 = min(int(math.ceil(max(a[1], b[1]) + r - 0.5)) + 1, r1)
            if sc1 <= sc0 or sr1 <= sr0:
                continue
            yy, xx = np.mgrid[sr0:sr1, sc0:sc1]
            out[sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0] |= _near_polyline(xx + 0.5, yy + 0.5, np.array([a, b]), r)
        return out
    yy, xx = np.mgrid[r0:r1, c0:c1]
    return _shape_contains(shape, xx + 0.5, yy + 0.5)


def _shape_contains(shape: Shape, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if isinstance(shape, Rect):
        x0, y0, x1, y1 = shape.bbox()
        return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    if isinstance(shape, Circle):
        return (x - shape.cx) ** 2 + (y - shape.cy) ** 2 <= shape.r * shape.r
    if isinstance(shape, Polygon):
        pts = np.asarray(shape.points, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 3:
            return np.zeros(x.shape, dtype=bool)
        return _inside_polygon(x, y, pts)
    if isinstance(shape, Stroke):
        pts = np.asarray(shape.points, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0:
            return np.zeros(x.shape, dtype=bool)
        return _near_polyline(x, y, pts, shape.radius)
    raise TypeError(f"not a mask shape: {shape!r}")


# --- masks from values, resolution, panels -----------------------------------------------------------
def display_values(data: np.ndarray, log_scale: bool) -> np.ndarray:
    """The values the histogram's levels refer to: log10 of the values (below 1 as 0) or the values."""
    d = np.asarray(data, dtype=np.float32)
    return np.log10(np.maximum(d, np.float32(1.0))) if log_scale else d


def value_range_pixels(data: np.ndarray, levels: tuple, log_scale: bool = False,
                       bad: Optional[np.ndarray] = None) -> np.ndarray:
    """Pixels outside the display levels: shown below ``levels[0]`` or above ``levels[1]`` (levels in
    the display's scale: log10 when ``log_scale``).  ``bad`` pixels (gaps) are left out."""
    lo, hi = float(min(levels)), float(max(levels))
    v = display_values(data, log_scale)
    out = (v < lo) | (v > hi)
    if bad is not None:
        out &= ~np.asarray(bad, dtype=bool)
    return out


def d_spacing_map(geometry, shape: tuple, photon_energy_ev: Optional[float] = None) -> np.ndarray:
    """d-spacing (Angstrom, float32, data shape) of every pixel: inf at the beam, NaN outside the
    panels.  Needs the detector distance and the photon energy (``photon_energy_ev`` or the
    geometry's); raises :class:`GeometryError` naming what is missing."""
    from ..geometry.pixelmap import pixel_map

    if geometry is None:
        raise GeometryError("masking a resolution range needs a detector geometry (File > Open geometry)")
    e = photon_energy_ev or geometry.photon_energy_ev
    if not e or e <= 0:
        raise GeometryError(f"{geometry.source or 'geometry'}: photon energy unknown: cannot compute d-spacings")
    pm = pixel_map(geometry, tuple(shape[-2:]), photon_energy_ev=e)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pm.resolution_a.astype(np.float32)


def resolution_pixels(geometry, shape: tuple, d_min_a: float, d_max_a: float,
                      photon_energy_ev: Optional[float] = None, d_map: Optional[np.ndarray] = None) -> np.ndarray:
    """Pixels whose d-spacing lies in ``[d_min_a, d_max_a]`` Angstrom: an annulus around the beam
    (an ice ring: 3.64-3.70), everything finer than D (0 and D) or coarser than D (D and inf).
    ``d_map`` (from :func:`d_spacing_map`) saves computing it again."""
    lo, hi = float(min(d_min_a, d_max_a)), float(max(d_min_a, d_max_a))
    d = d_map if d_map is not None else d_spacing_map(geometry, shape, photon_energy_ev)
    with np.errstate(invalid="ignore"):
        return (d >= lo) & (d <= hi)


def panel_pixels(geometry, shape: tuple, panels: Sequence) -> np.ndarray:
    """Every pixel of the given panels (indices or names); without a geometry panel 0 is the frame."""
    shape = (int(shape[-2]), int(shape[-1]))
    out = np.zeros(shape, dtype=bool)
    for p in panels:
        if geometry is None:
            if p in (0, "0"):
                out[...] = True
                continue
            raise GeometryError(f"no geometry: there is no panel {p!r} (the frame is one panel)")
        i = geometry.panel_index(p) if isinstance(p, str) else int(p)
        if not 0 <= i < len(geometry.panels):
            raise GeometryError(f"{geometry.source or 'geometry'}: no panel {p!r}")
        out[geometry.panels[i].slices()] = True
    return out


# --- the editable mask --------------------------------------------------------------------------------
@dataclass
class _Edit:
    flips: np.ndarray  # flat indices whose value changed
    label: str


class EditableMask:
    """The mask being edited (bool, data shape, True = masked) with undo/redo.

    Every edit stores only the pixels it changed (a pixel's change is a flip), so undo and redo
    flip them back; the history keeps at most ``max_history_pixels`` changed pixels in all (the
    oldest edits are forgotten first).  ``revision`` grows with every change (tells whether the
    mask applied to analysis is the current one).
    """

    def __init__(self, shape: tuple, initial: Optional[np.ndarray] = None, max_history_pixels: int = 50_000_000):
        self.shape = (int(shape[-2]), int(shape[-1]))
        self._mask = np.zeros(self.shape, dtype=bool)
        if initial is not None:
            self._check(initial)
            self._mask[...] = np.asarray(initial, dtype=bool)
        self._undo: list = []
        self._redo: list = []
        self.max_history_pixels = int(max_history_pixels)
        self.revision = 0

    def _check(self, arr) -> None:
        if tuple(np.shape(arr)[-2:]) != self.shape or np.ndim(arr) != 2:
            raise ValueError(f"mask of shape {np.shape(arr)} does not match the frame's {self.shape}")

    @property
    def mask(self) -> np.ndarray:
        """The mask (read-only view; copy it to keep it)."""
        v = self._mask.view()
        v.flags.writeable = False
        return v

    @property
    def n_masked(self) -> int:
        return int(np.count_nonzero(self._mask))

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_label(self) -> str:
        return self._undo[-1].label if self._undo else ""

    @property
    def redo_label(self) -> str:
        return self._redo[-1].label if self._redo else ""

    def _record(self, flips: np.ndarray, label: str) -> int:
        if flips.size == 0:
            return 0
        self._mask.ravel()[flips] ^= True
        self._undo.append(_Edit(flips, label))
        self._redo.clear()
        while len(self._undo) > 1 and sum(e.flips.size for e in self._undo) > self.max_history_pixels:
            self._undo.pop(0)
        self.revision += 1
        return int(flips.size)

    def apply(self, pixels: np.ndarray, masked: bool = True, label: str = "") -> int:
        """Mask (``masked``) or unmask the selected ``pixels``; returns how many pixels changed
        (an edit that changes nothing is not recorded)."""
        self._check(pixels)
        sel = np.asarray(pixels, dtype=bool)
        change = sel & (self._mask != bool(masked))
        return self._record(np.flatnonzero(change), label or ("mask" if masked else "unmask"))

    def replace(self, new_mask: np.ndarray, label: str = "replace") -> int:
        """Make the mask ``new_mask`` (e.g. a loaded file) as one undoable edit."""
        self._check(new_mask)
        return self._record(np.flatnonzero(np.asarray(new_mask, dtype=bool) != self._mask), label)

    def clear(self) -> int:
        return self.replace(np.zeros(self.shape, dtype=bool), "clear")

    def invert(self) -> int:
        return self.replace(~self._mask, "invert")

    def undo(self) -> Optional[str]:
        if not self._undo:
            return None
        e = self._undo.pop()
        self._mask.ravel()[e.flips] ^= True
        self._redo.append(e)
        self.revision += 1
        return e.label

    def redo(self) -> Optional[str]:
        if not self._redo:
            return None
        e = self._redo.pop()
        self._mask.ravel()[e.flips] ^= True
        self._undo.append(e)
        self.revision += 1
        return e.label
