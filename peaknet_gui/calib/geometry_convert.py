"""Conversion between the project's CrystFEL-style :class:`Geometry` and pyFAI geometries.

pyFAI places a pixel at ``t = R(rot1, rot2, rot3) . (p1 - poni1, p2 - poni2, dist + p3)`` where
``(p1, p2, p3)`` is the pixel's position on the detector (slow, fast, out of plane; metres, the
*corner* of the first pixel at 0 so its centre is at half a pixel) and ``t = (t1, t2, t3)`` is
the lab position (t3 along the beam).  The project places the centre of data pixel ``(fs, ss)``
at ``corner + (fs - min_fs + 0.5) fs_vec + (ss - min_ss + 0.5) ss_vec`` (pixels) with
``z = clen + coffset`` -- see :mod:`peaknet_gui.geometry.detector`.

The lab frames are matched by ``t = P . (x, y, z)`` with ``P`` swapping x and y
(``t1 = y``, ``t2 = x``): pyFAI's slow axis is the project's ss/y axis and its fast axis the
fs/x axis, and pyFAI's azimuth ``chi = atan2(t1, t2)`` equals the project's ``atan2(y, x)``.
A panel whose fs/ss/beam triad has the other handedness (e.g. ``ss = -y``) is matched with the
mirror ``t1 = -y`` instead (``mirror=True``, pyFAI's chi is then ``-atan2(y, x)``); 2-theta and q
never depend on this choice.

* A single flat panel (the usual synchrotron case) maps onto a regular pyFAI ``Detector``
  exactly: for an untilted panel ``poni1 = -corner_y / res``, ``poni2 = -corner_x / res``,
  ``dist = clen + coffset``, i.e. ``poni = (beam centre + 0.5) * pixel``.  Tilted panels map
  onto ``rot1..3`` (and back) exactly too.
* Several panels map onto a pyFAI detector described by per-pixel corner positions (the
  NeXus-detector model), with ``poni1 = poni2 = 0``, no rotation and ``dist`` = mean camera
  length; refining ``poni``/``dist``/``rot`` then moves the whole detector rigidly, which
  :meth:`PyFAIGeometry.geometry` turns back into new panel corners, vectors and ``clen``.
  A ``.poni`` file cannot carry such a detector; write the detector with pyFAI beside it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..errors import GeometryError
from ..geometry.detector import HC_EV_A, Geometry, Panel

log = logging.getLogger(__name__)

#: lab (x, y, z) -> pyFAI (t1, t2, t3): t1 = y, t2 = x
P_STANDARD = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
#: for left-handed panels: t1 = -y, t2 = x
P_MIRROR = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
_ORTHO_TOL = 1e-6


@dataclass
class PanelPlacement:
    """Affine map of one panel into pyFAI detector coordinates (metres): the pixel at panel
    position (u, v) = (fs - min_fs, ss - min_ss) (corner convention: its centre at u+0.5, v+0.5)
    sits at ``origin + u * step_fs + v * step_ss`` as (p1, p2, p3)."""

    origin: np.ndarray
    step_fs: np.ndarray
    step_ss: np.ndarray


@dataclass
class PyFAIGeometry:
    """A project geometry as a ready pyFAI azimuthal integrator, and the way back.

    ``kind`` is ``"flat"`` (one flat panel, regular pyFAI detector: exact, ``.poni`` writable)
    or ``"corners"`` (several panels: pixel-corner detector).  ``valid`` marks the data pixels
    that lie on a panel.  :meth:`geometry` gives the project geometry for any PONI parameters
    (e.g. refined ones); :attr:`params` are the integrator's current ones.
    """

    integrator: object  # pyFAI AzimuthalIntegrator
    kind: str
    mirror: bool
    base: Geometry
    shape: tuple
    valid: np.ndarray
    placements: list
    base_dist: float  # pyFAI dist of ``base`` (the camera length that ``base.clen`` belongs to)

    @property
    def params(self) -> tuple:
        ai = self.integrator
        return (ai.dist, ai.poni1, ai.poni2, ai.rot1, ai.rot2, ai.rot3)

    @property
    def lab_to_pyfai(self) -> np.ndarray:
        return P_MIRROR if self.mirror else P_STANDARD

    def geometry(self, params: Optional[Sequence[float]] = None) -> Geometry:
        """Project geometry for PONI ``params`` = (dist, poni1, poni2, rot1, rot2, rot3)."""
        from pyFAI.geometry import Geometry as PGeometry

        dist, poni1, poni2, rot1, rot2, rot3 = self.params if params is None else tuple(params)
        rot = PGeometry().rotation_matrix([dist, poni1, poni2, rot1, rot2, rot3])
        back = self.lab_to_pyfai.T @ rot  # pyFAI detector coordinates -> lab (m)
        shift = np.array([-poni1, -poni2, dist])
        out = self.base.copy()
        clen0 = out.clen if out.clen is not None else out.mean_camera_length()
        new_clen = clen0 + (dist - self.base_dist)
        corners_z = []
        for panel, place in zip(out.panels, self.placements):
            res = panel.res
            c = back @ (place.origin + shift)
            fs = back @ place.step_fs * res
            ss = back @ place.step_ss * res
            panel.corner_x, panel.corner_y = float(c[0] * res), float(c[1] * res)
            panel.fs = tuple(_clean(v) for v in fs)
            panel.ss = tuple(_clean(v) for v in ss)
            corners_z.append(float(c[2]))
        for panel, z in zip(out.panels, corners_z):
            if self.kind == "flat":
                panel.clen = None
                panel.coffset = 0.0
                new_clen = z
            else:
                panel.clen = None
                panel.coffset = _clean(z - new_clen)
        out.clen = float(new_clen)
        out.clen_path = None
        return out


def _clean(v: float, eps: float = 1e-13) -> float:
    return 0.0 if abs(v) < eps else float(v)


def _panel_frame(panel: Panel) -> tuple:
    f = np.asarray(panel.fs, float)
    s = np.asarray(panel.ss, float)
    return f, s


def _handedness(panel: Panel) -> float:
    """> 0 when fs x ss points away from the sample in the standard pyFAI matching."""
    f, s = _panel_frame(panel)
    fp, sp = P_STANDARD @ f, P_STANDARD @ s
    return float(np.dot(np.cross(sp, fp), [0.0, 0.0, 1.0]))


def _rotation_from_matrix(m: np.ndarray) -> tuple:
    """pyFAI (rot1, rot2, rot3) with ``rotation_matrix == m`` (via pyFAI's Euler helper)."""
    from pyFAI.third_party.transformations import euler_from_matrix

    e = euler_from_matrix(m, axes="sxyz")
    return (-float(e[0]), -float(e[1]), float(e[2]))


def _make_integrator(detector, params: tuple, wavelength_a: Optional[float]):
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    dist, poni1, poni2, rot1, rot2, rot3 = params
    ai = AzimuthalIntegrator(dist=dist, poni1=poni1, poni2=poni2, rot1=rot1, rot2=rot2, rot3=rot3, detector=detector)
    ai.auto_gc = False  # no full garbage collection on every parameter change (refinement loops)
    if wavelength_a:
        ai.wavelength = wavelength_a * 1e-10
    return ai


def _wavelength(geometry: Geometry, wavelength_a, photon_energy_ev) -> Optional[float]:
    if wavelength_a is not None:
        return float(wavelength_a)
    e = photon_energy_ev if photon_energy_ev is not None else geometry.photon_energy_ev
    return HC_EV_A / e if e else None


def to_pyfai(
    geometry: Geometry,
    shape: Optional[tuple] = None,
    wavelength_a: Optional[float] = None,
    photon_energy_ev: Optional[float] = None,
    force_corners: bool = False,
) -> PyFAIGeometry:
    """pyFAI integrator for ``geometry`` on frames of ``shape`` (default: the geometry's)."""
    shape = tuple(shape) if shape is not None else geometry.data_shape
    geometry.check_data_shape(shape, "frame")
    wl = _wavelength(geometry, wavelength_a, photon_energy_ev)
    hands = [_handedness(p) for p in geometry.panels]
    if any(abs(h) < 1e-9 for h in hands):
        raise GeometryError(f"{geometry.source or 'geometry'}: a panel is parallel to the beam; pyFAI cannot use it")
    mirror = hands[0] < 0
    valid = np.zeros(shape, dtype=bool)
    for p in geometry.panels:
        valid[p.slices()] = True
    if len(geometry.panels) == 1 and not force_corners and _is_regular(geometry.panels[0], shape):
        return _flat(geometry, shape, wl, mirror, valid)
    if any((h < 0) != mirror for h in hands):
        log.warning("%s: panels of both handednesses; pyFAI azimuths of some panels are mirrored",
                    geometry.source or "geometry")
    return _corners(geometry, shape, wl, mirror, valid)


def _is_regular(panel: Panel, shape: tuple) -> bool:
    f, s = _panel_frame(panel)
    return (
        abs(np.dot(f, s)) < _ORTHO_TOL * np.linalg.norm(f) * np.linalg.norm(s)
        and panel.min_fs == 0 and panel.min_ss == 0
        and panel.max_fs == shape[1] - 1 and panel.max_ss == shape[0] - 1
    )


def _flat(geometry: Geometry, shape, wl, mirror, valid) -> PyFAIGeometry:
    from pyFAI.detectors import Detector

    panel = geometry.panels[0]
    P = P_MIRROR if mirror else P_STANDARD
    f, s = _panel_frame(panel)
    pixel2 = np.linalg.norm(f) / panel.res
    pixel1 = np.linalg.norm(s) / panel.res
    a1 = P @ (s / np.linalg.norm(s))  # pyFAI axis 1 (slow) in pyFAI lab coordinates
    a2 = P @ (f / np.linalg.norm(f))
    a3 = np.cross(a1, a2)
    m = np.column_stack([a1, a2, a3])
    corner = P @ np.array([panel.corner_x / panel.res, panel.corner_y / panel.res, panel.distance(geometry.clen)])
    dist = float(corner @ a3)
    if dist <= 0:
        raise GeometryError(f"{geometry.source or 'geometry'}: the detector plane passes behind the sample")
    poni1 = -float(corner @ a1)
    poni2 = -float(corner @ a2)
    rots = _rotation_from_matrix(m)
    det = Detector(pixel1=pixel1, pixel2=pixel2, max_shape=shape, orientation=3)
    ai = _make_integrator(det, (dist, poni1, poni2) + rots, wl)
    place = PanelPlacement(np.zeros(3), np.array([0.0, pixel2, 0.0]), np.array([pixel1, 0.0, 0.0]))
    return PyFAIGeometry(ai, "flat", mirror, geometry.copy(), shape, valid, [place], dist)


def _corners(geometry: Geometry, shape, wl, mirror, valid) -> PyFAIGeometry:
    from pyFAI.detectors import Detector

    P = P_MIRROR if mirror else P_STANDARD
    dist0 = geometry.mean_camera_length()
    pix = float(np.median([p.pixel_size for p in geometry.panels]))
    # off-panel pixels: a flat dummy grid behind the panels (they are masked)
    ss_i, fs_i = np.mgrid[0 : shape[0] + 1, 0 : shape[1] + 1].astype(np.float64)
    grid = np.stack([np.zeros_like(ss_i), ss_i * pix, fs_i * pix], axis=-1)  # (z, p1, p2) at corners
    corners = np.empty(shape + (4, 3), dtype=np.float64)
    for k, (d1, d2) in enumerate(((0, 0), (1, 0), (1, 1), (0, 1))):  # pyFAI order A, B, C, D
        corners[:, :, k, :] = grid[d1 : d1 + shape[0], d2 : d2 + shape[1]]
    placements = []
    for p in geometry.panels:
        f, s = _panel_frame(p)
        c_lab = np.array([p.corner_x / p.res, p.corner_y / p.res, p.distance(geometry.clen)])
        origin = P @ c_lab - np.array([0.0, 0.0, dist0])
        step_fs, step_ss = P @ (f / p.res), P @ (s / p.res)
        placements.append(PanelPlacement(origin, step_fs, step_ss))
        v, u = np.mgrid[0 : p.height + 1, 0 : p.width + 1].astype(np.float64)
        pts = origin + u[..., None] * step_fs + v[..., None] * step_ss  # (p1, p2, p3)
        zyx = np.stack([pts[..., 2], pts[..., 0], pts[..., 1]], axis=-1)
        sl = p.slices()
        for k, (d1, d2) in enumerate(((0, 0), (1, 0), (1, 1), (0, 1))):
            corners[sl + (k,)] = zyx[d1 : d1 + p.height, d2 : d2 + p.width]
    det = Detector(pixel1=pix, pixel2=pix, max_shape=shape, orientation=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det.set_pixel_corners(corners)
    det.mask = (~valid).astype(np.int8)
    ai = _make_integrator(det, (dist0, 0.0, 0.0, 0.0, 0.0, 0.0), wl)
    return PyFAIGeometry(ai, "corners", mirror, geometry.copy(), shape, valid, placements, dist0)


def from_pyfai(ai, photon_energy_ev: Optional[float] = None, mirror: bool = False, name: str = "p0") -> Geometry:
    """Single flat panel :class:`Geometry` of a pyFAI geometry with a regular detector.

    The detector needs a shape; tilts become fs/ss vectors with z components.  ``mirror``
    chooses the lab matching (see the module doc); the default gives ``fs = +x, ss = +y``.
    """
    det = ai.detector
    shape = det.shape or det.max_shape
    if shape is None:
        raise GeometryError("pyFAI geometry: the detector has no shape")
    if getattr(det, "_pixel_corners", None) is not None and not det.uniform_pixel:
        raise GeometryError("pyFAI geometry: detectors with per-pixel corners need the original project geometry")
    orientation = int(getattr(det.orientation, "value", det.orientation) or 3)
    if orientation != 3:
        raise GeometryError(f"pyFAI geometry: detector orientation {orientation} is not supported (only 3)")
    ss_n, fs_n = int(shape[0]), int(shape[1])
    res = 1.0 / det.pixel2
    base = Geometry(panels=[Panel(name=name, min_fs=0, max_fs=fs_n - 1, min_ss=0, max_ss=ss_n - 1, res=res)])
    if photon_energy_ev is None and ai._wavelength:
        photon_energy_ev = HC_EV_A / (ai.wavelength * 1e10)
    base.photon_energy_ev = photon_energy_ev
    if mirror:
        base.panels[0].ss = (0.0, -1.0, 0.0)
    place = PanelPlacement(np.zeros(3), np.array([0.0, det.pixel2, 0.0]), np.array([det.pixel1, 0.0, 0.0]))
    base.clen = ai.dist
    conv = PyFAIGeometry(ai, "flat", mirror, base, (ss_n, fs_n), np.ones((ss_n, fs_n), bool), [place], ai.dist)
    return conv.geometry()


def fit2d_parameters(geometry: Geometry, shape: Optional[tuple] = None) -> dict:
    """Fit2D's description of a single flat panel (pyFAI ``getFit2D``): ``directDist`` (mm),
    ``centerX``/``centerY`` (pixels, Fit2D's corner convention: our beam centre + 0.5), ``tilt``
    and ``tiltPlanRotation`` (degrees), ``pixelX``/``pixelY`` (micrometres)."""
    conv = to_pyfai(geometry, shape)
    if conv.kind != "flat":
        raise GeometryError(f"{geometry.source or 'geometry'}: Fit2D parameters describe one flat panel only")
    return dict(conv.integrator.getFit2D())


def geometry_from_fit2d(
    direct_dist_mm: float,
    center_x: float,
    center_y: float,
    shape: tuple,
    pixel_x_um: float,
    pixel_y_um: Optional[float] = None,
    tilt_deg: float = 0.0,
    tilt_plan_rotation_deg: float = 0.0,
    photon_energy_ev: Optional[float] = None,
) -> Geometry:
    """Single flat panel from Fit2D parameters (pyFAI ``setFit2D``; centre in Fit2D's corner
    convention, so the beam centre in pixel indices is ``center - 0.5`` for an untilted detector)."""
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    pixel_y_um = pixel_x_um if pixel_y_um is None else pixel_y_um
    det = Detector(pixel1=pixel_y_um * 1e-6, pixel2=pixel_x_um * 1e-6, max_shape=tuple(shape), orientation=3)
    ai = AzimuthalIntegrator(detector=det)
    ai.setFit2D(direct_dist_mm, center_x, center_y, tilt=tilt_deg, tiltPlanRotation=tilt_plan_rotation_deg,
                pixelX=pixel_x_um, pixelY=pixel_y_um)
    return from_pyfai(ai, photon_energy_ev=photon_energy_ev)
