"""Qt-free work behind the calibration dock: start geometry, radial profiles, fit, save.

Everything here runs in the dock's background thread (see :mod:`.docks.calibration`) and only
calls the calibration core (:mod:`peaknet_gui.calib`):

* :func:`prefill_from_view` -- what the dock's fields start from for the frame on screen: the
  photon energy of the frame's metadata (else the geometry's), beam centre, camera length and
  pixel size of the frame's effective geometry (else of its metadata);
* :func:`start_geometry` -- the frame's geometry moved to the typed beam centre and distance
  (a single flat panel from the fields when the run has no geometry);
* :func:`compute_profiles` -- I(q) of the frame at the start geometry (and at the refined one
  after a fit), the calibrant's rings, and the rings as polylines in the image's scene
  coordinates (:mod:`.calibration_rings`);
* :func:`run_fit` -- :func:`peaknet_gui.calib.refine.calibrate` (with the GUI's heap frozen for
  the garbage collector, see :func:`_gc_frozen`);
* :func:`save_result` -- ``.geom`` + ``.poni``; the result's tables (before/after, per ring,
  per panel) come from :mod:`.calibration_report`.
"""

from __future__ import annotations

import contextlib
import gc
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..errors import CalibrationError, ExportError, GeometryError
from ..frame import Frame
from ..geometry.detector import HC_EV_A, Geometry
from .calibration_report import (comparison_rows, fit_quality_warning, panel_rows, ring_rows,  # noqa: F401
                                 rings_used_text, tilt_note)
from .calibration_rings import RingPaths, ring_paths

if TYPE_CHECKING:  # pragma: no cover
    from ..calib.calibrants import RingTable
    from ..calib.integrate import RadialProfile
    from ..calib.refine import CalibrationResult

# The calibration core (scipy.signal, pyFAI) is imported inside the functions: the window starts
# without it and the first use (in the dock's thread) pays for it.

#: how far (pixels) the coarse search looks for the beam centre around the typed one; wider than
#: the command line's default so that e.g. a beam centre with swapped fs/ss labels is still found
DEFAULT_SEARCH_PX = 128.0


@dataclass(frozen=True)
class CalibrationInputs:
    """What the user typed: calibrant, wavelength, rough distance and beam centre, options."""

    calibrant: str
    wavelength_a: float
    distance_m: float
    beam_fs: float  # pixel indices (centre of the first pixel at 0); may lie off the detector
    beam_ss: float
    pixel_size_m: Optional[float] = None  # only used when the run has no geometry
    tilt: str = "auto"  # detector tilt: "auto" (kept when the rings determine it), "fit" or "fixed"
    search_px: float = DEFAULT_SEARCH_PX

    @property
    def photon_energy_ev(self) -> float:
        return HC_EV_A / self.wavelength_a


@dataclass(frozen=True)
class Prefill:
    """Field values taken from the frame on screen (None: unknown)."""

    wavelength_a: Optional[float]
    distance_m: Optional[float]
    beam_fs: Optional[float]
    beam_ss: Optional[float]
    pixel_size_m: Optional[float]
    has_geometry: bool

    @property
    def key(self) -> tuple:
        return tuple(None if v is None else round(float(v), 9) for v in
                     (self.wavelength_a, self.distance_m, self.beam_fs, self.beam_ss, self.pixel_size_m)) + (
                         self.has_geometry,)


def prefill_from_view(view) -> Prefill:
    """Field values for a :class:`~.display.FrameView`: energy from the frame's metadata (then the
    geometry's), beam centre / distance / pixel size from its effective geometry (then metadata)."""
    md = view.frame.metadata
    e = md.photon_energy_ev if md.photon_energy_ev and md.photon_energy_ev > 0 else None
    wl = HC_EV_A / e if e else view.wavelength_a
    g = view.geometry
    if g is not None:
        try:
            fs, ss = g.beam_center(0)
            dist = g.mean_camera_length()
            return Prefill(wl, dist if math.isfinite(dist) and dist > 0 else None, fs, ss, g.panels[0].pixel_size, True)
        except (GeometryError, ValueError, ZeroDivisionError, np.linalg.LinAlgError):
            pass
    h, w = view.frame.shape
    fs = md.beam_center_fs if md.beam_center_fs is not None else (w - 1) / 2.0
    ss = md.beam_center_ss if md.beam_center_ss is not None else (h - 1) / 2.0
    return Prefill(wl, md.detector_distance_m or None, fs, ss, md.pixel_size_m or None, False)


