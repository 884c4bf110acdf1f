"""The calibration dock (Tools > Calibration...) on the demo run's silver behenate frame and on the
real Pilatus 100K AgBh frame: radial profile with ring markers, rings on the image, fit, save,
apply, and errors as dialogs.  Offscreen (pytest-qt), real analyzer, real pyFAI fit.

The dialog functions are replaced by a recorder (pytest-qt cannot click modal boxes away)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import median_filter

pytest.importorskip("pytestqt")

from _gui_support import open_demo, wait_complete  # noqa: E402

from tests.conftest import real_file  # noqa: E402

pytestmark = pytest.mark.gui

AGBH_D001_A = 58.38  # silver behenate's long spacing; its rings are the orders d = d001 / l


def _demo_frame(kind: str) -> int:
    from peaknet_gui.sim.demo import demo_kinds
    from peaknet_gui.sources.demo import DEMO_FRAMES

    return demo_kinds(DEMO_FRAMES).index(kind)


def _show_dock(qtbot, window):
    """Tools > Calibration...: the dock appears and shows the frame's profile."""
    action = window.actions_by_name["calibration"]
    assert action in window.tools_menu.actions() and window.tools_menu.menuAction().isVisible()
    dock = window.docks["calibration"]
    assert not dock.isVisible()
    with qtbot.waitSignal(dock.profileShown, timeout=60000) as blocker:
        action.trigger()
    assert dock.isVisible()
    return dock, blocker.args[0]


def _type_start(qtbot, dock, beam_fs: float, beam_ss: float, distance_mm: float):
    """Type a rough start into the fields; returns the profile drawn for it."""
    def typed(res):
        i = res.key[3]
        got = (i.beam_fs, i.beam_ss, i.distance_m * 1e3)
        return np.allclose(got, (beam_fs, beam_ss, distance_mm), rtol=0, atol=0.006)  # the fields keep 2 decimals

    with qtbot.waitSignal(dock.profileShown, timeout=60000, check_params_cb=typed) as blocker:
        dock.beam_fs.setValue(beam_fs)
        dock.beam_ss.setValue(beam_ss)
        dock.distance.setValue(distance_mm)
    return blocker.args[0]


def _fit(qtbot, dock):
    from peaknet_gui.gui.qt import Qt

    done, failed = [], []
    dock.fitFinished.connect(done.append)
    dock.fitFailed.connect(failed.append)
    qtbot.mouseClick(dock.fit_button, Qt.LeftButton)
    # a failed fit ends the wait too, and is reported with its message rather than as a time-out
    qtbot.waitUntil(lambda: bool(done or failed), timeout=180000)
    assert not failed, f"fit failed: {failed[0]}"
    return done[0]


def _ring_radius_px(order: int, wavelength_a: float, distance_m: float, pixel_m: float) -> float:
    """Radius of AgBh's order-``order`` ring on a flat detector normal to the beam (Bragg's law)."""
    tth = 2.0 * math.asin(wavelength_a * order / (2.0 * AGBH_D001_A))
    return distance_m * math.tan(tth) / pixel_m


