"""Write and read back a calibrated geometry: CrystFEL ``.geom`` and pyFAI ``.poni``.

* ``.geom`` through :func:`peaknet_gui.geometry.crystfel_geom.write_geom` (atomic): the refined
  panel corners, ``clen`` (and per-panel ``coffset``) and, for a tilted detector, fs/ss vectors
  with z components -- CrystFEL's pixel positions (``corner + f fs + s ss``, z from
  ``clen + coffset``) are pyFAI's to rounding, so both give every pixel the same 2-theta;
  comments with the direct-beam centre, distance, tilt and pyFAI rotations; everything else of
  the starting geometry (data path, masks, bad regions...) kept.
* ``.poni`` through pyFAI's own ``PoniFile`` writer, written atomically.  A multi-panel detector
  cannot live in a ``.poni``; its pixel corners go to a NeXus detector file written by pyFAI
  (``<stem>_detector.h5``) that the ``.poni`` names, so ``pyFAI.load`` reads it back whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..errors import ExportError, GeometryError, InputError
from ..export.atomic import atomic_path, atomic_write
from ..geometry.crystfel_geom import write_geom
from ..geometry.detector import Geometry
from .geometry_convert import PyFAIGeometry, from_pyfai, to_pyfai


def calibrated_geometry_for_file(result, start: Optional[Geometry] = None) -> Geometry:
    """The refined geometry as it should be written: comments saying where it came from; a
    photon energy or camera length that the start read from the data files stays a path."""
    g = result.geometry.copy()
    start = start or result.start_geometry
    note = (f"calibrated on {result.calibrant} by peaknet calibrate: direct-beam centre fs {result.beam_center[0]:.3f} "
            f"ss {result.beam_center[1]:.3f} px, distance {result.distance_m * 1e3:.3f} mm, "
            f"residual {result.residual_px:.3f} px RMS, {len(result.rings_used)} rings, "
            f"wavelength {result.wavelength_a:.6f} A")
    status = getattr(result, "tilt_status", "fixed")
    tilt = (f"tilt {result.tilt_deg:.4f} deg ({status}), direction {result.tilt_plane_rotation_deg:.2f} deg; "
            f"pyFAI rot1 {result.tilts_deg[0]:.5f}, rot2 {result.tilts_deg[1]:.5f}, rot3 {result.tilts_deg[2]:.5f} deg "
            "(in the panels' fs/ss z components and corners)")
    g.comments = list(start.comments) + [note, tilt]
    if start.photon_energy_path is not None:
        g.photon_energy_ev = None
        g.photon_energy_path = start.photon_energy_path
        g.photon_energy_scale = start.photon_energy_scale
    return g


def write_calibrated_geom(result, path) -> Path:
    """Write ``result`` (a :class:`~.refine.CalibrationResult`) as a CrystFEL ``.geom``."""
    path = Path(path)
    write_geom(calibrated_geometry_for_file(result), path)
    return path


def write_poni(conv: PyFAIGeometry, path, params: Optional[tuple] = None) -> Path:
    """Write the pyFAI geometry ``conv`` (PONI ``params``, default its current ones) as ``.poni``."""
    from pyFAI.detectors import NexusDetector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator
    from pyFAI.io.ponifile import PoniFile

    path = Path(path)
    ai = conv.integrator
    dist, poni1, poni2, rot1, rot2, rot3 = params if params is not None else conv.params
    detector = ai.detector
    if conv.kind != "flat":
        det_path = path.with_name(path.stem + "_detector.h5")
        try:
            with atomic_path(det_path, suffix=".h5") as tmp:
                os.unlink(tmp)  # pyFAI's NeXus writer appends; start from nothing
                mask = detector.mask
                detector.mask = None
                try:
                    detector.save(str(tmp))
                finally:
                    detector.mask = mask
        except (OSError, RuntimeError) as e:
            raise ExportError(f"{det_path}: cannot write the pyFAI detector ({e})") from e
        detector = NexusDetector(str(det_path.resolve()))
    out = AzimuthalIntegrator(dist=dist, poni1=poni1, poni2=poni2, rot1=rot1, rot2=rot2, rot3=rot3,
                              detector=detector, wavelength=ai.wavelength)
    try:
        with atomic_write(path) as fh:
            PoniFile(out).write(fh)
    except OSError as e:
        raise ExportError(f"{path}: cannot write ({e.strerror or e})") from e
    return path


def write_result_poni(result, path) -> Path:
    """Write a :class:`~.refine.CalibrationResult`'s refined geometry as ``.poni``."""
    shape = result.pyfai.shape
    return write_poni(to_pyfai(result.geometry, shape, wavelength_a=result.wavelength_a), path)


def read_poni(path):
    """A pyFAI ``AzimuthalIntegrator`` from a ``.poni`` file (InputError naming the file)."""
    import pyFAI

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such .poni file")
    try:
        return pyFAI.load(str(path))
    except Exception as e:  # pyFAI raises many kinds on a bad file
        raise InputError(f"{path}: not a readable pyFAI .poni file ({e})") from e


def geometry_from_poni(path) -> Geometry:
    """Single flat panel :class:`Geometry` of a ``.poni`` with a regular detector.

    A ``.poni`` naming a multi-panel (pixel-corner) detector reads back as a pyFAI integrator
    (:func:`read_poni`) but not as panels: use the ``.geom`` written beside it.
    """
    ai = read_poni(path)
    try:
        return from_pyfai(ai)
    except GeometryError as e:
        raise GeometryError(f"{path}: {e}") from e