def start_geometry(base: Optional[Geometry], shape: tuple, inputs: CalibrationInputs) -> Geometry:
    """The rough starting geometry: ``base`` (the frame's effective geometry) with panel 0's beam
    centre moved to the typed one and the camera length set to the typed distance; without a
    base, one flat panel of the typed pixel size."""
    from ..calib.search import shifted_geometry

    if not (inputs.distance_m and inputs.distance_m > 0):
        raise CalibrationError("give the rough detector distance (mm) before fitting")
    if base is None:
        if not (inputs.pixel_size_m and inputs.pixel_size_m > 0):
            raise CalibrationError("the run has no geometry: give the pixel size (mm), or open a CrystFEL .geom first")
        return Geometry.single_panel(shape, inputs.pixel_size_m, inputs.distance_m, inputs.beam_fs, inputs.beam_ss,
                                     photon_energy_ev=inputs.photon_energy_ev)
    g = base.copy()
    if g.clen is None and all(p.clen is None for p in g.panels):  # clen read per frame: fill it
        g.clen = inputs.distance_m
        g.clen_path = None
    p0 = g.panels[0]
    u = inputs.beam_fs - p0.min_fs + 0.5
    v = inputs.beam_ss - p0.min_ss + 0.5
    x = p0.corner_x + u * p0.fs[0] + v * p0.ss[0]  # lab position (panel-0 pixels) of the typed beam centre
    y = p0.corner_y + u * p0.fs[1] + v * p0.ss[1]
    g = shifted_geometry(g, x, y, inputs.distance_m)
    g.photon_energy_ev = inputs.photon_energy_ev
    g.photon_energy_path = None
    return g


# --- profiles -----------------------------------------------------------------------------------------
@dataclass
class ProfileResult:
    """What the dock draws for one frame: profiles, ring positions, ring overlays."""

    key: tuple
    index: int
    calibrant: str
    wavelength_a: float
    table: RingTable  # the calibrant's rings at this wavelength
    start: RadialProfile
    expected: RingPaths
    refined: Optional[RadialProfile] = None
    refined_paths: Optional[RingPaths] = None
    notes: list = field(default_factory=list)


def geometry_key(geometry: Geometry, shape: tuple, wavelength_a: float) -> tuple:
    """What an integrator depends on: panel placement, camera lengths, frame shape, wavelength."""
    panels = tuple((p.min_fs, p.max_fs, p.min_ss, p.max_ss, round(p.corner_x, 9), round(p.corner_y, 9),
                    tuple(round(v, 12) for v in p.fs), tuple(round(v, 12) for v in p.ss), round(p.res, 9),
                    p.clen, p.coffset) for p in geometry.panels)
    return panels, geometry.clen, tuple(shape), round(float(wavelength_a), 9)


_integrators: "OrderedDict[tuple, object]" = OrderedDict()
_integrators_lock = threading.Lock()


def _integrator(geometry: Geometry, shape: tuple, wavelength_a: float):
    """A (cached) FrameIntegrator: pyFAI's look-up table is built once per geometry, so browsing
    frames with the dock open integrates each new frame in a fraction of the first one's time."""
    from ..calib.integrate import FrameIntegrator

    key = geometry_key(geometry, shape, wavelength_a)
    with _integrators_lock:
        integ = _integrators.get(key)
        if integ is not None:
            _integrators.move_to_end(key)
            return integ
    integ = FrameIntegrator(geometry, shape, wavelength_a=wavelength_a)
    with _integrators_lock:
        _integrators[key] = integ
        while len(_integrators) > 3:
            _integrators.popitem(last=False)
    return integ


def profile_bins(geometry: Geometry, shape: tuple) -> int:
    """About one radial bin per pixel of radius: half the diagonal when the beam is on the frame,
    the whole diagonal when it is off (the rings are arcs spanning the frame)."""
    h, w = shape
    diag = math.hypot(h, w)
    try:
        fs, ss = geometry.beam_center(0)
        inside = -0.5 <= fs <= w - 0.5 and -0.5 <= ss <= h - 0.5
    except (GeometryError, ValueError, np.linalg.LinAlgError):
        inside = False
    return int(np.clip(diag * (0.5 if inside else 1.0), 64, 4096))


#: pyFAI method of the dock's profiles: a plain histogram (no pixel splitting, no look-up table).
#: Every change of the typed geometry needs a new integrator; building a split CSR table for a
#: 1920 x 1920 detector takes ~2 s against ~0.3 s for the histogram, and at about one bin per
#: pixel of radius the two profiles show the same rings.
PROFILE_METHOD = ("no", "histogram", "cython")


