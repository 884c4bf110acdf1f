"""Qt-free preparation of what the image view draws: display image, levels, overlays, read-out.

Everything here runs in the worker's threads, so the GUI thread only hands ready arrays to
pyqtgraph.  Coordinates: the *scene* is the display image's pixel grid as pyqtgraph draws it
(display pixel ``(row, col)`` covers ``[col, col+1) x [row, row+1)``), so a data position in
pixel-index coordinates (centre of the first pixel at 0, 0) lands at scene ``(col + 0.5,
row + 0.5)`` where ``(row, col)`` is its display position.  Multi-panel frames are assembled
through :class:`~peaknet_gui.geometry.assemble.Assembler`; without a geometry the display is
the data array itself.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import GeometryError
from ..frame import Frame
from ..geometry import Geometry
from ..geometry.assemble import Assembler

#: d-spacings (Angstrom) the resolution rings may use, coarse to fine
RING_CANDIDATES_A = (50.0, 30.0, 20.0, 15.0, 10.0, 8.0, 6.0, 5.0, 4.0, 3.5, 3.0, 2.5, 2.2, 2.0, 1.8, 1.6, 1.5, 1.4,
                     1.3, 1.2, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5)

#: mask codes of the overlay image
MASK_NONE, MASK_STATIC, MASK_AUTO = 0, 1, 2


class DisplayMapper:
    """Data (fs, ss) <-> scene (x, y) for one geometry and frame shape."""

    def __init__(self, data_shape: tuple, assembler: Optional[Assembler] = None):
        self.data_shape = (int(data_shape[-2]), int(data_shape[-1]))
        self.assembler = assembler
        self.shape = assembler.shape if assembler is not None else self.data_shape

    @property
    def identity(self) -> bool:
        return self.assembler is None

    def image(self, arr: np.ndarray, fill=None) -> np.ndarray:
        """Display image of a data-shaped array (the array itself without an assembler)."""
        return arr if self.assembler is None else self.assembler.assemble(arr, fill=fill)

    def data_to_scene(self, fs, ss):
        fs = np.asarray(fs, dtype=np.float64)
        ss = np.asarray(ss, dtype=np.float64)
        if self.assembler is None:
            return fs + 0.5, ss + 0.5
        row, col = self.assembler.to_display(fs, ss)
        return np.asarray(col) + 0.5, np.asarray(row) + 0.5

    def scene_to_data(self, x: float, y: float) -> tuple:
        """(panel index, fs, ss) under a scene point; panel -1 and NaN outside the image/panels."""
        if self.assembler is None:
            fs, ss = x - 0.5, y - 0.5
            inside = -0.5 <= fs < self.data_shape[1] - 0.5 and -0.5 <= ss < self.data_shape[0] - 0.5
            return (0, fs, ss) if inside else (-1, math.nan, math.nan)
        return self.assembler.to_panel(y - 0.5, x - 0.5)

    def lab_to_scene(self, x_px: float, y_px: float) -> Optional[tuple]:
        """Scene position of a lab (x, y) position given in panel-0 pixels (None w/o assembler)."""
        if self.assembler is None:
            return None
        ox, oy = self.assembler.origin
        return x_px - ox, y_px - oy


def _layout_key(geometry: Geometry) -> tuple:
    """What the display layout depends on: the panels' extents, positions and directions."""
    return tuple((p.min_fs, p.max_fs, p.min_ss, p.max_ss, p.corner_x, p.corner_y, tuple(p.fs), tuple(p.ss), p.res)
                 for p in geometry.panels)


_mapper_cache: "OrderedDict[tuple, DisplayMapper]" = OrderedDict()
_mapper_lock = threading.Lock()


def mapper_for(geometry: Optional[Geometry], shape: tuple) -> DisplayMapper:
    """The (cached) mapper of a geometry and frame shape; identity without a geometry.

    Raises :class:`GeometryError` when the geometry's panels do not fit the frame.
    """
    shape = (int(shape[-2]), int(shape[-1]))
    if geometry is None:
        return DisplayMapper(shape)
    key = (_layout_key(geometry), shape)
    with _mapper_lock:
        m = _mapper_cache.get(key)
        if m is not None:
            _mapper_cache.move_to_end(key)
            return m
    m = DisplayMapper(shape, Assembler(geometry, shape))
    with _mapper_lock:
        _mapper_cache[key] = m
        while len(_mapper_cache) > 4:
            _mapper_cache.popitem(last=False)
    return m