def test_demo_calibrant_profile_fit_and_save(qtbot, window, recorder, tmp_path, monkeypatch):
    from peaknet_gui.calib.writers import geometry_from_poni, read_poni
    from peaknet_gui.geometry.crystfel_geom import read_geom
    from peaknet_gui.geometry.detector import HC_EV_A
    from peaknet_gui.gui.qt import Qt, QtWidgets
    from peaknet_gui.sources.demo import demo_run_path

    index = _demo_frame("calibrant")
    open_demo(qtbot, window, index)
    true = read_geom(demo_run_path().with_suffix(".geom"))  # the geometry the simulator drew the frame with
    true_fs, true_ss = true.beam_center(0)
    true_d = true.mean_camera_length()
    pix = true.panels[0].pixel_size
    frame = window.worker.cached_frame(index)
    wl = HC_EV_A / frame.metadata.photon_energy_ev

    dock, res = _show_dock(qtbot, window)
    # the fields start from the frame's metadata and geometry
    assert dock.calibrant.currentText() == "AgBh"
    assert dock.energy.value() == pytest.approx(frame.metadata.photon_energy_ev / 1e3, abs=1e-4)
    assert dock.wavelength.value() == pytest.approx(wl, abs=1e-5)
    assert dock.distance.value() == pytest.approx(true_d * 1e3, abs=0.01)
    assert (dock.beam_fs.value(), dock.beam_ss.value()) == pytest.approx((true_fs, true_ss), abs=0.01)

    # profile: AgBh ring markers at q = 2 pi l / d001, and the profile's peaks sit on them
    assert res.index == index and res.calibrant == "AgBh"
    markers = np.sort(dock.plot.marker_positions)
    q_expected = 2 * np.pi * np.arange(1, 11) / AGBH_D001_A
    np.testing.assert_allclose(markers[:10], q_expected, rtol=1e-4)
    x, y = dock.plot.curve_data("start")
    assert len(x) > 500 and np.all(np.isfinite(y))
    y = median_filter(y, size=3)  # a lone bright pixel makes a one-bin spike at small radii
    for q in q_expected[:6]:
        near = np.abs(x - q) < 0.02
        assert abs(x[near][np.argmax(y[near])] - q) < 0.004, f"no profile peak at the ring q = {q:.4f}"
        # and stands out of the profile's scatter on its flanks (ring contrast varies frame to frame;
        # its significance is what makes a ring usable for the fit)
        flank = y[(np.abs(x - q) > 0.02) & (np.abs(x - q) < 0.06)]
        base = np.median(flank)
        scatter = 1.4826 * np.median(np.abs(flank - base))
        assert np.max(y[near]) - base > 4 * scatter, f"ring at q = {q:.4f} not above the profile's scatter"

    # rings on the image: circles around the beam (scene = pixel index + 0.5) with Bragg's radii
    exp = dock.overlay.expected
    assert exp.visible and len(exp.paths.rings) >= 10
    for ring, rx, ry in list(zip(exp.paths.rings, exp.paths.x, exp.paths.y))[:5]:
        ok = np.isfinite(rx)
        r = np.hypot(rx[ok] - (true_fs + 0.5), ry[ok] - (true_ss + 0.5))
        assert r == pytest.approx(_ring_radius_px(ring.index + 1, wl, true_d, pix), abs=0.05)

    # a rough start 20 px and 4 % off: the expected rings follow the fields
    start_fs, start_ss, start_mm = true_fs + 20.0, true_ss - 15.0, true_d * 1e3 * 1.04
    res = _type_start(qtbot, dock, start_fs, start_ss, start_mm)
    ring, rx, ry = res.expected.rings[0], res.expected.x[0], res.expected.y[0]
    ok = np.isfinite(rx)
    r = np.hypot(rx[ok] - (start_fs + 0.5), ry[ok] - (start_ss + 0.5))
    assert r == pytest.approx(_ring_radius_px(ring.index + 1, wl, start_mm * 1e-3, pix), abs=0.05)

    # Fit geometry: the simulated beam centre and distance come back
    result = _fit(qtbot, dock)
    fs, ss = result.beam_center
    assert abs(fs - true_fs) < 0.5 and abs(ss - true_ss) < 0.5, (fs, ss, true_fs, true_ss)
    assert result.distance_m == pytest.approx(true_d, rel=0.005)
    assert len(result.rings_used) >= 5
    table = dock.table
    assert table.cell_text("Beam fs (px)", "Start") == f"{start_fs:.2f}"
    assert table.cell_text("Beam fs (px)", "Refined") == f"{fs:.2f}"
    assert table.cell_text("Beam ss (px)", "Refined") == f"{ss:.2f}"
    assert table.cell_text("Distance (mm)", "Start") == f"{start_mm:.2f}"
    assert table.cell_text("Distance (mm)", "Refined") == f"{result.distance_m * 1e3:.2f}"
    assert float(table.cell_text("Beam fs (px)", "\u00b1 1\u03c3")) == pytest.approx(
        result.uncertainty.sigma_beam_px[0], abs=6e-4)
    assert "Tilt (\u00b0)" in table.row_names()
    assert dock.ring_table.isVisibleTo(dock) and dock.ring_table.rowCount() == len(result.rings_used)
    assert not dock.panel_table.isVisibleTo(dock)  # one panel: no per-panel table
    assert "Fitted on frame" in dock.status.text() and "Tilt" in dock.status.text()

    # after the fit: the refined profile (peaks back on the markers) and rings + beam cross on the image
    qtbot.waitUntil(lambda: dock.plot.result is not None and dock.plot.result.refined is not None, timeout=60000)
    xr, yr = dock.plot.curve_data("refined")
    yr = median_filter(yr, size=3)
    for q in q_expected[:3]:
        near = np.abs(xr - q) < 0.02
        assert abs(xr[near][np.argmax(yr[near])] - q) < 0.004
    ref = dock.overlay.refined
    assert ref.visible and len(ref.paths.rings) == len(result.rings_used)
    bx, by = ref.beam.getData()
    assert (bx[0], by[0]) == pytest.approx((fs + 0.5, ss + 0.5), abs=1e-6)

    # Save geometry... (the file dialog answered): a .geom and a .poni the readers take back
    target = tmp_path / "out" / "agbh_refined.geom"
    target.parent.mkdir()
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    assert dock.save_button.isEnabled()
    with qtbot.waitSignal(dock.saved, timeout=30000) as blocker:
        qtbot.mouseClick(dock.save_button, Qt.LeftButton)
    geom_path, poni_path = blocker.args
    assert geom_path == target and poni_path == target.with_suffix(".poni")
    g = read_geom(geom_path)
    assert g.beam_center(0) == pytest.approx((fs, ss), abs=1e-3)
    # the sample to the direct beam (a refined tilt, however small, puts clen at the panel's corner)
    assert float(g.panels[0].lab_xyz(fs, ss, g.clen)[2]) == pytest.approx(result.distance_m, rel=1e-6)
    assert g.panels[0].pixel_size == pytest.approx(pix)
    gp = geometry_from_poni(poni_path)
    assert gp.beam_center(0) == pytest.approx((fs, ss), abs=0.01)
    ai = read_poni(poni_path)
    assert ai.dist == pytest.approx(result.distance_m, rel=1e-6)
    assert ai.wavelength * 1e10 == pytest.approx(wl, rel=1e-6)
    assert not recorder.errors


