"""Detector models for the simulator: geometry, gaps, and the readout's kind and ranges.

Built-in detectors (:func:`get_detector`, names in :data:`DETECTORS`):

* ``rayonix-mx340``: Rayonix-like CCD, 1920 x 1920, 0.177 mm pixels, default 124 mm at 1.30 A;
  ``rayonix-mx340-bin2``: its 2x2-binned mode (960 x 960, 0.354 mm).
* ``pilatus-6m``: Pilatus 6M, 2527 x 2463 (ss x fs) with the real tiling of 12 x 5 modules of
  195 x 487 pixels and 17/7-pixel gaps that read -1, 0.172 mm, default 351 mm at 0.96859 A with
  the beam at (1261.11, 1306.46) pixel indices (the thaumatin grid stills);
  ``pilatus-6m-crop``: a 1024 x 1024 window of it around the beam.
* ``cspad``: CSPAD-like raw slab, 1480 x 1552 (ss x fs) int16, 64 ASICs of 185 x 194 pixels of
  0.110 mm, 4 quadrants of 8 two-ASIC sensors rotated by 90 degrees each around a central hole
  (the Cheetah "raw layout": quadrant q at fs q*388, sensor s at ss s*185); default 130 mm at
  9.5 keV; ``cspad-quad``: quadrant 0 only (1480 x 388).
* ``eiger-4m``: Eiger-like 4M, 2167 x 2070, 8 modules of 514 x 1030 with 37/10-pixel module gaps
  and 2-pixel chip gaps, 0.075 mm; ``eiger-4m-crop``: 1024 x 1024 around the beam.

:meth:`DetectorModel.cropped` cuts any data-array window out of any detector (panels are clipped
and their corners moved, so positions stay exact) -- for fast tests and training crops.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional

import numpy as np

from ..errors import InputError
from ..geometry.detector import HC_EV_A, Geometry, Panel

#: readout kinds
CCD, PAD, CSPAD = "ccd", "pad", "cspad"


@dataclass
class ReadoutRanges:
    """Ranges the per-run detector "personality" is drawn from (see :mod:`.noise`).

    ``adu_per_photon`` gain; ``offset_adu`` baseline added to every pixel; ``read_noise_adu``
    Gaussian per-pixel noise; ``pedestal_sigma_adu`` per-panel offsets (pedestal residuals);
    ``common_mode_adu`` per-panel, per-frame offset noise; ``psf_sigma_px`` point spread (CCD
    phosphor/taper); ``gain_spread`` relative per-pixel gain variation; ``hot_fraction`` /
    ``dead_fraction`` of pixels.
    """

    adu_per_photon: tuple = (1.0, 1.0)
    offset_adu: tuple = (0.0, 0.0)
    read_noise_adu: tuple = (0.0, 0.0)
    pedestal_sigma_adu: tuple = (0.0, 0.0)
    common_mode_adu: tuple = (0.0, 0.0)
    psf_sigma_px: tuple = (0.0, 0.0)
    gain_spread: tuple = (0.0, 0.0)
    panel_noise_spread: tuple = (0.0, 0.0)  # log-normal spread of the read noise between panels
    hot_fraction: tuple = (0.0, 3e-5)
    dead_fraction: tuple = (0.0, 3e-5)


@dataclass
class DetectorModel:
    """A detector the simulator can render: its geometry (with default photon energy and camera
    length), which pixels exist (``gap_mask`` True = no pixel: reads ``gap_value``), the dtype and
    saturation of its readout, and the ranges of its readout personality."""

    name: str
    kind: str
    geometry: Geometry
    dtype: str
    saturation_adu: float
    readout: ReadoutRanges
    gap_mask: Optional[np.ndarray] = None
    gap_value: float = 0.0
    dead_value: float = 0.0
    description: str = ""
    beamstop_radius_px: tuple = (8.0, 30.0)  # range of beamstop radii in pixels
    extra: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple:
        return self.geometry.data_shape

    @property
    def pixel_size_m(self) -> float:
        return float(np.mean([p.pixel_size for p in self.geometry.panels]))

    @property
    def photon_energy_ev(self) -> float:
        return float(self.geometry.photon_energy_ev)

    @property
    def wavelength_a(self) -> float:
        return HC_EV_A / self.photon_energy_ev

    @property
    def distance_m(self) -> float:
        return self.geometry.mean_camera_length()

    @cached_property
    def valid(self) -> np.ndarray:
        """True where a real pixel is (on a panel, not in a gap)."""
        v = np.zeros(self.geometry.data_shape, dtype=bool)
        for p in self.geometry.panels:
            v[p.slices()] = True
        if self.gap_mask is not None:
            v &= ~self.gap_mask
        return v

    def with_values(self, distance_m: Optional[float] = None, photon_energy_ev: Optional[float] = None,
                    beam_center: Optional[tuple] = None) -> "DetectorModel":
        """A copy with another camera length, photon energy or (single-panel) beam centre."""
        d = copy.copy(self)
        d.__dict__.pop("valid", None)
        d.__dict__.pop("pixels", None)
        g = self.geometry.copy()
        if distance_m is not None:
            shift = float(distance_m) - g.mean_camera_length()
            for p in g.panels:
                if p.clen is not None:
                    p.clen += shift
            if g.clen is not None:
                g.clen += shift
        if photon_energy_ev is not None:
            g.photon_energy_ev = float(photon_energy_ev)
        if beam_center is not None:
            fs0, ss0 = g.beam_center(0)
            dfs, dss = float(beam_center[0]) - fs0, float(beam_center[1]) - ss0
            for p in g.panels:  # moving the detector in its plane by -delta moves the beam by +delta
                p.corner_x -= dfs * p.fs[0] + dss * p.ss[0]
                p.corner_y -= dfs * p.fs[1] + dss * p.ss[1]
        d.geometry = g
        return d

    def cropped(self, ss0: int, fs0: int, height: int, width: int, name: Optional[str] = None) -> "DetectorModel":
        """The detector seen through the data-array window ``[ss0:ss0+height, fs0:fs0+width]``."""
        ss1, fs1 = ss0 + height - 1, fs0 + width - 1
        panels = []
        for p in self.geometry.panels:
            a_fs, b_fs = max(p.min_fs, fs0), min(p.max_fs, fs1)
            a_ss, b_ss = max(p.min_ss, ss0), min(p.max_ss, ss1)
            if a_fs > b_fs or a_ss > b_ss:
                continue
            q = copy.deepcopy(p)
            du, dv = a_fs - p.min_fs, a_ss - p.min_ss
            q.corner_x = p.corner_x + du * p.fs[0] + dv * p.ss[0]
            q.corner_y = p.corner_y + du * p.fs[1] + dv * p.ss[1]
            if p.fs[2] or p.ss[2]:  # tilted panel: the corner moves along z too
                q.coffset = p.coffset + (du * p.fs[2] + dv * p.ss[2]) / p.res
            q.min_fs, q.max_fs = a_fs - fs0, b_fs - fs0
            q.min_ss, q.max_ss = a_ss - ss0, b_ss - ss0
            panels.append(q)
        if not panels:
            raise InputError(f"detector {self.name}: crop window {height}x{width} at ({ss0}, {fs0}) holds no panel")
        g = self.geometry.copy()
        g.panels = panels
        g.bad_regions = []
        d = copy.copy(self)
        d.__dict__.pop("valid", None)
        d.__dict__.pop("pixels", None)
        d.geometry = g
        d.name = name or f"{self.name}[{ss0}:{ss0 + height},{fs0}:{fs0 + width}]"
        if self.gap_mask is not None:
            gm = np.ones((height, width), dtype=bool)
            src = self.gap_mask[ss0 : ss0 + height, fs0 : fs0 + width]
            gm[: src.shape[0], : src.shape[1]] = src
            d.gap_mask = gm[: g.data_shape[0], : g.data_shape[1]]
        return d

    def cropped_around_beam(self, height: int, width: int, name: Optional[str] = None) -> "DetectorModel":
        """A ``height x width`` window centred on the beam (clamped to the data array)."""
        fs_c, ss_c = self.geometry.beam_center(0)
        ss_n, fs_n = self.shape
        ss0 = int(np.clip(round(ss_c - height / 2), 0, max(ss_n - height, 0)))
        fs0 = int(np.clip(round(fs_c - width / 2), 0, max(fs_n - width, 0)))
        return self.cropped(ss0, fs0, min(height, ss_n), min(width, fs_n), name=name)

    @cached_property
    def pixels(self):
        """Per-pixel angles and factors (:class:`~.pixels.PixelGeometry`), computed once."""
        from .pixels import PixelGeometry

        return PixelGeometry.of(self)


# ------------------------------------------------------------------------------------------------
# built-in geometries
# ------------------------------------------------------------------------------------------------


def _tiled_gap_mask(shape: tuple, module: tuple, gap: tuple, chip: Optional[tuple] = None,
                    chip_gap: int = 0) -> np.ndarray:
    """True in the gaps of a regular module tiling; ``module``/``gap`` are (ss, fs) sizes."""
    ss = np.arange(shape[0])
    fs = np.arange(shape[1])
    ss_in = ss % (module[0] + gap[0])
    fs_in = fs % (module[1] + gap[1])
    ss_gap = ss_in >= module[0]
    fs_gap = fs_in >= module[1]
    if chip is not None and chip_gap:
        ss_gap |= (ss_in % (chip[0] + chip_gap) >= chip[0]) & (ss_in < module[0])
        fs_gap |= (fs_in % (chip[1] + chip_gap) >= chip[1]) & (fs_in < module[1])
    return ss_gap[:, None] | fs_gap[None, :]


def rayonix_mx340(binning: int = 1) -> DetectorModel:
    n = 1920 // binning
    pix = 0.177e-3 * binning
    geom = Geometry.single_panel((n, n), pix, 0.124, (n - 1) / 2.0, (n - 1) / 2.0, HC_EV_A / 1.30, name="rayonix")
    return DetectorModel(
        name="rayonix-mx340" + (f"-bin{binning}" if binning > 1 else ""),
        kind=CCD,
        geometry=geom,
        dtype="uint16",
        saturation_adu=65535.0,
        readout=ReadoutRanges(adu_per_photon=(1.0, 8.0), offset_adu=(8.0, 40.0), read_noise_adu=(1.0, 4.0),
                              psf_sigma_px=(0.3, 0.9), gain_spread=(0.0, 0.03)),
        description=f"Rayonix MX340-like CCD, {n}x{n}, {pix * 1e3:.3f} mm pixels",
        beamstop_radius_px=(10.0 / binning, 35.0 / binning),
    )


PILATUS6M_SHAPE = (2527, 2463)
PILATUS_MODULE = (195, 487)
PILATUS_GAP = (17, 7)
THAUMATIN_BEAM_PX = (1261.61 - 0.5, 1306.96 - 0.5)  # header Beam_xy is DIALS corner convention


def pilatus_6m() -> DetectorModel:
    geom = Geometry.single_panel(PILATUS6M_SHAPE, 0.172e-3, 0.351, THAUMATIN_BEAM_PX[0], THAUMATIN_BEAM_PX[1],
                                 HC_EV_A / 0.96859, name="pilatus")
    return DetectorModel(
        name="pilatus-6m",
        kind=PAD,
        geometry=geom,
        dtype="int32",
        saturation_adu=1046527.0,
        readout=ReadoutRanges(hot_fraction=(0.0, 2e-5), dead_fraction=(5e-5, 2.5e-4)),
        gap_mask=_tiled_gap_mask(PILATUS6M_SHAPE, PILATUS_MODULE, PILATUS_GAP),
        gap_value=-1.0,
        dead_value=-2.0,
        description="Pilatus 6M-like photon counter, 2527x2463, 12x5 modules, gaps read -1",
        beamstop_radius_px=(10.0, 30.0),
    )


EIGER4M_SHAPE = (2167, 2070)


def eiger_4m() -> DetectorModel:
    geom = Geometry.single_panel(EIGER4M_SHAPE, 0.075e-3, 0.150, 1030.0, 1090.0, 12398.42 / 1.0, name="eiger")
    return DetectorModel(
        name="eiger-4m",
        kind=PAD,
        geometry=geom,
        dtype="int32",
        saturation_adu=1048575.0,  # count cutoff (exact in float32)
        readout=ReadoutRanges(hot_fraction=(0.0, 2e-5), dead_fraction=(0.0, 1e-4)),
        gap_mask=_tiled_gap_mask(EIGER4M_SHAPE, (514, 1030), (37, 10), chip=(256, 256), chip_gap=2),
        gap_value=-1.0,
        dead_value=-2.0,
        description="Eiger 4M-like photon counter, 2167x2070, 4x2 modules with module and chip gaps",
        beamstop_radius_px=(15.0, 50.0),
    )


# CSPAD quadrant 0: for each two-ASIC sensor, fs and ss unit vectors and the corner of its first
# ASIC (pixels, beam at the origin), rounded from cxi78513 metrology; quadrant q is quadrant 0
# rotated by q * 90 degrees about the beam.  The second ASIC of a sensor sits 197 px along fs.
_CSPAD_Q0 = (
    ((0, 1), (-1, 0), (447.0, -30.0)),
    ((0, 1), (-1, 0), (233.0, -31.0)),
    ((-1, 0), (0, -1), (869.0, 367.0)),
    ((-1, 0), (0, -1), (868.0, 155.0)),
    ((0, -1), (1, 0), (471.0, 792.0)),
    ((0, -1), (1, 0), (684.0, 792.0)),
    ((-1, 0), (0, -1), (441.0, 771.0)),
    ((-1, 0), (0, -1), (441.0, 558.0)),
)
CSPAD_ASIC = (185, 194)
CSPAD_SHAPE = (8 * 185, 8 * 194)


def cspad_geometry(distance_m: float = 0.130, photon_energy_ev: float = 9500.0, pixel_m: float = 110e-6) -> Geometry:
    """The CSPAD-like 64-ASIC raw-layout geometry (see the module doc)."""
    panels = []
    for q in range(4):
        c, s = np.cos(q * np.pi / 2), np.sin(q * np.pi / 2)
        rot = np.array([[c, -s], [s, c]])
        for sec, (fs_v, ss_v, corner) in enumerate(_CSPAD_Q0):
            fsr = rot @ np.array(fs_v, float)
            ssr = rot @ np.array(ss_v, float)
            cr = rot @ np.array(corner, float)
            for a in range(2):
                cc = cr + a * 197.0 * fsr
                min_fs = q * 388 + a * 194
                min_ss = sec * 185
                panels.append(Panel(
                    name=f"q{q}a{2 * sec + a}", min_fs=min_fs, max_fs=min_fs + 193, min_ss=min_ss, max_ss=min_ss + 184,
                    corner_x=float(np.round(cc[0], 6)), corner_y=float(np.round(cc[1], 6)),
                    fs=(float(np.round(fsr[0])), float(np.round(fsr[1])), 0.0),
                    ss=(float(np.round(ssr[0])), float(np.round(ssr[1])), 0.0),
                    res=1.0 / pixel_m, clen=distance_m,
                ))
    return Geometry(panels=panels, photon_energy_ev=photon_energy_ev, clen=distance_m)


def cspad() -> DetectorModel:
    return DetectorModel(
        name="cspad",
        kind=CSPAD,
        geometry=cspad_geometry(),
        dtype="int16",
        saturation_adu=16383.0,
        readout=ReadoutRanges(adu_per_photon=(22.0, 35.0), offset_adu=(5.0, 20.0), read_noise_adu=(2.0, 9.0),
                              pedestal_sigma_adu=(2.0, 10.0), panel_noise_spread=(0.1, 0.4), common_mode_adu=(1.0, 6.0),
                              gain_spread=(0.0, 0.05),
                              hot_fraction=(0.0, 5e-5), dead_fraction=(0.0, 5e-5)),
        description="CSPAD-like 64-ASIC raw slab (1480x1552 int16), 110 um pixels, ADU",
        beamstop_radius_px=(0.0, 0.0),  # the beam passes through the central hole
    )


def _pilatus_crop():
    return pilatus_6m().cropped_around_beam(1024, 1024, name="pilatus-6m-crop")


def _eiger_crop():
    return eiger_4m().cropped_around_beam(1024, 1024, name="eiger-4m-crop")


def _cspad_quad():
    return cspad().cropped(0, 0, CSPAD_SHAPE[0], 388, name="cspad-quad")


DETECTORS = {
    "rayonix-mx340": rayonix_mx340,
    "rayonix-mx340-bin2": lambda: rayonix_mx340(2),
    "pilatus-6m": pilatus_6m,
    "pilatus-6m-crop": _pilatus_crop,
    "cspad": cspad,
    "cspad-quad": _cspad_quad,
    "eiger-4m": eiger_4m,
    "eiger-4m-crop": _eiger_crop,
}

_CACHE: dict = {}


def get_detector(name: str) -> DetectorModel:
    """A built-in detector by name (shared instance: use :meth:`DetectorModel.with_values` or
    :meth:`~DetectorModel.cropped` for variants, never mutate it)."""
    key = name.lower()
    if key not in DETECTORS:
        raise InputError(f"unknown detector {name!r}: choose one of {', '.join(DETECTORS)}")
    if key not in _CACHE:
        _CACHE[key] = DETECTORS[key]()
    return _CACHE[key]


def parse_crop(text: str) -> tuple:
    """``"HxW"`` -> (H, W)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as e:
        raise InputError(f"crop {text!r}: give HEIGHTxWIDTH in pixels, e.g. 512x512") from e
    if h < 16 or w < 16:
        raise InputError(f"crop {text!r}: at least 16x16 pixels")
    return h, w