# --- display image ---------------------------------------------------------------------------------
def log_image(img: np.ndarray) -> np.ndarray:
    """log10 of the values, values below 1 shown as 0 (NaN stays NaN)."""
    out = np.maximum(img, np.float32(1.0))
    np.log10(out, out=out)
    return out


def percentile_levels(img: np.ndarray, percentiles=(1.0, 99.7), max_samples: int = 300_000) -> tuple:
    """Display levels at the given percentiles of the finite pixels (a strided subsample)."""
    step = max(1, int(math.sqrt(img.size / max_samples)))
    sample = img[::step, ::step]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, [float(percentiles[0]), float(percentiles[1])])
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


#: how far above the background's median the "spots" levels reach, in robust sigmas
SPOT_SIGMAS = 15.0
LEVEL_MODES = ("spots", "percentiles")


def background_stats(data: np.ndarray, bad: Optional[np.ndarray] = None, max_samples: int = 300_000) -> tuple:
    """(median, sigma) of a frame's pixel values -- the background, spots and masks hardly move
    them: sigma is 1.4826 x the median absolute deviation, at least sqrt(median) (photon
    counting noise) and 1."""
    step = max(1, int(math.sqrt(data.size / max_samples)))
    sample = np.asarray(data[::step, ::step], dtype=np.float32)
    if bad is not None:
        sample = sample[~np.asarray(bad[::step, ::step], dtype=bool)]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    med = float(np.median(sample))
    sigma = 1.4826 * float(np.median(np.abs(sample - med)))
    return med, max(sigma, math.sqrt(max(med, 0.0)), 1.0)


def spot_levels(data: np.ndarray, bad: Optional[np.ndarray] = None, log_scale: bool = True,
                sigmas: float = SPOT_SIGMAS) -> tuple:
    """Levels that show Bragg spots at any zoom: black at the background's median, white
    ``sigmas`` robust sigmas above it (linear: from one sigma below).  Percentile levels put
    the background's own noise over the whole grey range on Pilatus and simulated frames."""
    med, sigma = background_stats(data, bad)
    hi = med + sigmas * sigma
    if log_scale:
        lo = math.log10(max(med, 1.0))
        return lo, max(math.log10(max(hi, 1.0)), lo + 0.1)
    return med - sigma, hi


def scale_to_uint8(img: np.ndarray, levels: tuple, out: Optional[np.ndarray] = None) -> np.ndarray:
    """Colormap indices: 1..255 between the levels (clipped), 0 where there is no data (NaN).

    Done in the worker so the GUI thread only looks colours up (pyqtgraph's uint8 fast path).
    """
    lo, hi = float(levels[0]), float(levels[1])
    k = np.float32(254.0 / (hi - lo)) if hi > lo else np.float32(0.0)
    t = img - np.float32(lo)
    t *= k
    t += np.float32(1.0)
    np.clip(t, 1.0, 255.0, out=t)
    np.nan_to_num(t, copy=False, nan=0.0)
    if out is None:
        out = np.empty(img.shape, dtype=np.uint8)
    np.copyto(out, t, casting="unsafe")
    return out


def value_histogram(img: np.ndarray, bins: int = 200, max_samples: int = 300_000) -> tuple:
    """(bin centres, counts) of the finite pixel values (a strided subsample), for the levels widget."""
    step = max(1, int(math.sqrt(img.size / max_samples)))
    sample = img[::step, ::step]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return np.zeros(0), np.zeros(0)
    lo, hi = float(sample.min()), float(sample.max())
    if not hi > lo:
        hi = lo + 1.0
    counts, edges = np.histogram(sample, bins=bins, range=(lo, hi))
    return 0.5 * (edges[:-1] + edges[1:]), counts.astype(np.float64)


@dataclass
class RingSpec:
    d_a: float
    radius: float  # scene pixels


@dataclass
class FrameView:
    """One frame ready to draw (built off the GUI thread by :func:`build_frame_view`)."""

    index: int
    frame: Frame
    image: np.ndarray  # display image (float32, log10 when ``log_scale``), NaN = no data
    levels: tuple  # the levels ``scaled`` was made with (automatic or the user's)
    log_scale: bool
    mapper: DisplayMapper
    geometry: Optional[Geometry] = None  # the frame's effective geometry (clen, energy filled)
    wavelength_a: Optional[float] = None
    beam: Optional[tuple] = None  # scene (x, y) of the direct beam
    rings: list = field(default_factory=list)
    geometry_error: Optional[str] = None
    prepare_ms: float = 0.0
    auto_levels: tuple = (0.0, 1.0)  # the percentile levels of this frame
    scaled: Optional[np.ndarray] = None  # uint8 colormap indices of ``image`` at ``levels``
    histogram: tuple = ()  # (bin centres, counts) of the image values