def test_cancel_then_fit_with_tilt(qtbot, window, recorder):
    """Cancel drops the running fit's result; a fit with "tilt: fit" then keeps the refined tilt."""
    from peaknet_gui.geometry.crystfel_geom import read_geom
    from peaknet_gui.gui.qt import Qt
    from peaknet_gui.sources.demo import demo_run_path

    index = _demo_frame("calibrant")
    open_demo(qtbot, window, index)
    true = read_geom(demo_run_path().with_suffix(".geom"))
    dock, _ = _show_dock(qtbot, window)
    finished = []
    dock.fitFinished.connect(finished.append)

    qtbot.mouseClick(dock.fit_button, Qt.LeftButton)
    assert dock.fitting and dock.cancel_button.isEnabled()
    qtbot.mouseClick(dock.cancel_button, Qt.LeftButton)
    assert not dock.fitting and dock.fit_button.isEnabled() and dock.status.text() == "Fit cancelled."

    assert dock.tilt.currentData() == "auto"  # the default: kept when the rings determine it
    dock.tilt.setCurrentIndex(dock.tilt.findData("fit"))
    result = _fit(qtbot, dock)
    qtbot.wait(500)  # the jobs run one after another: the cancelled fit ended before this one
    assert finished == [result] and dock.result is result  # the cancelled fit's result was dropped
    assert result.tilt_fitted
    assert np.all(np.abs(np.subtract(result.beam_center, true.beam_center(0))) < 0.5)
    assert abs(result.distance_m / true.mean_camera_length() - 1) < 0.005
    assert max(abs(t) for t in result.tilts_deg) < 0.5  # the simulated detector is not tilted
    assert not recorder.errors


