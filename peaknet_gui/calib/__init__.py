"""Calibrant rings with pyFAI: integration, expected rings, ring picking, geometry refinement,
``.poni``/``.geom`` output (Qt-free).

    from peaknet_gui.calib import calibrate, FrameIntegrator, expected_rings
    result = calibrate(frame, rough_geometry, "AgBh", wavelength_a=1.0)

Modules: :mod:`.calibrants` (pyFAI's calibrant registry), :mod:`.geometry_convert` (project
geometry <-> pyFAI PONI), :mod:`.integrate` (I(q), I(2theta), I(d)), :mod:`.rings` (expected
rings, overlays, ring picking, control points), :mod:`.search` (coarse beam centre / distance),
:mod:`.refine` (the fit: distance, centre and tilt), :mod:`.model` (pyFAI's 2-theta model, least
squares), :mod:`.uncertainty` (covariance, whether the tilt is determined), :mod:`.residuals`
(per ring, per panel), :mod:`.result` (:class:`CalibrationResult`), :mod:`.writers` (``.geom`` /
``.poni``), :mod:`.frame_input`.
"""

from ..errors import CalibrationError
from .calibrants import RingTable, calibrant_names, load_calibrant, ring_table
from .geometry_convert import PyFAIGeometry, fit2d_parameters, from_pyfai, geometry_from_fit2d, to_pyfai
from .integrate import FrameIntegrator, RadialProfile, integrate_frame
from .refine import CalibrationResult, calibrate
from .rings import ControlPoints, ExpectedRing, PickedRing, expected_rings, extract_control_points, pick_rings, ring_points
from .writers import geometry_from_poni, read_poni, write_calibrated_geom, write_poni, write_result_poni

__all__ = [
    "CalibrationError", "RingTable", "calibrant_names", "load_calibrant", "ring_table", "PyFAIGeometry",
    "fit2d_parameters", "from_pyfai", "geometry_from_fit2d", "to_pyfai", "FrameIntegrator", "RadialProfile",
    "integrate_frame", "CalibrationResult", "calibrate", "ControlPoints", "ExpectedRing", "PickedRing",
    "expected_rings", "extract_control_points", "pick_rings", "ring_points", "geometry_from_poni", "read_poni",
    "write_calibrated_geom", "write_poni", "write_result_poni",
]
