"""Project geometry <-> pyFAI geometry (peaknet_gui.calib.geometry_convert)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from peaknet_gui.calib.geometry_convert import fit2d_parameters, from_pyfai, geometry_from_fit2d, to_pyfai
from peaknet_gui.geometry.detector import Geometry, Panel
from peaknet_gui.geometry.pixelmap import pixel_map

PIX = 172e-6


def _pyfai_maps(conv, shape):
    ai = conv.integrator
    return ai.center_array(shape, unit="2th_rad", scale=False), ai.center_array(shape, unit="chi_rad", scale=False)


def _check_same_angles(g, shape, tol_tth=5e-8, tol_chi=5e-5):
    conv = to_pyfai(g, shape, wavelength_a=1.0)
    tth, chi = _pyfai_maps(conv, shape)
    pm = pixel_map(g, shape)
    v = conv.valid
    assert np.max(np.abs(tth - pm.twotheta)[v]) < tol_tth
    phi = np.arctan2(pm.y, pm.x) * (-1 if conv.mirror else 1)
    far = v & (np.hypot(pm.x, pm.y) > 20 * PIX)  # azimuth is ill-defined at the beam
    assert np.max(np.abs(np.angle(np.exp(1j * (chi - phi))))[far]) < tol_chi
    return conv


@pytest.mark.parametrize("bc", [(700.3, 800.7), (-5.42, 85.86), (-40.0, -30.0), (10.0, 2000.0)])
def test_flat_panel_exact_and_poni_is_corner_convention(bc):
    shape = (195, 487)
    g = Geometry.single_panel(shape, PIX, 0.5138, *bc)
    conv = _check_same_angles(g, shape)
    ai = conv.integrator
    assert conv.kind == "flat" and not conv.mirror
    # pyFAI puts the first pixel's corner at 0: PONI = (beam centre + 0.5) * pixel
    assert ai.poni2 == pytest.approx((bc[0] + 0.5) * PIX, abs=1e-12)
    assert ai.poni1 == pytest.approx((bc[1] + 0.5) * PIX, abs=1e-12)
    assert ai.dist == pytest.approx(0.5138) and (ai.rot1, ai.rot2, ai.rot3) == pytest.approx((0, 0, 0), abs=1e-15)
    # a pixel's 2-theta computed by hand in the project's convention
    fs, ss = 100, 50
    r = np.hypot(fs - bc[0], ss - bc[1]) * PIX
    assert ai.tth(np.array([ss]), np.array([fs]))[0] == pytest.approx(np.arctan2(r, 0.5138), abs=1e-9)


def test_fit2d_centre_is_beam_centre_plus_half():
    g = Geometry.single_panel((195, 487), PIX, 0.5138, -5.42, 85.86)
    f2d = fit2d_parameters(g)
    assert f2d["centerX"] == pytest.approx(-4.92) and f2d["centerY"] == pytest.approx(86.36)
    assert f2d["directDist"] == pytest.approx(513.8)
    back = geometry_from_fit2d(513.8, -4.92, 86.36, (195, 487), 172.0)
    assert back.beam_center() == pytest.approx((-5.42, 85.86)) and back.clen == pytest.approx(0.5138)


@pytest.mark.parametrize("angles", [(3, -4, 10), (0, 2, 0), (-1.5, 0, -90)])
def test_tilted_panel_exact_and_round_trip(angles):
    shape = (300, 400)
    g = Geometry.single_panel(shape, 100e-6, 0.15, 120.0, 180.0)
    rot = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    g.panels[0].fs = tuple(rot @ [1, 0, 0])
    g.panels[0].ss = tuple(rot @ [0, 1, 0])
    conv = _check_same_angles(g, shape)
    assert conv.kind == "flat"
    back = conv.geometry()
    a, b = pixel_map(g, shape), pixel_map(back, shape)
    for k in ("x", "y", "z"):
        np.testing.assert_allclose(getattr(b, k), getattr(a, k), atol=1e-12)


def test_mirrored_panel_uses_mirror_matching():
    shape = (300, 400)
    g = Geometry.single_panel(shape, 100e-6, 0.15, 120.0, 180.0)
    g.panels[0].ss = (0.0, -1.0, 0.0)
    g.panels[0].corner_y = 180.5
    conv = _check_same_angles(g, shape)
    assert conv.mirror
    np.testing.assert_allclose(pixel_map(conv.geometry(), shape).y, pixel_map(g, shape).y, atol=1e-12)


def _two_panels():
    panels = [
        Panel("a", 0, 99, 0, 49, corner_x=-120.0, corner_y=-60.0, res=1 / 100e-6, clen=None, coffset=0.0),
        Panel("b", 0, 99, 50, 99, corner_x=-10.0, corner_y=5.0, res=1 / 100e-6, clen=None, coffset=0.002),
    ]
    return Geometry(panels=panels, clen=0.1)


def test_multi_panel_corners_and_rigid_move():
    g = _two_panels()
    conv = _check_same_angles(g, (100, 100))
    assert conv.kind == "corners"
    assert conv.params == pytest.approx((0.101, 0, 0, 0, 0, 0))
    moved = conv.geometry((0.111, 1e-3, -2e-3, 0.0, 0.0, 0.0))
    # detector moved by -poni: beam centre +10 px in ss, -20 px in fs; every panel 10 mm further
    assert moved.beam_center(0) == pytest.approx((g.beam_center(0)[0] - 20, g.beam_center(0)[1] + 10))
    assert moved.beam_center(1) == pytest.approx((g.beam_center(1)[0] - 20, g.beam_center(1)[1] + 10))
    assert moved.panels[1].distance(moved.clen) - moved.panels[0].distance(moved.clen) == pytest.approx(0.002)
    assert moved.mean_camera_length() == pytest.approx(g.mean_camera_length() + 0.010)


def test_from_pyfai_tilted():
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    ai = AzimuthalIntegrator(dist=0.2, poni1=0.01, poni2=0.02, rot1=0.05, rot2=-0.03, rot3=0.2,
                             detector=Detector(1e-4, 1e-4, max_shape=(100, 120), orientation=3), wavelength=1e-10)
    g = from_pyfai(ai)
    assert g.photon_energy_ev == pytest.approx(12398.419843, rel=1e-9)
    np.testing.assert_allclose(pixel_map(g, (100, 120)).twotheta, ai.center_array((100, 120), unit="2th_rad", scale=False),
                               atol=5e-8)
