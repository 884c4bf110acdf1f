"""Per-frame metadata from HDF5 files: CXI, Cheetah (``/LCLS``), NeXus (NXdetector, NXbeam,
NXmonochromator, Eiger ``detectorSpecific``) and a geometry's data-file references.

Values are read once (they are small 1-D arrays or scalars) and indexed per frame; arrays that
grow while a run is written are re-read when a frame beyond their end is asked for.

Beam-centre conventions (internal: pixel indices, centre of the first pixel at 0):

* CXI ``beam_center_x/y`` carrying ``convention = "pixel index..."`` (the project's own
  files): taken as they are;
* NeXus ``beam_center_x/y`` (and CXI without that attribute) are detector coordinates whose
  origin is the corner of the first pixel (the dxtbx/NeXus reading), in pixels or a length unit:
  index = value - 0.5.  ``x`` is the fast-scan direction, ``y`` the slow-scan one.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

import h5py
import numpy as np

from ..frame import FrameMetadata
from ..geometry.geom_syntax import split_path_unit
from . import units

log = logging.getLogger(__name__)

CXI_DET = "/entry_1/instrument_1/detector_1"
CXI_SRC = "/entry_1/instrument_1/source_1"


class _Values:
    """A small numeric dataset read into memory, indexed per frame (scalar -> every frame)."""

    def __init__(self, ds: h5py.Dataset, scale: Callable[[float], Optional[float]]):
        self.ds = ds
        self.scale = scale
        self.values = self._load()

    def _load(self) -> np.ndarray:
        try:
            if self.ds.size > 10_000_000 or self.ds.dtype.kind not in "iuf":
                return np.zeros(0)
            return np.asarray(self.ds[()], dtype=np.float64).ravel()
        except (OSError, RuntimeError, ValueError, TypeError):
            return np.zeros(0)

    def at(self, i: int) -> Optional[float]:
        v = self.values
        if v.size == 0:
            return None
        if v.size == 1:
            return self._conv(v[0])
        if i >= v.size:
            try:
                self.ds.refresh()
            except (AttributeError, RuntimeError, OSError, ValueError):
                pass
            self.values = v = self._load()
            if i >= v.size:
                return None
        return self._conv(v[i])

    def _conv(self, x) -> Optional[float]:
        x = float(x)
        if not np.isfinite(x):
            return None
        return self.scale(x)


def _attr(obj, name) -> Optional[str]:
    v = obj.attrs.get(name)
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        v = v.ravel()[0] if v.size else None
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    return None if v is None else str(v)


def _text(f, path) -> Optional[str]:
    try:
        obj = f.get(path)
        if not isinstance(obj, h5py.Dataset):
            return None
        v = obj[()]
        if isinstance(v, np.ndarray):
            v = v.ravel()[0] if v.size else None
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
        return None if v is None else str(v).strip() or None
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):
        return None


def _dataset(f, path) -> Optional[h5py.Dataset]:
    try:
        obj = f.get(path)
    except (OSError, RuntimeError, KeyError, ValueError):
        return None
    return obj if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "iuf" else None


def _find_class(group, nx_class: str, depth: int = 2) -> list:
    """Sub-groups of ``group`` (breadth first, ``depth`` levels) whose NX_class is ``nx_class``."""
    out, level = [], [group]
    for _ in range(depth):
        nxt = []
        for g in level:
            try:
                items = list(g.items())
            except (OSError, RuntimeError, KeyError):
                continue
            for _name, obj in items:
                try:
                    if isinstance(obj, h5py.Group):
                        if _attr(obj, "NX_class") == nx_class:
                            out.append(obj)
                        nxt.append(obj)
                except (OSError, RuntimeError, KeyError):
                    continue
        level = nxt
    return out


class H5Metadata:
    """Metadata of every frame of one HDF5 file (``get(i)`` -> FrameMetadata)."""

    def __init__(self, f: h5py.File, image_path: str, geometry=None):
        self.f = f
        self.image_path = image_path
        self.fields: dict = {}  # FrameMetadata attribute or "extra:key" -> _Values
        self.static: dict = {}  # same keys -> fixed value (strings, flags)
        self.notes: list = []
        self._collect(geometry)

    # --- collection ------------------------------------------------------------------------------
    def _add(self, key: str, path: str, scale=lambda x: x, overwrite: bool = False) -> bool:
        if key in self.fields and not overwrite:
            return False
        ds = _dataset(self.f, path)
        if ds is None:
            return False
        vals = _Values(ds, scale)
        if vals.values.size == 0:
            return False
        self.fields[key] = vals
        self.static.setdefault("sources", {})[key] = path
        return True

    def _collect(self, geometry) -> None:
        f = self.f
        if geometry is not None:
            self._from_geometry(geometry)
        # --- CXI -------------------------------------------------------------------------------
        self._add("photon_energy_ev", f"{CXI_SRC}/photon_energy_eV")
        self._add("photon_energy_ev", f"{CXI_SRC}/energy", _joule_or_ev)
        self._length("detector_distance_m", f"{CXI_DET}/distance", default="m")
        self._length("pixel_size_m", f"{CXI_DET}/x_pixel_size", default="m")
        self._beam_center(CXI_DET)
        for k in ("count_time", "exposure_time"):
            self._add("exposure_time_s", f"{CXI_DET}/{k}")
        desc = _text(f, f"{CXI_DET}/description")
        if desc:
            self.static["detector"] = desc
        # --- Cheetah / LCLS --------------------------------------------------------------------
        self._add("photon_energy_ev", "/LCLS/photon_energy_eV")
        self._add("photon_energy_ev", "/LCLS/photon_wavelength_A", lambda a: units.wavelength_to_ev(a, "A"))
        self._add("extra:clen_encoder_mm", "/LCLS/detector_1/EncoderValue")
        self._add("extra:electron_beam_energy", "/LCLS/electronBeamEnergy")
        self._add("extra:machine_time", "/LCLS/machineTime")
        self._add("extra:fiducial", "/LCLS/fiducial")
        # --- NeXus -----------------------------------------------------------------------------
        self._nexus()
        # --- attributes on the image dataset (e.g. converted files: wavelength_A) ---------------
        self._dataset_attrs()

    def _length(self, key: str, path: str, default: Optional[str] = None, guess=None) -> bool:
        ds = _dataset(self.f, path)
        if ds is None or key in self.fields:
            return False
        unit = _attr(ds, "units")
        if unit is not None and units.length_to_m(1.0, unit) is None:
            self.notes.append(f"{path}: unknown length unit {unit!r}, ignored")
            return False
        if unit is None and guess is not None:
            vals = _Values(ds, lambda x: x)
            if vals.values.size == 0:
                return False
            _m, unit = guess(float(vals.values[0]))
            self.notes.append(f"{path} has no units attribute; read as {unit}")
        unit = unit or default
        if unit is None:
            return False
        return self._add(key, path, lambda x, u=unit: units.length_to_m(x, u))

    def _beam_center(self, det: str, pixel_size_m: Optional[float] = None, assume_mm: bool = False) -> None:
        if "beam_center_fs" in self.fields:
            return
        xs, ys = _dataset(self.f, f"{det}/beam_center_x"), _dataset(self.f, f"{det}/beam_center_y")
        if xs is None or ys is None:
            return
        conv = (_attr(xs, "convention") or "").lower()
        unit = _attr(xs, "units")
        if "index" in conv or "centre of first pixel at 0" in conv or "center of first pixel at 0" in conv:
            offset, factor = 0.0, 1.0
        elif unit is None and not assume_mm or units.is_pixel_unit(unit):
            offset, factor = -0.5, 1.0
        else:
            metres_per_unit = units.length_to_m(1.0, unit or "mm")
            if metres_per_unit is None or not pixel_size_m:
                self.notes.append(f"{det}/beam_center_x: unit {unit!r} cannot be converted to pixels")
                return
            offset, factor = -0.5, metres_per_unit / pixel_size_m
            if unit is None:
                self.notes.append(f"{det}/beam_center_x/y have no units attribute; read as mm like the other "
                                  f"lengths of the file")
        self._add("beam_center_fs", f"{det}/beam_center_x", lambda x: x * factor + offset)
        self._add("beam_center_ss", f"{det}/beam_center_y", lambda x: x * factor + offset)

    def _nexus(self) -> None:
        f = self.f
        entries = [g for g in (f.get(k) for k in f) if isinstance(g, h5py.Group) and _attr(g, "NX_class") == "NXentry"]
        if not entries:
            return
        entry = entries[0]
        instruments = _find_class(entry, "NXinstrument", 1)
        inst = instruments[0] if instruments else entry
        dets = _find_class(inst, "NXdetector", 1)
        if dets:
            det = dets[0]
            # unit-less NeXus files (NXsas from areaDetector) write lengths in mm
            xps = _dataset(f, f"{det.name}/x_pixel_size")
            mm_file = False
            if xps is not None and _attr(xps, "units") is None:
                v = _Values(xps, lambda x: x).values
                mm_file = v.size > 0 and units.guess_pixel_size_m(float(v[0]))[1] == "mm"
            self._length("detector_distance_m", f"{det.name}/distance", guess=units.guess_distance_m)
            self._length("detector_distance_m", f"{det.name}/detector_distance", guess=units.guess_distance_m)
            self._length("pixel_size_m", f"{det.name}/x_pixel_size", guess=units.guess_pixel_size_m)
            px = self.fields.get("pixel_size_m")
            self._beam_center(det.name, px.at(0) if px else None, assume_mm=mm_file)
            self._add("exposure_time_s", f"{det.name}/count_time")
            desc = _text(f, f"{det.name}/description") or _text(f, f"{det.name}/local_name")
            if desc and "detector" not in self.static:
                self.static["detector"] = desc
            ds = f"{det.name}/detectorSpecific"
            self._add("photon_energy_ev", f"{ds}/photon_energy")
            self._add("extra:count_cutoff", f"{ds}/countrate_correction_count_cutoff")
            self._add("extra:bit_depth_image", f"{det.name}/bit_depth_image")
            self._add("extra:saturation_value", f"{det.name}/saturation_value")
            self._add("extra:nimages", f"{ds}/nimages")
            self._add("extra:ntrigger", f"{ds}/ntrigger")
        for beam in _find_class(entry, "NXbeam", 2):
            self._energy_or_wavelength(f"{beam.name}/incident_energy", f"{beam.name}/incident_wavelength")
        for mono in _find_class(inst, "NXmonochromator", 1):
            self._energy_or_wavelength(f"{mono.name}/energy", f"{mono.name}/wavelength")

    def _energy_or_wavelength(self, energy_path: str, wavelength_path: str) -> None:
        if "photon_energy_ev" in self.fields:
            return
        ds = _dataset(self.f, wavelength_path)
        if ds is not None:
            unit = _attr(ds, "units")
            if self._add("photon_energy_ev", wavelength_path, lambda x, u=unit: units.wavelength_to_ev(x, u)):
                return
        ds = _dataset(self.f, energy_path)
        if ds is not None:
            unit = _attr(ds, "units") or "eV"
            self._add("photon_energy_ev", energy_path, lambda x, u=unit: units.energy_to_ev(x, u))

    def _dataset_attrs(self) -> None:
        try:
            ds = self.f[self.image_path]
            attrs = dict(ds.attrs)
        except (KeyError, OSError, RuntimeError, ValueError):
            return
        for name, key, conv in (
            ("wavelength_A", "photon_energy_ev", lambda a: units.wavelength_to_ev(a, "A")),
            ("photon_energy_eV", "photon_energy_ev", float),
            ("detector_distance_m", "detector_distance_m", float),
        ):
            if name in attrs and key not in self.fields and key not in self.static:
                try:
                    self.static[key] = conv(float(np.asarray(attrs[name]).ravel()[0]))
                    self.static.setdefault("sources", {})[key] = f"{self.image_path}@{name}"
                except (TypeError, ValueError, IndexError):
                    pass

    def _from_geometry(self, geometry) -> None:
        """Values a geometry says to read from the data file (CrystFEL ``photon_energy = /path``...)."""
        if getattr(geometry, "photon_energy_path", None):
            path, unit = split_path_unit(geometry.photon_energy_path, "eV")
            scale = geometry.photon_energy_scale or 1.0
            if unit.lower() in ("a", "angstrom"):
                conv = lambda x: units.wavelength_to_ev(x, "A")  # noqa: E731
            else:
                conv = lambda x, s=scale, u=unit: units.energy_to_ev(x * s, u)  # noqa: E731
            if not self._add("photon_energy_ev", path, conv):
                self.notes.append(f"geometry photon_energy = {geometry.photon_energy_path}: not found in the file")
        clen_path = getattr(geometry, "clen_path", None) or next(
            (p.clen_path for p in geometry.panels if getattr(p, "clen_path", None)), None)
        if clen_path:
            path, unit = split_path_unit(clen_path, "mm")
            if not self._add("extra:clen_m", path, lambda x, u=unit: units.length_to_m(x, u)):
                self.notes.append(f"geometry clen = {clen_path}: not found in the file")

    # --- access ----------------------------------------------------------------------------------
    def get(self, i: int) -> FrameMetadata:
        md = FrameMetadata()
        extra = {}
        for key, vals in self.fields.items():
            v = vals.at(i)
            if v is None:
                continue
            if key.startswith("extra:"):
                extra[key[6:]] = v
            else:
                setattr(md, key, v)
        for key, v in self.static.items():
            if key == "sources":
                continue
            if key.startswith("extra:"):
                extra[key[6:]] = v
            elif getattr(md, key, None) is None:
                setattr(md, key, v)
        if self.notes:
            extra["metadata_notes"] = "; ".join(self.notes)
        md.extra.update(extra)
        return md

    def sources(self) -> dict:
        """Which file path each metadata value was read from."""
        return dict(self.static.get("sources", {}))


def _joule_or_ev(x: float) -> Optional[float]:
    """CXI ``source_1/energy`` is in J; some writers put eV there (values > 1 cannot be J)."""
    if x <= 0:
        return None
    return x if x > 1.0 else x / units.J_PER_EV
