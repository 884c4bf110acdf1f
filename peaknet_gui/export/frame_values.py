"""Per-frame experiment values the exporters write: photon energy, camera length, beam centre.

CrystFEL takes these from the geometry file, either as numbers or as data-file paths read per
frame.  The exporters follow the same precedence so that what they write is what CrystFEL
would have used on the original files:

* photon energy: the geometry's number if it has one; the frame's metadata when the geometry
  reads it from the file (``photon_energy_path``) or says nothing;
* camera length: the frame's metadata when the geometry reads ``clen`` from the file, else the
  geometry's own numbers.

Values that nobody knows come back as ``None``; callers write NaN and warn.
"""

from __future__ import annotations

import math
from typing import Optional

from ..errors import GeometryError
from ..frame import Frame
from ..geometry.detector import Geometry


def _finite_positive(v) -> Optional[float]:
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def geometry_reads_clen_from_file(geometry: Optional[Geometry]) -> bool:
    if geometry is None:
        return False
    return geometry.clen_path is not None or any(p.clen_path is not None for p in geometry.panels)


def frame_photon_energy(frame: Frame, geometry: Optional[Geometry]) -> Optional[float]:
    """Photon energy (eV) CrystFEL would use for ``frame`` (see the module doc)."""
    if geometry is not None and _finite_positive(geometry.photon_energy_ev) is not None \
            and geometry.photon_energy_path is None:
        return float(geometry.photon_energy_ev)
    from_meta = _finite_positive(frame.metadata.photon_energy_ev)
    if from_meta is not None:
        return from_meta
    if geometry is not None:
        return _finite_positive(geometry.photon_energy_ev)
    return None


def frame_clen(frame: Frame, geometry: Optional[Geometry]) -> Optional[float]:
    """Camera length (m) to fill in where the geometry reads ``clen`` from the data file, else
    the geometry's own base ``clen`` (None when unknown)."""
    if geometry_reads_clen_from_file(geometry) or geometry is None:
        return _finite_positive(frame.metadata.detector_distance_m)
    if geometry.clen is not None:
        return float(geometry.clen)
    return None


def frame_geometry(frame: Frame, geometry: Optional[Geometry]) -> Optional[Geometry]:
    """``geometry`` with the frame's per-frame values filled in (a copy only when needed), or
    None when the camera length stays unknown."""
    if geometry is None:
        return None
    if geometry_reads_clen_from_file(geometry):
        clen = frame_clen(frame, geometry)
        if clen is None:
            return None
        return geometry.with_values(clen=clen)
    return geometry


def mean_camera_length(frame: Frame, geometry: Optional[Geometry]) -> Optional[float]:
    """CrystFEL's ``average_camera_length``: mean over panels of (clen + coffset), metres."""
    g = frame_geometry(frame, geometry)
    if g is None:
        return _finite_positive(frame.metadata.detector_distance_m)
    try:
        return g.mean_camera_length()
    except GeometryError:
        return _finite_positive(frame.metadata.detector_distance_m)


def beam_center(frame: Frame, geometry: Optional[Geometry]) -> tuple:
    """Beam centre (fs, ss) in pixel indices: the frame's metadata, else where the beam meets
    the first panel's plane in the geometry; NaN when neither knows."""
    md = frame.metadata
    if md.beam_center_fs is not None and md.beam_center_ss is not None:
        return float(md.beam_center_fs), float(md.beam_center_ss)
    if geometry is not None:
        try:
            return geometry.beam_center(0)
        except GeometryError:
            pass
    return math.nan, math.nan


def pixel_size(frame: Frame, geometry: Optional[Geometry]) -> Optional[float]:
    if geometry is not None:
        return float(geometry.panels[0].pixel_size)
    return _finite_positive(frame.metadata.pixel_size_m)


def placeholder_geometry(frame: Frame) -> Geometry:
    """A single panel covering the frame, for a stream of a run without any geometry: names and
    coordinates are right, physics is unknown (no clen line, so CrystFEL refuses it until a real
    geometry replaces it)."""
    md = frame.metadata
    ps = md.pixel_size_m if md.pixel_size_m and md.pixel_size_m > 0 else 172e-6
    bc_fs = md.beam_center_fs if md.beam_center_fs is not None else frame.shape[-1] / 2.0
    bc_ss = md.beam_center_ss if md.beam_center_ss is not None else frame.shape[-2] / 2.0
    g = Geometry.single_panel(frame.shape, ps, 1.0, bc_fs, bc_ss, photon_energy_ev=md.photon_energy_ev)
    g.clen = None
    g.panels[0].clen = None
    g.comments = ["; PLACEHOLDER geometry written by peaknet_gui: the run had no detector geometry.",
                  "; Panel name and pixel coordinates are right; pixel size, beam centre and camera",
                  "; length are not known -- replace this block with the real geometry."]
    return g
