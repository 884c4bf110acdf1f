"""What is on screen: peaks and masks are drawn where the core says they are (rendered pixels
read back), hover read-out, and ``peaknet-gui --screenshot``."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from _gui_support import make_window, open_demo  # noqa: E402

pytestmark = pytest.mark.gui


def _grab(qtbot, view):
    """The image view's viewport as an (h, w, 3) uint8 array, after pending paints."""
    from peaknet_gui.gui.qt import QtGui, QtWidgets

    QtWidgets.QApplication.processEvents()
    qtbot.wait(50)
    img = view.graphics.viewport().grab().toImage().convertToFormat(QtGui.QImage.Format_RGB888)
    ptr = img.constBits()
    ptr.setsize(img.byteCount())
    arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine())[:, : 3 * img.width()]
    return arr.reshape(img.height(), img.width(), 3).copy()


def _to_screen(view, x, y):
    from peaknet_gui.gui.qt import QtCore

    p = view.graphics.mapFromScene(view.view_box.mapViewToScene(QtCore.QPointF(float(x), float(y))))
    return p.x(), p.y()


def _is_lime(px):
    r, g, b = (int(v) for v in px)
    return g > 180 and r < 130 and b < 170


def _lime_near(img, sx, sy, reach=1):
    h, w, _ = img.shape
    x0, y0 = int(round(sx)), int(round(sy))
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            x, y = x0 + dx, y0 + dy
            if 0 <= x < w and 0 <= y < h and _is_lime(img[y, x]):
                return True
    return False


