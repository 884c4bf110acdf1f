"""Assemble a multi-panel data slab into one display image by the panels' lab positions.

Display orientation
-------------------
The display image is a regular grid in the detector plane (the lab x/y plane, the panels'
z components are projected away) with the pixel size of the first panel:

* display column increases with lab **+x**, display row increases with lab **+y**;
* the grid's top-left corner is the smallest x and y reached by any panel's corner;
* display pixel ``(row, col)`` has its centre at lab ``(x0 + col + 0.5, y0 + row + 0.5)`` pixels.

So a single panel with ``fs = +x``, ``ss = +y`` assembles to exactly its data array (no flip,
no transpose), and in general the display shows the detector as CrystFEL's ``hdfsee``/
``crystfel`` viewer would with +y drawn downwards (row 0 at the top of the screen).

Every display pixel takes the value of the data pixel whose area contains the display pixel's
centre (inverse, nearest-pixel mapping: no holes, rotated panels handled); display pixels
outside every panel hold the fill value (NaN for floats, 0 for integers, False for bool).
Where panels overlap, the panel defined first wins.

Index maps are computed once per (geometry, data shape); :meth:`Assembler.assemble` is then a
gather (or block copies when every panel is axis-aligned on the display grid).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import GeometryError
from .detector import Geometry

_ALIGN_TOL = 1e-6


class Assembler:
    """Precomputed mapping between a geometry's data slab and its display image."""

    def __init__(self, geom: Geometry, data_shape: tuple):
        if len(data_shape) < 2:
            raise GeometryError(f"{geom.source or 'geometry'}: data must be 2-D, got shape {tuple(data_shape)}")
        geom.check_data_shape(tuple(data_shape))
        self.geom = geom
        self.data_shape = (int(data_shape[-2]), int(data_shape[-1]))
        self.pixel_size = geom.panels[0].pixel_size  # metres per display pixel
        # panel corner and direction vectors in display-pixel units (lab x, y)
        self._cn, self._fs, self._ss = [], [], []
        xs, ys = [], []
        for p in geom.panels:
            k = self.pixel_size * p.res  # panel pixels -> display pixels
            cn = np.array([p.corner_x, p.corner_y]) / k
            fs = np.array(p.fs[:2]) / k
            ss = np.array(p.ss[:2]) / k
            self._cn.append(cn)
            self._fs.append(fs)
            self._ss.append(ss)
            for a in (0, p.width):
                for b in (0, p.height):
                    c = cn + a * fs + b * ss
                    xs.append(c[0])
                    ys.append(c[1])
        self.origin = (float(min(xs)), float(min(ys)))  # lab (x, y) of the display's top-left corner
        w = int(np.ceil(max(xs) - self.origin[0] - _ALIGN_TOL))
        h = int(np.ceil(max(ys) - self.origin[1] - _ALIGN_TOL))
        self.shape = (max(h, 1), max(w, 1))
        self._build_maps()

    # --- construction -------------------------------------------------------------------------
    def _panel_fsss(self, i: int, x, y):
        """Continuous panel-relative (u, v) (CrystFEL: pixel j spans [j, j+1)) of lab x, y."""
        m = np.array([[self._fs[i][0], self._ss[i][0]], [self._fs[i][1], self._ss[i][1]]])
        inv = np.linalg.inv(m)
        dx = x - self._cn[i][0]
        dy = y - self._cn[i][1]
        return inv[0, 0] * dx + inv[0, 1] * dy, inv[1, 0] * dx + inv[1, 1] * dy

    def _build_maps(self) -> None:
        blocks = [self._aligned_block(i, p) for i, p in enumerate(self.geom.panels)]
        self.panel_map = np.full(self.shape, -1, dtype=np.int16)  # panel index per display pixel
        if all(b is not None for b in blocks):
            for i, b in enumerate(blocks):
                sub = self.panel_map[b[4]]
                if (sub >= 0).any():
                    break  # panels overlap: the general gather decides who wins
                sub[...] = i
            else:
                self._blocks = blocks
                self._gather = None
                return
        self._blocks = None
        self._build_gather()

    def _build_gather(self) -> None:
        """Flat gather index: display pixel -> data pixel (n_data where no panel covers it)."""
        self.panel_map.fill(-1)
        H, W = self.shape
        nfs = self.data_shape[1]
        n_data = self.data_shape[0] * nfs
        src = np.full(self.shape, n_data, dtype=np.int64)  # n_data = "the fill value" (see assemble)
        for i, p in enumerate(self.geom.panels):
            corners = [self._cn[i] + a * self._fs[i] + b * self._ss[i] for a in (0, p.width) for b in (0, p.height)]
            cx = [c[0] - self.origin[0] for c in corners]
            cy = [c[1] - self.origin[1] for c in corners]
            c0, c1 = max(int(np.floor(min(cx))) - 1, 0), min(int(np.ceil(max(cx))) + 1, W)
            r0, r1 = max(int(np.floor(min(cy))) - 1, 0), min(int(np.ceil(max(cy))) + 1, H)
            if c1 <= c0 or r1 <= r0:
                continue
            rr, cc = np.mgrid[r0:r1, c0:c1]
            u, v = self._panel_fsss(i, self.origin[0] + cc + 0.5, self.origin[1] + rr + 0.5)
            fu = np.floor(u).astype(np.int64)
            fv = np.floor(v).astype(np.int64)
            take = (fu >= 0) & (fu < p.width) & (fv >= 0) & (fv < p.height) & (self.panel_map[r0:r1, c0:c1] < 0)
            src[r0:r1, c0:c1][take] = (fv[take] + p.min_ss) * nfs + (fu[take] + p.min_fs)
            self.panel_map[r0:r1, c0:c1][take] = i
        self._gather = src.ravel().astype(np.int32 if n_data < 2**31 - 1 else np.int64)

    def _aligned_block(self, i: int, p):
        """(data slices, transpose, flip rows, flip cols, display slices) for a panel whose
        pixels sit exactly on the display grid, else None."""
        fs, ss = self._fs[i], self._ss[i]
        for vec in (fs, ss):
            if not (np.isclose(abs(vec).max(), 1.0, atol=_ALIGN_TOL) and np.isclose(abs(vec).min(), 0.0, atol=_ALIGN_TOL)):
                return None
        if abs(fs[0]) > 0.5 and abs(ss[0]) > 0.5 or abs(fs[1]) > 0.5 and abs(ss[1]) > 0.5:
            return None
        rows_cols = []
        for a, b in ((0.5, 0.5), (p.width - 0.5, p.height - 0.5)):
            c = self._cn[i] + a * fs + b * ss
            rows_cols.append((c[1] - self.origin[1] - 0.5, c[0] - self.origin[0] - 0.5))
        (ra, ca), (rb, cb) = rows_cols
        for t in (ra, ca, rb, cb):
            if abs(t - round(t)) > _ALIGN_TOL:
                return None
        transpose = abs(fs[1]) > 0.5  # fs runs down the display rows
        r_lo, r_hi = int(round(min(ra, rb))), int(round(max(ra, rb)))
        c_lo, c_hi = int(round(min(ca, cb))), int(round(max(ca, cb)))
        if r_lo < 0 or c_lo < 0 or r_hi >= self.shape[0] or c_hi >= self.shape[1]:
            return None
        return (p.slices(), transpose, rb < ra, cb < ca, (slice(r_lo, r_hi + 1), slice(c_lo, c_hi + 1)))

    @property
    def pixel_aligned(self) -> bool:
        """True when every panel pixel sits exactly on one display pixel (the display is made of
        block copies): each data pixel is shown once, its centre at a display pixel's centre."""
        return self._blocks is not None

    @property
    def coverage(self) -> np.ndarray:
        """True where a display pixel shows a data pixel."""
        return self.panel_map >= 0

    # --- use ------------------------------------------------------------------------------------
    @staticmethod
    def fill_value(dtype):
        dtype = np.dtype(dtype)
        if dtype == np.bool_:
            return False
        if np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.complexfloating):
            return np.nan
        return 0

    def assemble(self, arr, fill=None, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Display image of ``arr`` (data shape, any dtype; leading dimensions are kept)."""
        arr = np.asarray(arr)
        if arr.shape[-2:] != self.data_shape:
            raise GeometryError(f"{self.geom.source or 'geometry'}: array of shape {arr.shape} does not match "
                                f"the data shape {self.data_shape} this assembler was built for")
        if arr.ndim > 2:
            lead = arr.shape[:-2]
            flat = arr.reshape((-1,) + self.data_shape)
            res = np.stack([self.assemble(a, fill) for a in flat])
            return res.reshape(lead + self.shape)
        fill = self.fill_value(arr.dtype) if fill is None else fill
        if out is None:
            out = np.empty(self.shape, dtype=arr.dtype)
        elif out.shape != self.shape or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous array of shape {self.shape}, got {out.shape}")
        if self._blocks is not None:
            if len(self._blocks) != 1 or self._blocks[0][4] != (slice(0, self.shape[0]), slice(0, self.shape[1])):
                out.fill(fill)
            for data_sl, transpose, flip_r, flip_c, disp_sl in self._blocks:
                block = arr[data_sl]
                if transpose:
                    block = block.T
                if flip_r:
                    block = block[::-1]
                if flip_c:
                    block = block[:, ::-1]
                out[disp_sl] = block
            return out
        n = arr.size
        padded = np.empty(n + 1, dtype=arr.dtype)  # data + one fill element that outside pixels index
        padded[:n] = arr.reshape(-1)
        padded[n] = fill
        np.take(padded, self._gather, out=out.reshape(-1))
        return out

    # --- coordinates ------------------------------------------------------------------------------
    def to_panel(self, row, col):
        """Display position(s) (pixel-index coordinates) -> (panel index, fs, ss) in data coordinates.

        ``fs``/``ss`` are continuous pixel indices of the data slab (centre of the first pixel at
        0, 0); outside every panel the panel index is -1 and fs/ss are NaN.
        """
        row = np.asarray(row, dtype=np.float64)
        col = np.asarray(col, dtype=np.float64)
        ri = np.floor(row + 0.5).astype(np.int64)
        ci = np.floor(col + 0.5).astype(np.int64)
        ok = (ri >= 0) & (ri < self.shape[0]) & (ci >= 0) & (ci < self.shape[1])
        panel = np.full(np.broadcast(row, col).shape, -1, dtype=np.int64)
        panel[ok] = self.panel_map[ri[ok], ci[ok]]
        fs = np.full(panel.shape, np.nan)
        ss = np.full(panel.shape, np.nan)
        x = self.origin[0] + col + 0.5
        y = self.origin[1] + row + 0.5
        for i in np.unique(panel[panel >= 0]):
            sel = panel == i
            u, v = self._panel_fsss(int(i), np.broadcast_to(x, panel.shape)[sel], np.broadcast_to(y, panel.shape)[sel])
            p = self.geom.panels[int(i)]
            fs[sel] = u - 0.5 + p.min_fs
            ss[sel] = v - 0.5 + p.min_ss
        if panel.ndim == 0:
            return int(panel), float(fs), float(ss)
        return panel, fs, ss

    def to_display(self, fs, ss):
        """Data position(s) (pixel-index coordinates of the slab) -> display (row, col); NaN outside panels."""
        fs = np.asarray(fs, dtype=np.float64)
        ss = np.asarray(ss, dtype=np.float64)
        idx = self.geom.panel_at(fs, ss)
        row = np.full(idx.shape, np.nan)
        col = np.full(idx.shape, np.nan)
        for i in np.unique(idx[idx >= 0]):
            sel = idx == i
            p = self.geom.panels[int(i)]
            u = np.broadcast_to(fs, idx.shape)[sel] - p.min_fs + 0.5
            v = np.broadcast_to(ss, idx.shape)[sel] - p.min_ss + 0.5
            pos = self._cn[i][:, None] + u * self._fs[i][:, None] + v * self._ss[i][:, None]
            col[sel] = pos[0] - self.origin[0] - 0.5
            row[sel] = pos[1] - self.origin[1] - 0.5
        if idx.ndim == 0:
            return float(row), float(col)
        return row, col

    def data_pixel_positions(self) -> tuple:
        """(row, col): the display position (pixel-index coordinates) of every data pixel's centre,
        data-shaped float64, NaN where no panel covers the data pixel; :meth:`to_display` of every
        pixel, computed panel by panel."""
        row = np.full(self.data_shape, np.nan)
        col = np.full(self.data_shape, np.nan)
        for i, p in enumerate(self.geom.panels):
            v, u = np.mgrid[0:p.height, 0:p.width].astype(np.float64) + 0.5
            sl = p.slices()
            free = np.isnan(row[sl])  # the first panel holding a data pixel wins, as in Geometry.panel_at
            x = self._cn[i][0] + u * self._fs[i][0] + v * self._ss[i][0] - self.origin[0] - 0.5
            y = self._cn[i][1] + u * self._fs[i][1] + v * self._ss[i][1] - self.origin[1] - 0.5
            col[sl] = np.where(free, x, col[sl])
            row[sl] = np.where(free, y, row[sl])
        return row, col

    def display_to_data_index(self) -> np.ndarray:
        """Flat data index (``ss * nfs + fs``) shown at every display pixel, -1 outside panels."""
        n_data = self.data_shape[0] * self.data_shape[1]
        if self._gather is not None:
            m = self._gather.astype(np.int64).reshape(self.shape)
            m[m == n_data] = -1
            return m
        idx = np.arange(n_data, dtype=np.int64).reshape(self.data_shape)
        return self.assemble(idx, fill=-1)
