"""Per-pixel maps of a geometry that peak extraction needs, computed once and cached.

:class:`DetectorMaps` holds, for a frame shape, the index of the panel each pixel belongs to
(-1 outside every panel) and the in-plane distance of each pixel from the beam in pixels (the
radius map of peakfinder8).  Maps are cached by a fingerprint of the geometry's panel
parameters, so editing a geometry (e.g. moving the beam centre in the GUI) gives new maps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import GeometryError
from ..geometry import Geometry

class MapCache:
    """A small thread-safe least-recently-used cache of per-pixel maps, keyed by a geometry's
    fingerprint and a frame shape; a missing entry is built outside the lock."""

    def __init__(self, size: int):
        self._size = int(size)
        self._items: "OrderedDict[tuple, object]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, build):
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                return item
        item = build()
        with self._lock:
            self._items[key] = item
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return item


_cache = MapCache(8)


@dataclass(frozen=True)
class DetectorMaps:
    """Maps of shape (ss, fs).

    ``panel``: int16 panel index (-1 outside every panel);
    ``radius_px``: float32 distance from the beam axis in the detector plane in pixels
    (NaN outside panels); ``radius_bin``: int32 rounded radius (0 outside panels);
    ``panel_slices``: each panel's (ss, fs) slices of the data array, in geometry order.
    """

    shape: tuple
    panel: np.ndarray
    radius_px: np.ndarray
    radius_bin: np.ndarray
    panel_slices: tuple
    n_panels: int

    @property
    def single_panel_covers_all(self) -> bool:
        """True when one panel is the whole frame (labelling needs no per-panel split)."""
        if self.n_panels != 1:
            return False
        ss, fs = self.panel_slices[0]
        return ss.start == 0 and fs.start == 0 and ss.stop == self.shape[0] and fs.stop == self.shape[1]


def geometry_fingerprint(geometry: Geometry) -> tuple:
    return tuple(
        (p.min_fs, p.max_fs, p.min_ss, p.max_ss, p.corner_x, p.corner_y, tuple(p.fs), tuple(p.ss), p.res)
        for p in geometry.panels
    )


def _build(geometry: Geometry, shape: tuple) -> DetectorMaps:
    panel = np.full(shape, -1, dtype=np.int16)
    radius = np.full(shape, np.nan, dtype=np.float32)
    slices = []
    for i, p in enumerate(geometry.panels):
        sl = p.slices()
        slices.append(sl)
        panel[sl] = i
        # in-plane position (pixels) of each pixel centre: corner + (u + 0.5) fs + (v + 0.5) ss
        u = np.arange(p.width, dtype=np.float64) + 0.5
        v = np.arange(p.height, dtype=np.float64) + 0.5
        x = p.corner_x + u[None, :] * p.fs[0] + v[:, None] * p.ss[0]
        y = p.corner_y + u[None, :] * p.fs[1] + v[:, None] * p.ss[1]
        radius[sl] = np.hypot(x, y).astype(np.float32)
    radius_bin = np.where(panel >= 0, np.rint(np.nan_to_num(radius)), 0).astype(np.int32)
    return DetectorMaps(shape=tuple(shape), panel=panel, radius_px=radius, radius_bin=radius_bin, panel_slices=tuple(slices),
                        n_panels=len(geometry.panels))


def detector_maps(geometry: Optional[Geometry], shape: tuple) -> DetectorMaps:
    """Maps for ``geometry`` and a frame of ``shape`` (cached).

    Without a geometry the whole frame is one panel and the radius is measured from the
    frame's centre (a guess that only the classical finder's radial statistics use).
    """
    shape = (int(shape[-2]), int(shape[-1]))
    if geometry is None:
        geometry = Geometry.single_panel(shape, 172e-6, 0.1, (shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0)
    geometry.check_data_shape(shape)
    return _cache.get((geometry_fingerprint(geometry), shape), lambda: _build(geometry, shape))


def peak_resolution(
    geometry: Optional[Geometry],
    panel: np.ndarray,
    fs: np.ndarray,
    ss: np.ndarray,
    photon_energy_ev: Optional[float] = None,
) -> np.ndarray:
    """1/d (inverse Angstrom) at positions (pixel-index coords) on the given panels.

    NaN where the geometry, the photon energy or the camera length is unknown, or the panel
    index is -1.  ``photon_energy_ev`` overrides the geometry's.
    """
    fs = np.asarray(fs, dtype=np.float64)
    ss = np.asarray(ss, dtype=np.float64)
    panel = np.asarray(panel)
    out = np.full(fs.shape, np.nan)
    if geometry is None or len(fs) == 0:
        return out
    energy = photon_energy_ev if photon_energy_ev else geometry.photon_energy_ev
    if not energy or energy <= 0:
        return out
    wavelength = 12398.419843320026 / energy
    for i in np.unique(panel):
        if i < 0 or i >= len(geometry.panels):
            continue
        sel = panel == i
        p = geometry.panels[int(i)]
        try:
            x, y, z = p.lab_xyz(fs[sel], ss[sel], geometry.clen)
        except GeometryError:  # camera length unknown -> NaN
            continue
        twotheta = np.arctan2(np.hypot(x, y), z)
        out[sel] = 2.0 * np.sin(twotheta / 2.0) / wavelength
    return out


def photon_adu(geometry: Optional[Geometry], panel: np.ndarray, photon_energy_ev: Optional[float] = None) -> np.ndarray:
    """One photon in detector units (ADU) on each given panel: the geometry's ``adu_per_photon``,
    else ``adu_per_eV`` times the photon energy (``photon_energy_ev`` overrides the geometry's);
    NaN where the geometry does not say (or the panel index is -1)."""
    panel = np.asarray(panel)
    out = np.full(panel.shape, np.nan)
    if geometry is None or panel.size == 0:
        return out
    energy = photon_energy_ev if photon_energy_ev else geometry.photon_energy_ev
    for i in np.unique(panel):
        if i < 0 or i >= len(geometry.panels):
            continue
        p = geometry.panels[int(i)]
        value = p.adu_per_photon
        if not value and p.adu_per_ev and energy:
            value = p.adu_per_ev * energy
        if value and np.isfinite(value) and value > 0:
            out[panel == i] = float(value)
    return out