def test_peaks_and_masks_are_drawn_where_the_core_puts_them(qtbot, tmp_path, recorder):
    from peaknet_gui.gui.display import MASK_AUTO
    from peaknet_gui.gui.qt import QtCore

    w = make_window(qtbot, tmp_path, size=(1400, 950))
    try:
        open_demo(qtbot, w, 0)
        view = w.image_view
        mdock = w.docks["mask"]
        mdock.threshold.argmax.setChecked(False)
        mdock.threshold.slider.setValue(5)  # plenty of auto-mask...
        mdock.dilation.setValue(4)  # ...in blocks of at least 9 x 9 pixels
        qtbot.waitUntil(lambda: view.overlay.settings_version == w.worker.settings_version, timeout=30000)
        ov = view.overlay
        frame = w.worker.cached_frame(0)
        result = ov.result
        assert len(result.peaks) >= 3, "the demo frame should have peaks"
        # peaks: the overlay puts each circle at the core's peak position (pixel index + 0.5 in scene units)
        x, y = view.data_to_scene(result.peaks.fs, result.peaks.ss)
        np.testing.assert_allclose(np.sort(ov.peak_x), np.sort(x))

        # zoom on a peak away from the frame's edge, read the rendered pixels back
        h, wd = frame.shape
        inner = np.where((x > 150) & (x < wd - 150) & (y > 150) & (y < h - 150))[0]
        c = int(inner[0])
        half = 110
        view.view_box.setRange(QtCore.QRectF(x[c] - half, y[c] - half, 2 * half, 2 * half), padding=0)
        img = _grab(qtbot, view)
        px_per_unit = 1.0 / view.view_box.viewPixelSize()[0]
        assert px_per_unit > 2.5
        in_view = np.where((abs(x - x[c]) < half - 15) & (abs(y - y[c]) < half - 15))[0]
        assert len(in_view) >= 1
        radii = view.peak_item.drawn_diameters / 2 * px_per_unit
        assert (view.peak_item.drawn_diameters >= ov.peak_diameter).all()
        for k in in_view:
            sx, sy = _to_screen(view, ov.peak_x[k], ov.peak_y[k])
            hits = sum(_lime_near(img, sx + radii[k] * math.cos(a), sy + radii[k] * math.sin(a))
                       for a in np.linspace(0, 2 * np.pi, 24, endpoint=False))
            assert hits >= 18, f"peak {k}: circle found at {hits} of 24 points"
        # far from every circle there is no peak colour
        rng = np.random.default_rng(0)
        centres = np.array([_to_screen(view, ov.peak_x[k], ov.peak_y[k]) for k in range(len(ov.peak_x))])
        checked = 0
        for _ in range(400):
            sx, sy = rng.uniform(5, img.shape[1] - 5), rng.uniform(5, img.shape[0] - 5)
            d = np.hypot(centres[:, 0] - sx, centres[:, 1] - sy) - radii
            if d.min() > 6:
                assert not _lime_near(img, sx, sy, reach=0)
                checked += 1
        assert checked > 50
        # K hides the peaks: no circle pixel is left
        w.actions_by_name["peaks"].trigger()
        hidden = _grab(qtbot, view)
        sx, sy = _to_screen(view, ov.peak_x[c], ov.peak_y[c])
        r = radii[c]
        assert not any(_lime_near(hidden, sx + r * math.cos(a), sy + r * math.sin(a))
                       for a in np.linspace(0, 2 * np.pi, 24, endpoint=False))
        w.actions_by_name["peaks"].trigger()

        # masks: a pixel inside an auto-mask block is tinted magenta; M hides the tint
        code = ov.mask_code
        core_mask = result.artifact_mask & ~(frame.bad if frame.bad is not None else False)
        assert ((code == MASK_AUTO) <= result.artifact_mask).all()  # drawn only where the core masks
        inside = np.argwhere(core_mask)
        far = [(r_, c_) for r_, c_ in inside[:: max(1, len(inside) // 400)]
               if 20 < r_ < h - 20 and 20 < c_ < wd - 20 and (code[r_ - 3: r_ + 4, c_ - 3: c_ + 4] == MASK_AUTO).all()
               and np.hypot(x - c_ - 0.5, y - r_ - 0.5).min() > 25]
        assert far, "no masked block away from peaks"
        mr, mc = far[0]
        view.view_box.setRange(QtCore.QRectF(mc + 0.5 - 60, mr + 0.5 - 60, 120, 120), padding=0)
        shown = _grab(qtbot, view)
        sx, sy = _to_screen(view, mc + 0.5, mr + 0.5)
        r_, g_, b_ = (int(v) for v in shown[int(sy), int(sx)])
        assert r_ - g_ > 40 and b_ - g_ > 30, f"masked pixel drawn as {(r_, g_, b_)}"
        w.actions_by_name["mask"].trigger()
        plain = _grab(qtbot, view)
        r_, g_, b_ = (int(v) for v in plain[int(sy), int(sx)])
        assert abs(r_ - g_) <= 12 and abs(b_ - g_) <= 12, f"unmasked grey pixel drawn as {(r_, g_, b_)}"
        assert not recorder.errors
    finally:
        w.close()


def test_hover_readout_names_pixel_value_and_resolution(qtbot, tmp_path, recorder):
    w = make_window(qtbot, tmp_path)
    try:
        open_demo(qtbot, w, 0)
        view = w.image_view
        frame = w.worker.cached_frame(0)
        geom = view.view.geometry
        fs, ss = 1500, 333
        r = view.readout_at(fs + 0.5, ss + 0.5)
        assert (r.fs, r.ss) == (fs, ss)
        assert r.value == pytest.approx(float(frame.data[ss, fs]))
        assert r.panel == geom.panels[0].name
        inv_d = geom.resolution(np.array([fs]), np.array([ss]), frame.metadata.photon_energy_ev)[0]
        assert r.d_a == pytest.approx(1.0 / inv_d, rel=1e-6)
        assert "fs 1500" in r.format() and "\u00c5" in r.format()
        assert view.readout_at(-50, -50) is None
    finally:
        w.close()


def test_screenshot_command_line(qtbot, tmp_path, capsys):
    """``peaknet-gui RUN --event N --screenshot OUT.png``: opens, waits for the peaks, saves, exits 0."""
    from _gui_support import shared_predictor

    from peaknet_gui.gui import dialogs
    from peaknet_gui.gui.app import main
    from peaknet_gui.gui.qt import QtGui
    from peaknet_gui.sources.demo import demo_run_path

    shared_predictor()  # skips without weights
    out = tmp_path / "shot.png"
    try:
        code = main([str(demo_run_path()), "--event", "2", "--screenshot", str(out), "--size", "1200x800",
                     "--settings", str(tmp_path / "s.ini"), "--timeout", "300"])
        assert code == 0
        img = QtGui.QImage(str(out))
        assert (img.width(), img.height()) == (1200, 800)
        bad = tmp_path / "bad.png"
        code = main([str(tmp_path / "missing.h5"), "--screenshot", str(bad), "--settings", str(tmp_path / "s2.ini")])
        assert code == 2 and not bad.exists()
        assert "missing.h5" in capsys.readouterr().err
    finally:
        dialogs.set_noninteractive(False)


def test_display_controls_log_colormap_and_levels(qtbot, tmp_path, recorder):
    from _gui_support import wait_complete

    from peaknet_gui.gui.display import scale_to_uint8
    from peaknet_gui.gui.qt import Qt

    w = make_window(qtbot, tmp_path)
    try:
        open_demo(qtbot, w, 0)
        view = w.image_view
        frame = w.worker.cached_frame(0)
        assert view.view.log_scale
        # L: linear scale, the worker prepares the frame again
        with qtbot.waitSignal(view.frameDrawn, timeout=30000):
            qtbot.keyClick(w, Qt.Key_L)
        assert not view.view.log_scale and not w.state.display.log_scale
        ok = ~frame.bad if frame.bad is not None else np.ones(frame.shape, bool)
        np.testing.assert_array_equal(view.view.image[ok], frame.data[ok])
        # colormap: the look-up table follows
        grey = view._lut.copy()
        view.bar.cmap.setCurrentText("viridis")
        assert w.state.display.colormap == "viridis" and not np.array_equal(view._lut, grey)
        assert tuple(view._lut[0]) == (0, 0, 0, 0)  # "no data" stays transparent
        # dragging the histogram's levels: manual levels, the image is rescaled, later frames keep them
        lo, hi = 10.0, 60.0
        view.histogram.setLevels(lo, hi)
        view.histogram.sigLevelChangeFinished.emit(view.histogram)
        assert not w.state.display.auto_levels and view.levels == (lo, hi)
        np.testing.assert_array_equal(view.image_item.image, scale_to_uint8(view.view.image, (lo, hi)))
        wait_complete(qtbot, w, 1, lambda: w.controller.step(1))
        assert view.levels == (lo, hi) and tuple(view.view.levels) == (lo, hi)  # prepared at those levels
        view.bar.auto.setChecked(True)
        assert view.levels == tuple(view.view.auto_levels)
        assert not recorder.errors
    finally:
        w.close()


def test_real_cspad_frame_is_assembled_through_its_geometry(qtbot, tmp_path, recorder, real_data):
    """A real LCLS CSPAD frame (64 ASICs in the raw Cheetah layout) with its CrystFEL geometry:
    the image is assembled, and every peak drawn maps back to its panel and pixel."""
    from _gui_support import wait_complete

    folder = real_data / "thermolysin_cspad"
    run = folder / "idx-20130301060858401_rawlayout.h5"
    geom = folder / "cspad_rawlayout_from_dxtbx.geom"
    if not run.exists() or not geom.exists():
        pytest.skip("thermolysin_cspad frames not found")
    w = make_window(qtbot, tmp_path)
    try:
        wait_complete(qtbot, w, 0, lambda: w.open_paths([str(run)], geometry=str(geom)), timeout=120000)
        view = w.image_view.view
        assert len(view.geometry.panels) == 64 and not view.mapper.identity
        assert view.image.shape != view.frame.shape  # assembled, not the raw slab
        peaks = w.image_view.overlay.result.peaks
        assert len(peaks) > 0
        ov = w.image_view.overlay
        for k in range(0, len(peaks), max(1, len(peaks) // 25)):
            panel, fs, ss = view.mapper.scene_to_data(ov.peak_x[k], ov.peak_y[k])
            assert panel == view.geometry.panel_at(peaks.fs[k], peaks.ss[k])
            assert (fs, ss) == pytest.approx((peaks.fs[k], peaks.ss[k]), abs=1e-6)
        r = w.image_view.readout_at(ov.peak_x[0], ov.peak_y[0])
        assert r.panel == view.geometry.panels[int(view.geometry.panel_at(peaks.fs[0], peaks.ss[0]))].name
        assert r.d_a is not None and 1.0 < r.d_a < 100.0
        assert view.beam is not None and view.rings
        assert not recorder.errors
    finally:
        w.close()
