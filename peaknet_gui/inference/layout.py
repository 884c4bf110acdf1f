"""How a frame is cut into model inputs and how the outputs are stitched back.

A single-panel frame (or one without geometry) is one tile: the whole frame, padded at the
bottom/right with zeros (the normalised value of a bad pixel) to a multiple of the model's
stride.  A multi-panel frame (the raw "slab" of e.g. a CSPAD) is cut into its panels, each
padded to the same size (the largest panel rounded up to the stride), so that the panels of one
or many frames run as one batch; outputs are written back into the slab (zero probability
outside every panel).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..geometry import Geometry


def round_up(n: int, stride: int) -> int:
    return ((int(n) + stride - 1) // stride) * stride


@dataclass(frozen=True)
class FrameLayout:
    """Tiles (``(ss_slice, fs_slice)`` regions of the frame) and their padded common shape."""

    shape: tuple
    tiles: tuple
    tile_shape: tuple

    @property
    def n_tiles(self) -> int:
        return len(self.tiles)

    @property
    def padded_pixels(self) -> int:
        return self.n_tiles * self.tile_shape[0] * self.tile_shape[1]

    @classmethod
    def for_frame(cls, shape: tuple, geometry: Optional[Geometry] = None, stride: int = 1) -> "FrameLayout":
        h, w = int(shape[-2]), int(shape[-1])
        stride = max(1, int(stride))
        whole = ((slice(0, h), slice(0, w)),)
        if geometry is None or len(geometry.panels) <= 1:
            tiles = whole
            if geometry is not None and len(geometry.panels) == 1:
                p = geometry.panels[0]
                if (p.width, p.height) != (w, h):
                    tiles = (p.slices(),)
        else:
            tiles = tuple(p.slices() for p in geometry.panels)
        th = max(t[0].stop - t[0].start for t in tiles)
        tw = max(t[1].stop - t[1].start for t in tiles)
        return cls(shape=(h, w), tiles=tiles, tile_shape=(round_up(th, stride), round_up(tw, stride)))

    def cut(self, image: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Tiles of a 2-D image as an (n_tiles, th, tw) float32 array, zero padded."""
        th, tw = self.tile_shape
        if out is None:
            out = np.zeros((self.n_tiles, th, tw), dtype=np.float32)
        else:
            out[...] = 0
        for i, (ss, fs) in enumerate(self.tiles):
            out[i, : ss.stop - ss.start, : fs.stop - fs.start] = image[ss, fs]
        return out

    def stitch(self, tiles: np.ndarray, dtype=None) -> np.ndarray:
        """(n_tiles, C, th, tw) model outputs -> (C, H, W) frame maps (0 outside the tiles)."""
        c = tiles.shape[1]
        frame = np.zeros((c,) + tuple(self.shape), dtype=dtype or tiles.dtype)
        for i, (ss, fs) in enumerate(self.tiles):
            frame[:, ss, fs] = tiles[i, :, : ss.stop - ss.start, : fs.stop - fs.start]
        return frame


_cache: "OrderedDict[tuple, FrameLayout]" = OrderedDict()
_lock = threading.Lock()


def layout_for(shape: tuple, geometry: Optional[Geometry], stride: int) -> FrameLayout:
    """Cached :meth:`FrameLayout.for_frame` (keyed by shape, panel rectangles and stride)."""
    rects = None if geometry is None else tuple((p.min_fs, p.max_fs, p.min_ss, p.max_ss) for p in geometry.panels)
    key = (tuple(shape[-2:]), rects, int(stride))
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
    layout = FrameLayout.for_frame(shape, geometry, stride)
    with _lock:
        _cache[key] = layout
        while len(_cache) > 16:
            _cache.popitem(last=False)
    return layout
