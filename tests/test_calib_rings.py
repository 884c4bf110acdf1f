"""Expected rings, overlays and ring picking (peaknet_gui.calib.rings)."""

import numpy as np
import pytest

from peaknet_gui.calib.calibrants import ring_table
from peaknet_gui.calib.geometry_convert import to_pyfai
from peaknet_gui.calib.integrate import FrameIntegrator
from peaknet_gui.calib.rings import expected_rings, extract_control_points, pick_rings, ring_points
from peaknet_gui.geometry.detector import Geometry, Panel
from peaknet_gui.sim.powder import simulate_calibrant_frame

PIX = 172e-6


def test_expected_rings_centered_and_off_detector():
    g = Geometry.single_panel((256, 256), PIX, 0.2, 127.5, 127.5, photon_energy_ev=12398.419843320026)
    rings = expected_rings(g, "AgBh")
    t = ring_table("AgBh", 1.0)
    assert rings[0].d_a == pytest.approx(58.38) and rings[0].index == 0
    assert rings[2].radius_px == pytest.approx(0.2 * np.tan(t.twotheta_rad[2]) / PIX)
    assert rings[2].q_inv_a == pytest.approx(t.q_inv_a[2])
    full = [r for r in rings if r.radius_px < 120]
    assert full and all(r.on_detector and r.coverage > 0.99 for r in full)
    assert not rings[-1].on_detector and rings[-1].coverage == 0
    off = expected_rings(Geometry.single_panel((195, 487), PIX, 0.5138, -5.42, 85.86), "AgBh", 0.73363)
    arcs = [r for r in off if r.on_detector]  # beam 5.4 px off the left edge: right half-rings only
    assert len(arcs) >= 10 and all(0 < r.coverage < 0.6 for r in arcs)


def test_ring_points_lie_on_the_ring():
    panels = [
        Panel("a", 0, 99, 0, 49, corner_x=-120.0, corner_y=-60.0, res=1 / PIX, clen=None),
        Panel("b", 0, 99, 50, 99, corner_x=-10.0, corner_y=5.0, res=1 / PIX, clen=None, fs=(0.999, 0.0, 0.0447)),
    ]
    g = Geometry(panels=panels, clen=0.1)
    tth = 0.12
    fs, ss = ring_points(g, tth, 2000)
    ok = np.isfinite(fs)
    assert ok.sum() > 50 and np.isnan(fs).any()  # arcs with breaks
    x, y, z = g.lab_xyz(fs[ok], ss[ok])
    np.testing.assert_allclose(np.arctan2(np.hypot(x, y), z), tth, atol=1e-6)
    assert set(g.panel_at(fs[ok], ss[ok])) == {0, 1}


def test_pick_rings_and_control_points():
    g = Geometry.single_panel((256, 256), PIX, 0.25, 120.3, 133.8)
    f = simulate_calibrant_frame(g, "AgBh", 1.0, peak_photons=300, seed=2)
    prof = FrameIntegrator(g, f.data.shape, 1.0).profile(f.data, bad=f.bad, unit="2th_rad", npt=800)
    picked = pick_rings(prof, "AgBh")
    assert [p.index for p in picked[:4]] == [0, 1, 2, 3]
    for p in picked:
        assert abs(p.twotheta_obs_rad - p.twotheta_expected_rad) < 2 * np.diff(prof.radial).mean()
    conv = to_pyfai(g, f.data.shape, 1.0)
    cps = extract_control_points(f.data, f.bad, conv, "AgBh", 1.0, max_rings=4)
    assert list(cps.rings) == [0, 1, 2, 3] and len(cps) > 40
    r = np.hypot(cps.fs - 120.3, cps.ss - 133.8)
    r_exp = 0.25 * np.tan(ring_table("AgBh", 1.0).twotheta_rad[cps.points[:, 2].astype(int)]) / PIX
    assert np.median(np.abs(r - r_exp)) < 0.3
    again = extract_control_points(f.data, f.bad, conv, "AgBh", 1.0, max_rings=4)
    np.testing.assert_array_equal(again.points, cps.points)  # reproducible


def test_pick_rings_on_blank_profile_finds_nothing():
    g = Geometry.single_panel((128, 128), PIX, 0.25, 64, 64)
    rng = np.random.default_rng(0)
    data = rng.poisson(5.0, size=(128, 128)).astype(np.float32)
    prof = FrameIntegrator(g, data.shape, 1.0).profile(data, unit="2th_rad", npt=200)
    assert pick_rings(prof, "AgBh") == []
