"""Simulate a calibrant frame -> fit beam centre and distance -> compare (peaknet_gui.calib.refine)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from peaknet_gui.calib.refine import calibrate
from peaknet_gui.errors import CalibrationError
from peaknet_gui.frame import EventId, Frame, FrameMetadata
from peaknet_gui.geometry.detector import Geometry, Panel
from peaknet_gui.sim.powder import simulate_calibrant_frame

PIX = 172e-6


def _start(true: Geometry, dfs: float, dss: float, dist_factor: float) -> Geometry:
    g = true.copy()
    for p in g.panels:
        p.corner_x -= dfs
        p.corner_y -= dss
    g.clen *= dist_factor
    return g


def _check(result, true: Geometry, bc_tol=0.5, dist_tol=0.005):
    err = np.subtract(result.beam_center, true.beam_center(0))
    assert np.all(np.abs(err) <= bc_tol), f"beam centre error {err} px"
    bc = true.beam_center(0)
    true_distance = true.panels[0].lab_xyz(bc[0], bc[1], true.clen)[2]  # sample -> beam centre
    assert abs(result.distance_m / true_distance - 1) <= dist_tol
    assert result.residual_px < 0.5
    assert result.n_control_points == len(result.control_points) > 20


@pytest.mark.parametrize(
    "shape, dist, bc, start",
    [
        ((240, 256), 0.20, (130.4, 111.7), (14.0, -11.0, 1.10)),   # centred, 10 % long start
        ((195, 487), 0.50, (-5.42, 85.86), (20.0, -20.0, 0.92)),   # beam off the detector: arcs only
        ((256, 200), 0.30, (160.2, 230.9), (-18.0, 9.0, 1.08)),    # off-centre, partial rings
    ],
)
def test_fit_recovers_beam_centre_and_distance(shape, dist, bc, start):
    true = Geometry.single_panel(shape, PIX, dist, *bc)
    frame = simulate_calibrant_frame(true, "AgBh", 1.0, seed=7)
    res = calibrate(frame.data, _start(true, *start), "AgBh", 1.0, bad=frame.bad)
    _check(res, true)
    assert 0 in res.rings_used and len(res.rings_used) >= 3
    assert not res.tilt_fitted and res.tilts_deg == (0.0, 0.0, 0.0)
    assert "beam centre" in res.summary()


def test_fit_with_module_gaps_beamstop_and_frame_metadata():
    true = Geometry.single_panel((420, 500), PIX, 0.25, 240.6, 205.3)
    sim = simulate_calibrant_frame(true, "AgBh", 0.8, module_gaps=True, beamstop_radius_px=10, seed=3)
    frame = Frame(sim.data, EventId("agbh.cbf"), 0, FrameMetadata(photon_energy_ev=12398.419843320026 / 0.8), bad=sim.bad)
    res = calibrate(frame, _start(true, -25.0, 30.0, 0.9), "AgBh")  # wavelength from the frame
    assert res.wavelength_a == pytest.approx(0.8)
    _check(res, true)


def test_fit_multi_panel():
    panels = [
        Panel("top", 0, 199, 0, 99, corner_x=-90.5, corner_y=-104.0, res=1 / PIX, clen=None),
        Panel("bottom", 0, 199, 100, 199, corner_x=-92.0, corner_y=4.0, res=1 / PIX, clen=None, coffset=0.001),
    ]
    true = Geometry(panels=panels, clen=0.28)
    frame = simulate_calibrant_frame(true, "AgBh", 1.0, seed=5)
    res = calibrate(frame.data, _start(true, 12.0, -9.0, 1.07), "AgBh", 1.0, bad=frame.bad)
    assert res.pyfai.kind == "corners"
    _check(res, true)
    # the panels keep their relative placement
    assert res.geometry.beam_center(1)[0] - res.beam_center[0] == pytest.approx(true.beam_center(1)[0] - true.beam_center(0)[0])
    assert res.geometry.panels[1].coffset == pytest.approx(0.001)


@pytest.mark.slow
def test_fit_tilt():
    true = Geometry.single_panel((240, 240), PIX, 0.15, 110.2, 125.6)
    rot = Rotation.from_euler("xyz", [1.5, -2.0, 0.0], degrees=True).as_matrix()
    true.panels[0].fs = tuple(rot @ [1, 0, 0])
    true.panels[0].ss = tuple(rot @ [0, 1, 0])
    true.panels[0].corner_x, true.panels[0].corner_y = -110.7, -126.1  # beam near the same pixel
    frame = simulate_calibrant_frame(true, "AgBh", 0.7, peak_photons=400, seed=11)
    start = Geometry.single_panel((240, 240), PIX, 0.16, 100.0, 132.0)
    flat = calibrate(frame.data, start, "AgBh", 0.7, bad=frame.bad)
    tilted = calibrate(frame.data, start, "AgBh", 0.7, bad=frame.bad, fit_tilt=True)
    assert tilted.tilt_fitted and max(abs(t) for t in tilted.tilts_deg) > 0.5
    assert tilted.residual_px < flat.residual_px
    _check(tilted, true, bc_tol=0.5, dist_tol=0.005)
    assert "tilt" in tilted.summary()


def test_too_few_rings():
    # LaB6 at 12.4 keV, 0.5 m: only the first ring reaches a 300-pixel detector
    true = Geometry.single_panel((300, 300), PIX, 0.5, 150.0, 150.0)
    frame = simulate_calibrant_frame(true, "LaB6", 1.0, seed=1)
    with pytest.raises(CalibrationError, match="too few calibrant rings"):
        calibrate(frame.data, true, "LaB6", 1.0, bad=frame.bad)


def test_blank_frame():
    rng = np.random.default_rng(0)
    data = rng.poisson(3.0, size=(200, 200)).astype(np.float32)
    with pytest.raises(CalibrationError, match="ring"):
        calibrate(data, Geometry.single_panel((200, 200), PIX, 0.2, 100, 100), "AgBh", 1.0)


@pytest.mark.parametrize("claimed", [0.6, 1.5])
def test_wrong_energy_is_detected_and_named(claimed):
    true = Geometry.single_panel((256, 256), PIX, 0.2, 128.0, 128.0)
    frame = simulate_calibrant_frame(true, "AgBh", 1.0, seed=2)
    with pytest.raises(CalibrationError, match="energy") as info:
        calibrate(frame.data, _start(true, 5, 5, 1.0), "AgBh", claimed, bad=frame.bad)
    msg = str(info.value)
    fit_a = float(msg.split("spacing fits ")[1].split(" A")[0])
    assert fit_a == pytest.approx(1.0, rel=0.03)


def test_wrong_calibrant():
    true = Geometry.single_panel((256, 256), PIX, 0.1, 128.0, 128.0)
    frame = simulate_calibrant_frame(true, "CeO2", 0.5, seed=2)
    with pytest.raises(CalibrationError, match="AgBh"):
        calibrate(frame.data, true, "AgBh", 0.5, bad=frame.bad)


@pytest.mark.parametrize("search_px", [64.0, 128.0, 200.0])
def test_wide_beam_search_keeps_the_true_centre(search_px):
    """A wide search grid (the GUI's 128 px) must not prefer a far centre whose annuli merely cut
    the detector unevenly (it did, by ~190 px, on the demo's AgBh frame)."""
    from peaknet_gui.calib.frame_input import read_calibrant_frame
    from peaknet_gui.geometry.crystfel_geom import read_geom
    from peaknet_gui.sim.demo import demo_kinds
    from peaknet_gui.sources.demo import DEMO_FRAMES, demo_run_path

    path = demo_run_path()  # the built-in demo run (simulated on first use)
    true = read_geom(path.with_suffix(".geom"))
    frame = read_calibrant_frame(path, index=demo_kinds(DEMO_FRAMES).index("calibrant"))
    res = calibrate(frame, _start(true, 20.0, -15.0, 1.04), "AgBh", search_px=search_px)
    err = np.subtract(res.beam_center, true.beam_center(0))
    assert np.all(np.abs(err) <= 0.5), f"beam centre error {err} px"
