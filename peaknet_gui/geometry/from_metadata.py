"""A single-panel geometry from what an image file's header says (no ``.geom`` given)."""

from __future__ import annotations

import math
from typing import Optional

from ..errors import GeometryError
from ..frame import FrameMetadata
from .detector import Geometry

_FIELDS = (
    ("pixel_size_m", "pixel size"),
    ("detector_distance_m", "detector distance"),
    ("beam_center_fs", "beam centre (fast-scan)"),
    ("beam_center_ss", "beam centre (slow-scan)"),
)


def geometry_from_metadata(
    meta: FrameMetadata,
    shape: tuple,
    *,
    source: Optional[str] = None,
    require_energy: bool = False,
) -> Geometry:
    """Flat detector perpendicular to the beam, from pixel size, distance and beam centre.

    ``shape`` is the frame's (ss, fs) shape (leading dimensions ignored).  The photon energy is
    taken when the metadata has it (``require_energy=True`` makes it mandatory).  Raises
    :class:`GeometryError` naming ``source`` (the file) and every missing or invalid field.
    """
    where = source or "frame metadata"
    if shape is None or len(shape) < 2 or shape[-1] < 1 or shape[-2] < 1:
        raise GeometryError(f"{where}: cannot build a geometry for a frame of shape {shape}")
    missing, invalid = [], []
    fields = list(_FIELDS) + ([("photon_energy_ev", "photon energy")] if require_energy else [])
    for attr, label in fields:
        v = getattr(meta, attr)
        if v is None:
            missing.append(label)
        elif not math.isfinite(v) or (attr not in ("beam_center_fs", "beam_center_ss") and v <= 0):
            invalid.append(f"{label} = {v}")
    if missing or invalid:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if invalid:
            parts.append("invalid " + ", ".join(invalid))
        raise GeometryError(f"{where}: cannot build a detector geometry from the file's metadata "
                            f"({'; '.join(parts)}); give a CrystFEL .geom file")
    energy = meta.photon_energy_ev if meta.photon_energy_ev and meta.photon_energy_ev > 0 else None
    geom = Geometry.single_panel(
        shape=tuple(shape[-2:]),
        pixel_size_m=float(meta.pixel_size_m),
        distance_m=float(meta.detector_distance_m),
        beam_center_fs=float(meta.beam_center_fs),
        beam_center_ss=float(meta.beam_center_ss),
        photon_energy_ev=energy,
    )
    geom.source = source
    if meta.detector:
        geom.comments = [f"; {' '.join(str(meta.detector).split())}, geometry from the file header"]
        if counts_photons(meta.detector):
            geom.panels[0].adu_per_photon = 1.0
    return geom


#: detector families whose pixels count photons: one count is one photon
PHOTON_COUNTING = ("PILATUS", "EIGER")


def counts_photons(detector: Optional[str]) -> bool:
    """Whether the header's detector name (``Detector: PILATUS 6M, S/N ...``, an NeXus
    ``description`` ``Dectris EIGER2 16M``) is a photon-counting detector, whose gain is then
    known: 1 count per photon."""
    name = str(detector or "").upper()
    return any(f in name for f in PHOTON_COUNTING)