def _wavelength(frame: Frame, geometry: Optional[Geometry]) -> Optional[float]:
    e = geometry.photon_energy_ev if geometry is not None and geometry.photon_energy_ev else frame.metadata.photon_energy_ev
    return 12398.419843320026 / e if e and e > 0 else None


def resolution_rings(geometry: Optional[Geometry], mapper: DisplayMapper, wavelength_a: Optional[float],
                     beam: Optional[tuple], max_rings: int = 5) -> list:
    """Rings of 'round' d-spacings that fall on the displayed detector, evenly spread in radius."""
    if geometry is None or mapper.assembler is None or not wavelength_a or beam is None:
        return []
    try:
        clen = geometry.mean_camera_length()
    except GeometryError:
        return []
    if not clen or clen <= 0:
        return []
    h, w = mapper.shape
    bx, by = beam
    corners = [(0, 0), (w, 0), (0, h), (w, h)]
    r_max = max(math.hypot(cx - bx, cy - by) for cx, cy in corners)
    px = mapper.assembler.pixel_size
    rings = []
    for d in RING_CANDIDATES_A:
        s = wavelength_a / (2.0 * d)
        if s >= 1.0:
            break
        r = clen * math.tan(2.0 * math.asin(s)) / px
        if 0.06 * r_max <= r <= r_max:
            rings.append(RingSpec(d, r))
    if len(rings) > max_rings:  # keep rings spread evenly in radius
        targets = np.linspace(rings[0].radius, rings[-1].radius, max_rings)
        chosen = []
        for t in targets:
            best = min((r for r in rings if r not in chosen), key=lambda r: abs(r.radius - t))
            chosen.append(best)
        rings = sorted(chosen, key=lambda r: r.radius)
    return rings


def build_frame_view(index: int, frame: Frame, geometry: Optional[Geometry], *, log_scale: bool = True,
                     percentiles=(1.0, 99.7), levels: Optional[tuple] = None, level_mode: str = "percentiles") -> FrameView:
    """Assemble, transform, level and scale one frame for display (worker thread).

    ``levels`` None: automatic levels -- ``level_mode`` "spots" (:func:`spot_levels`, the
    window's default) or "percentiles" (at ``percentiles`` of the frame's values); else the user's."""
    import time

    t0 = time.perf_counter()
    geometry_error = None
    try:
        mapper = mapper_for(geometry, frame.shape)
    except GeometryError as e:
        geometry_error = str(e)
        mapper = DisplayMapper(frame.shape)
        geometry = None
    img = frame.data
    if log_scale:
        img = log_image(img)
    elif frame.bad is not None:
        img = img.copy()
    if frame.bad is not None:
        img[frame.bad] = np.nan
    image = mapper.image(img)
    if level_mode == "spots":
        auto = spot_levels(frame.data, frame.bad, log_scale)
    else:
        auto = percentile_levels(image, percentiles)
    levels = auto if levels is None else (float(levels[0]), float(levels[1]))
    scaled = scale_to_uint8(image, levels)
    hist = value_histogram(image)
    wl = _wavelength(frame, geometry)
    beam = None
    if geometry is not None and mapper.assembler is not None:
        beam = mapper.lab_to_scene(0.0, 0.0)
    rings = resolution_rings(geometry, mapper, wl, beam)
    return FrameView(index=index, frame=frame, image=image, levels=levels, log_scale=log_scale, mapper=mapper,
                     geometry=geometry, wavelength_a=wl, beam=beam, rings=rings, geometry_error=geometry_error,
                     prepare_ms=1e3 * (time.perf_counter() - t0), auto_levels=auto, scaled=scaled, histogram=hist)


# --- overlays --------------------------------------------------------------------------------------
@dataclass
class OverlayView:
    """Peaks and masks of one analysed frame in scene coordinates (built off the GUI thread)."""

    index: int
    result: object  # FrameResult
    peak_x: np.ndarray
    peak_y: np.ndarray
    peak_diameter: np.ndarray  # scene pixels
    mask_code: Optional[np.ndarray]  # uint8 display image: MASK_NONE / MASK_STATIC / MASK_AUTO
    settings_version: int = 0