def test_too_few_rings_and_missing_inputs_show_errors(qtbot, window, recorder):
    from peaknet_gui.gui.qt import Qt

    index = _demo_frame("blank")
    open_demo(qtbot, window, index)
    dock, _ = _show_dock(qtbot, window)
    # a frame without calibrant rings: a dialog naming the problem, no crash, nothing to save
    with qtbot.waitSignal(dock.fitFailed, timeout=180000):
        qtbot.mouseClick(dock.fit_button, Qt.LeftButton)
    assert len(recorder.errors) == 1
    title, text = recorder.errors[-1]
    assert title == "Calibration" and "too few calibrant rings" in text and "demo.cxi" in text
    assert dock.result is None and not dock.save_button.isEnabled() and not dock.apply_button.isEnabled()
    assert dock.fit_button.isEnabled() and not dock.fitting
    assert dock.status.text().startswith("Fit failed")

    # a missing distance: the dialog says so at once (no fit is started)
    dock.distance.setValue(0.0)
    with qtbot.waitSignal(dock.fitFailed, timeout=5000):
        qtbot.mouseClick(dock.fit_button, Qt.LeftButton)
    assert "distance" in recorder.errors[-1][1] and not dock.fitting
    # and the window is still usable: the next frame is shown and analysed
    wait_complete(qtbot, window, index + 1, lambda: window.controller.step(1))


@pytest.mark.real
def test_real_pilatus100k_agbh_fit_and_apply(qtbot, window, recorder):
    """README: lambda 0.73363 A, 513.8 mm, 0.172 mm pixels, beam centre (fs, ss) = (-5.42, 85.86),
    off the detector; the file's own beam centre has its x/y labels swapped."""
    path = real_file("agbh_pilatus100k/AgBehenate_228.hdf5")
    wait_complete(qtbot, window, 0, lambda: window.open_paths([str(path)]), timeout=60000)
    dock, res = _show_dock(qtbot, window)
    assert dock.wavelength.value() == pytest.approx(0.73363, abs=1e-5)
    assert dock.pixel.value() == pytest.approx(0.172, abs=1e-4)
    assert res.expected.rings, "AgBh arcs on the detector at the file's geometry"
    markers = np.sort(dock.plot.marker_positions)
    np.testing.assert_allclose(markers[:5], 2 * np.pi * np.arange(1, 6) / AGBH_D001_A, rtol=1e-4)

    _type_start(qtbot, dock, 20.0, 60.0, 470.0)  # a rough start, as a user would type it
    result = _fit(qtbot, dock)
    fs, ss = result.beam_center
    assert abs(fs - (-5.42)) < 0.5 and abs(ss - 85.86) < 0.5, (fs, ss)
    assert result.distance_m * 1e3 == pytest.approx(513.8, rel=0.005)
    assert result.residual_px < 0.3 and len(result.rings_used) >= 8
    assert not recorder.errors

    # Apply to run: the run's geometry becomes the refined one, and the fields follow it
    with qtbot.waitSignal(window.worker.geometryChanged, timeout=30000):
        dock.apply_button.click()
    assert window.controller.run.geometry.beam_center(0) == pytest.approx((fs, ss), abs=1e-3)
    qtbot.waitUntil(lambda: abs(dock.beam_fs.value() - fs) < 0.01 and abs(dock.beam_ss.value() - ss) < 0.01,
                    timeout=30000)
    assert dock.distance.value() == pytest.approx(result.distance_m * 1e3, abs=0.01)
    assert not recorder.errors