def _profile(frame: Frame, geometry: Geometry, wavelength_a: float) -> "RadialProfile":
    integ = _integrator(geometry, frame.shape, wavelength_a)
    return integ.profile(frame, unit="q_A^-1", npt=profile_bins(geometry, frame.shape), method=PROFILE_METHOD)


def compute_profiles(key: tuple, index: int, frame: Frame, start: Geometry, calibrant: str, wavelength_a: float,
                     mapper=None, refined: Optional[Geometry] = None,
                     refined_rings: Optional[list] = None) -> ProfileResult:
    """Integrate ``frame`` at ``start`` (and at ``refined``), rings and their overlays (at the
    refined geometry: the rings ``refined_rings`` the fit used, when given)."""
    from ..calib._quiet import quiet_pyfai
    from ..calib.calibrants import ring_table

    with quiet_pyfai():
        table = ring_table(calibrant, wavelength_a)
        prof = _profile(frame, start, wavelength_a)
        paths = ring_paths(start, calibrant, wavelength_a, frame.shape, mapper)
        res = ProfileResult(key, index, table.calibrant, wavelength_a, table, prof, paths)
        if refined is not None:
            res.refined = _profile(frame, refined, wavelength_a)
            res.refined_paths = ring_paths(refined, calibrant, wavelength_a, frame.shape, mapper, only=refined_rings)
    if not paths.rings:
        res.notes.append(f"no {table.calibrant} ring falls on the detector at this geometry and energy")
    return res


# --- the fit ---------------------------------------------------------------------------------------
_gc_lock = threading.Lock()


@contextlib.contextmanager
def _gc_frozen():
    """Objects that exist now are skipped by the garbage collector until the block ends.

    pyFAI's geometry refinement runs a full collection each time it builds a refinement object
    (about 70 per fit).  In the GUI's heap (Qt, pyqtgraph, torch: ~300k objects) each one costs
    ~0.1 s, which tripled the fit's time; the objects made during the fit are still collected.
    Only one fit runs at a time (the dock's thread), the lock makes sure of it anyway."""
    with _gc_lock:
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()


def run_fit(frame: Frame, start: Geometry, inputs: CalibrationInputs) -> CalibrationResult:
    """:func:`~peaknet_gui.calib.refine.calibrate` from the typed start (errors: CalibrationError)."""
    from ..calib.refine import calibrate

    with _gc_frozen():
        return calibrate(frame, start, inputs.calibrant, inputs.wavelength_a, fit_tilt=inputs.tilt,
                         search_px=inputs.search_px, min_rings=3 if inputs.tilt == "fit" else 2)


def applied_geometry(result: CalibrationResult, base: Optional[Geometry] = None) -> Geometry:
    """The refined geometry as the run should use it and files should hold it: ``base`` (the
    run's geometry before the fit) lends its comments and a photon energy read from the files."""
    from ..calib.writers import calibrated_geometry_for_file

    return calibrated_geometry_for_file(result, base if base is not None else result.start_geometry)


def save_result(result: CalibrationResult, geom_path, base: Optional[Geometry] = None) -> tuple:
    """Write the refined geometry as CrystFEL ``.geom`` at ``geom_path`` and pyFAI ``.poni``
    beside it (same stem); both atomic.  Returns (geom path, poni path)."""
    from ..calib._quiet import quiet_pyfai
    from ..calib.writers import write_result_poni
    from ..geometry.crystfel_geom import write_geom

    geom_path = Path(geom_path)
    if geom_path.suffix.lower() != ".geom":
        geom_path = geom_path.with_name(geom_path.name + ".geom")
    poni_path = geom_path.with_suffix(".poni")
    with quiet_pyfai():
        try:
            write_geom(applied_geometry(result, base), geom_path)
        except OSError as e:
            raise ExportError(f"{geom_path}: cannot write the geometry ({e.strerror or e})") from e
        write_result_poni(result, poni_path)  # ExportError naming the file on failure
    return geom_path, poni_path


__all__ = ["CalibrationInputs", "Prefill", "prefill_from_view", "start_geometry", "profile_bins", "ProfileResult",
           "compute_profiles", "run_fit", "comparison_rows", "ring_rows", "panel_rows", "tilt_note",
           "fit_quality_warning", "rings_used_text", "save_result",
           "applied_geometry", "DEFAULT_SEARCH_PX", "PROFILE_METHOD"]