def peak_diameters(npix: np.ndarray) -> np.ndarray:
    """Circle diameters (display pixels) growing with the peak's pixel count."""
    npix = np.maximum(np.asarray(npix, dtype=np.float64), 1.0)
    return np.maximum(10.0, 2.5 * np.sqrt(npix / np.pi) + 7.0)


def mask_codes(frame: Frame, auto_mask: Optional[np.ndarray], static_mask: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """Data-shaped uint8: 1 where the static mask or the detector's bad pixels are, 2 where only
    the auto-mask (artifacts) is; None when nothing is masked."""
    static_part = None
    if static_mask is not None:
        static_part = np.asarray(static_mask, dtype=bool)
    if frame.bad is not None:
        static_part = frame.bad if static_part is None else (static_part | frame.bad)
    if auto_mask is None and static_part is None:
        return None
    code = np.zeros(frame.shape, dtype=np.uint8)
    if auto_mask is not None:
        code[np.asarray(auto_mask, dtype=bool)] = MASK_AUTO
    if static_part is not None:
        code[static_part] = MASK_STATIC
    return code


def build_overlay(index: int, frame: Frame, result, mapper: DisplayMapper, static_mask: Optional[np.ndarray] = None,
                  settings_version: int = 0) -> OverlayView:
    peaks = result.peaks
    if len(peaks):
        x, y = mapper.data_to_scene(peaks.fs, peaks.ss)
        x, y = np.atleast_1d(x), np.atleast_1d(y)
        ok = np.isfinite(x) & np.isfinite(y)
        diam = peak_diameters(peaks.npix)
        x, y, diam = x[ok], y[ok], diam[ok]
    else:
        x = y = diam = np.zeros(0)
    code = mask_codes(frame, result.artifact_mask, static_mask)
    if code is not None:
        code = mapper.image(code, fill=0)
    return OverlayView(index=index, result=result, peak_x=x, peak_y=y, peak_diameter=diam, mask_code=code,
                       settings_version=settings_version)


# --- hover read-out --------------------------------------------------------------------------------
@dataclass
class PixelReadout:
    panel: str
    fs: int
    ss: int
    value: float
    bad: bool
    d_a: Optional[float]
    twotheta_deg: Optional[float]

    def format(self) -> str:
        parts = [f"panel {self.panel}" if self.panel else "", f"fs {self.fs}", f"ss {self.ss}", f"value {self.value:.6g}"]
        if self.bad:
            parts.append("(bad pixel)")
        if self.d_a is not None:
            parts.append(f"d {self.d_a:.2f} \u00c5" if math.isfinite(self.d_a) else "d \u221e")
        if self.twotheta_deg is not None:
            parts.append(f"2\u03b8 {self.twotheta_deg:.3f}\u00b0")
        return "   ".join(p for p in parts if p)


def readout(view: FrameView, x: float, y: float) -> Optional[PixelReadout]:
    """What lies under scene point (x, y) of a frame view, None outside the detector."""
    panel, fs, ss = view.mapper.scene_to_data(x, y)
    if panel < 0 or not (math.isfinite(fs) and math.isfinite(ss)):
        return None
    h, w = view.frame.shape
    fi, si = int(math.floor(fs + 0.5)), int(math.floor(ss + 0.5))
    if not (0 <= fi < w and 0 <= si < h):
        return None
    value = float(view.frame.data[si, fi])
    bad = bool(view.frame.bad[si, fi]) if view.frame.bad is not None else False
    name = ""
    d = tth = None
    g = view.geometry
    if g is not None:
        if 0 <= panel < len(g.panels):
            name = g.panels[panel].name
        try:
            lx, ly, lz = g.lab_xyz(np.array([fs]), np.array([ss]))
            two_theta = math.atan2(math.hypot(float(lx[0]), float(ly[0])), float(lz[0]))
            if math.isfinite(two_theta):
                tth = math.degrees(two_theta)
                if view.wavelength_a:
                    s = math.sin(two_theta / 2.0)
                    d = view.wavelength_a / (2.0 * s) if s > 0 else math.inf
        except GeometryError:
            pass
    return PixelReadout(panel=name, fs=fi, ss=si, value=value, bad=bad, d_a=d, twotheta_deg=tth)