def _tilted_nexus(path, shape, pixel_m, distance_mm, beam, tilt_deg, tilt_dir_deg, wavelength_a):
    """A NeXus file of a simulated CeO2 frame on a tilted detector (Fit2D parameters)."""
    import h5py

    from peaknet_gui.calib.geometry_convert import geometry_from_fit2d
    from peaknet_gui.sim.powder import simulate_calibrant_frame

    true = geometry_from_fit2d(distance_mm, beam[0] + 0.5, beam[1] + 0.5, shape, pixel_m * 1e6, tilt_deg=tilt_deg,
                               tilt_plan_rotation_deg=tilt_dir_deg)
    frame = simulate_calibrant_frame(true, "CeO2", wavelength_a, seed=12)
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        inst = entry.create_group("instrument")
        inst.attrs["NX_class"] = "NXinstrument"
        det = inst.create_group("detector")
        det.attrs["NX_class"] = "NXdetector"
        det["x_pixel_size"] = pixel_m
        det["x_pixel_size"].attrs["units"] = "m"
        det["distance"] = distance_mm * 1e-3
        det["distance"].attrs["units"] = "m"
        mono = inst.create_group("monochromator")
        mono.attrs["NX_class"] = "NXmonochromator"
        mono["wavelength"] = wavelength_a
        mono["wavelength"].attrs["units"] = "angstrom"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data["data"] = np.where(frame.bad, -1, frame.data).astype(np.int32)[None]
    return true


def test_tilted_detector_fit_shows_tilt_and_draws_ellipses(qtbot, window, recorder, tmp_path):
    """A CeO2 frame on a detector tilted 2.5 degrees, from a start 20 px and 5 % off: the dock
    reports the tilt (with its uncertainty and direction) and the direct-beam centre, residuals per
    ring, and draws the refined rings as the tilted cones' ellipses."""
    from peaknet_gui.calib.geometry_convert import fit2d_parameters

    shape, pix, dist_mm, beam = (340, 360), 172e-6, 110.0, (170.3, 160.7)
    path = tmp_path / "ceo2_tilted.h5"
    true = _tilted_nexus(path, shape, pix, dist_mm, beam, 2.5, 40.0, 0.5)
    wait_complete(qtbot, window, 0, lambda: window.open_paths([str(path)]), timeout=60000)
    dock, _ = _show_dock(qtbot, window)
    dock.calibrant.setCurrentIndex(dock.calibrant.findText("CeO2"))
    assert dock.pixel.value() == pytest.approx(0.172) and dock.wavelength.value() == pytest.approx(0.5)
    _type_start(qtbot, dock, beam[0] + 20.0, beam[1] - 20.0, dist_mm * 1.05)
    result = _fit(qtbot, dock)
    truth = fit2d_parameters(true)
    assert result.tilt_status == "fitted", result.warnings
    assert abs(result.tilt_deg - 2.5) < 0.05
    assert np.abs(np.subtract(result.beam_center, (truth["centerX"] - 0.5, truth["centerY"] - 0.5))).max() < 0.3
    table = dock.table
    assert table.cell_text("Tilt (\u00b0)", "Refined") == f"{result.tilt_deg:.3f}"
    assert float(table.cell_text("Tilt (\u00b0)", "\u00b1 1\u03c3")) == pytest.approx(
        result.uncertainty.sigma_tilt_deg, abs=6e-4)
    assert table.cell_text("Tilt direction (\u00b0)", "Refined") == f"{result.tilt_plane_rotation_deg:.1f}"
    assert table.cell_text("PONI fs (px)", "Refined") == f"{result.poni_px[0]:.2f}"
    assert dock.ring_table.rowCount() == len(result.rings_used) >= 3
    assert "refined" in dock.status.text() and "Tilt" in dock.status.text()

    # the refined rings on the image: ellipses -- every point at its ring's 2-theta of the refined
    # geometry, the distance from the beam cross varying around each ring
    qtbot.waitUntil(lambda: dock.overlay.refined.paths is not None, timeout=60000)
    ref = dock.overlay.refined.paths
    assert len(ref.rings) == len(result.rings_used)
    bx, by = dock.overlay.refined.beam.getData()
    spread = []
    for ring, fs, ss, x, y in zip(ref.rings, ref.fs, ref.ss, ref.x, ref.y):
        ok = np.isfinite(fs)
        lx, ly, lz = result.geometry.lab_xyz(fs[ok], ss[ok])
        np.testing.assert_allclose(np.arctan2(np.hypot(lx, ly), lz), ring.twotheta_rad, atol=1e-9)
        r = np.hypot(x[ok] - bx[0], y[ok] - by[0])
        spread.append(r.max() - r.min())
    assert max(spread) > 2.0, f"a tilted detector's rings drawn as circles ({spread} px)"
    assert not recorder.errors
