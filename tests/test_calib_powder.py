"""Calibrant powder rings on project geometries (peaknet_gui.sim.powder)."""

import numpy as np
import pytest

from peaknet_gui.calib.calibrants import ring_table
from peaknet_gui.errors import CalibrationError
from peaknet_gui.geometry.detector import Geometry, Panel
from peaknet_gui.geometry.pixelmap import pixel_map
from peaknet_gui.sim.powder import module_gap_mask, render_powder_rings, simulate_calibrant_frame

PIX = 172e-6


def _profile_peak(img, bc, r_expected, halfwidth=4.0):
    ss, fs = np.indices(img.shape)
    r = np.hypot(fs - bc[0], ss - bc[1])
    sel = np.abs(r - r_expected) < halfwidth
    w = img[sel]
    return float(np.sum(w * r[sel]) / np.sum(w))


@pytest.mark.parametrize("bc", [(128.3, 120.6), (-20.4, 90.2)])  # on and off the detector
def test_rings_sit_at_calibrant_radii(bc):
    g = Geometry.single_panel((200, 256), PIX, 0.15, *bc)
    img = render_powder_rings(g, "AgBh", 1.0, polarization=None, solid_angle=False)
    tth = ring_table("AgBh", 1.0).twotheta_rad
    for k in range(3):
        r_exp = 0.15 * np.tan(tth[k]) / PIX
        if r_exp < -bc[0] + 4:  # ring does not reach the detector
            continue
        assert _profile_peak(img, bc, r_exp) == pytest.approx(r_exp, abs=0.1)


def test_peak_photons_and_zero_between_rings():
    g = Geometry.single_panel((200, 200), PIX, 0.2, 99.5, 99.5)
    img = render_powder_rings(g, "AgBh", 1.0, peak_photons=80.0, polarization=None, solid_angle=False)
    assert 60 < img.max() <= 80.5
    tth = ring_table("AgBh", 1.0).twotheta_rad
    r_mid = 0.2 * np.tan(0.5 * (tth[0] + tth[1])) / PIX  # half-way between rings 1 and 2
    ss, fs = np.indices(img.shape)
    between = np.abs(np.hypot(fs - 99.5, ss - 99.5) - r_mid) < 1
    assert img[between].max() < 0.01 * img.max()


def test_texture_modulates_azimuthally():
    g = Geometry.single_panel((201, 201), PIX, 0.2, 100.0, 100.0)
    img = render_powder_rings(g, "AgBh", 1.0, texture=0.5, polarization=None, solid_angle=False)
    r1 = 0.2 * np.tan(ring_table("AgBh", 1.0).twotheta_rad[0]) / PIX
    along_x = img[100, 100 + int(round(r1)) - 2: 100 + int(round(r1)) + 3].max()
    along_y = img[100 + int(round(r1)) - 2: 100 + int(round(r1)) + 3, 100].max()
    assert along_x / along_y == pytest.approx(1.5 / 0.5, rel=0.1)


def test_multi_panel_rings_continuous_and_zero_off_panels():
    panels = [
        Panel("a", 0, 127, 0, 99, corner_x=-64.0, corner_y=-110.0, res=1 / PIX, clen=None),
        Panel("b", 0, 127, 100, 199, corner_x=-64.0, corner_y=10.0, res=1 / PIX, clen=None),
    ]
    g = Geometry(panels=panels, clen=0.15)
    img = render_powder_rings(g, "AgBh", 1.0, shape=(210, 140), polarization=None, solid_angle=False)
    assert np.all(img[:, 128:] == 0) and np.all(img[200:] == 0)
    pm = pixel_map(g, (210, 140))
    tth = ring_table("AgBh", 1.0).twotheta_rad[1]
    on_ring = np.abs(pm.twotheta - tth) < 0.2 * PIX / 0.15
    vals_a = img[:100][on_ring[:100]]
    vals_b = img[100:200][on_ring[100:200]]
    assert len(vals_a) > 5 and len(vals_b) > 5
    assert np.median(vals_a) == pytest.approx(np.median(vals_b), rel=0.15)


@pytest.mark.parametrize("name", ["CeO2", "LaB6", "Si"])
def test_other_calibrants_first_ring(name):
    g = Geometry.single_panel((300, 300), 100e-6, 0.05, 149.5, 149.5)
    img = render_powder_rings(g, name, 0.5, polarization=None, solid_angle=False)
    t0 = ring_table(name, 0.5).twotheta_rad[0]
    r0 = 0.05 * np.tan(t0) / 100e-6
    assert _profile_peak(img, (149.5, 149.5), r0, 3.0) == pytest.approx(r0, abs=0.15)


def test_noisy_frame_statistics_and_masks():
    g = Geometry.single_panel((400, 500), PIX, 0.2, 250.0, 190.0)
    f1 = simulate_calibrant_frame(g, "AgBh", 1.0, module_gaps=True, beamstop_radius_px=8, seed=3)
    f2 = simulate_calibrant_frame(g, "AgBh", 1.0, module_gaps=True, beamstop_radius_px=8, seed=3)
    np.testing.assert_array_equal(f1.data, f2.data)
    assert f1.data.dtype == np.float32 and f1.data.shape == (400, 500)
    gaps = module_gap_mask((400, 500))
    assert gaps[195:212].all() and f1.bad[gaps].all() and np.all(f1.data[gaps] == 0)
    assert f1.bad[190, 250]  # beamstop shadow
    good = ~f1.bad
    assert abs(f1.data[good].mean() / f1.expected[good].mean() - 1) < 0.02
    assert f1.beam_center == pytest.approx((250.0, 190.0))
    assert len(f1.ring_twotheta_rad) >= 5


def test_bad_requests_raise():
    g = Geometry.single_panel((50, 50), PIX, 0.1, 25, 25)
    with pytest.raises(CalibrationError, match="wavelength"):
        render_powder_rings(g, "AgBh")
    with pytest.raises(CalibrationError, match="unknown calibrant"):
        render_powder_rings(g, "unobtainium", 1.0)
    with pytest.raises(CalibrationError):
        render_powder_rings(g, "AgBh", -1.0)
