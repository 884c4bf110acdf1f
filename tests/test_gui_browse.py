"""The run browser on the real demo run: open, step, slider, play and stop, hits, follow live,
persistence.  Offscreen (pytest-qt), real analyzer."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from _gui_support import make_window, open_demo, wait_complete  # noqa: E402

pytestmark = pytest.mark.gui


def test_open_demo_step_and_jump(qtbot, window, recorder):
    from peaknet_gui.gui.qt import Qt

    open_demo(qtbot, window, 0)
    n = window.state.n_frames
    assert n >= 4 and window.controller.run.request.demo
    view = window.image_view.view
    # the image on screen is the demo's frame 0 (log scale, NaN only where pixels are bad)
    frame = window.worker.cached_frame(0)
    expected = np.log10(np.maximum(frame.data, 1))
    if frame.bad is not None:
        expected[frame.bad] = np.nan
    np.testing.assert_allclose(view.image, expected, rtol=1e-6)
    info = window.docks["info"].labels
    assert info["peaks"].text() == str(window.image_view.overlay.result.n_peaks)

    wait_complete(qtbot, window, 1, lambda: qtbot.keyClick(window, Qt.Key_Right))
    wait_complete(qtbot, window, n - 1, lambda: qtbot.keyClick(window, Qt.Key_End))
    wait_complete(qtbot, window, 0, lambda: qtbot.keyClick(window, Qt.Key_Home))
    wait_complete(qtbot, window, 2, lambda: window.nav.spin.setValue(2))
    wait_complete(qtbot, window, 3, lambda: window.nav.slider.setValue(3))
    assert window.nav.spin.value() == 3
    # frames stay in the worker's bounded cache; the state keeps a summary per analysed frame
    assert set(window.state.summaries) >= {0, 1, 2, 3, n - 1}
    assert not recorder.errors


def test_latest_frame_wins(qtbot, window):
    """Rapid requests: only the last frame is shown and completed; stale ones are dropped."""
    open_demo(qtbot, window, 0)
    shown = []
    window.controller.frameShown.connect(lambda v: shown.append(v.index))
    target = window.state.n_frames - 2
    assert target >= 4
    analyses = window.worker.stats.analyses

    def burst():
        for i in range(1, target + 1):
            window.controller.go(i)

    wait_complete(qtbot, window, target, burst)
    assert shown == [target]
    # at most the frame the model had already started on is analysed besides the target
    assert window.worker.stats.analyses - analyses <= 2
    assert not set(range(2, target)) & set(window.state.summaries)


def test_play_and_stop(qtbot, window):
    from peaknet_gui.gui.qt import Qt

    open_demo(qtbot, window, 0)
    window.controller.set_fps(30.0)
    completed = []
    window.controller.frameComplete.connect(completed.append)
    qtbot.keyClick(window, Qt.Key_Space)
    assert window.state.playing
    qtbot.waitUntil(lambda: window.state.index >= 3, timeout=60000)
    qtbot.keyClick(window, Qt.Key_Space)
    assert not window.state.playing
    stopped_at = window.state.index
    qtbot.wait(400)
    assert window.state.index == stopped_at
    # play waits for each frame's peaks: every frame it passed was completed, none skipped
    assert all(i in completed for i in range(1, stopped_at))


def test_play_to_the_end_stops(qtbot, window):
    open_demo(qtbot, window, 0)
    n = window.state.n_frames
    wait_complete(qtbot, window, n - 2, lambda: window.controller.go(n - 2))
    window.controller.set_fps(50.0)
    window.controller.set_playing(True)
    qtbot.waitUntil(lambda: not window.state.playing, timeout=60000)
    assert window.state.index == n - 1


def test_next_and_previous_hit(qtbot, window):
    from peaknet_gui.gui.qt import Qt

    open_demo(qtbot, window, 0)
    # a hit criterion every frame passes, then one no frame passes
    dock = window.docks["peaks"]
    dock.min_peaks.setValue(0)
    qtbot.waitUntil(lambda: window.state.finder.min_peaks_for_hit == 0, timeout=5000)
    wait_complete(qtbot, window, 1, lambda: qtbot.keyClick(window, Qt.Key_N))  # searched: frame 1 is a hit
    assert window.state.summaries[1].hit
    wait_complete(qtbot, window, 0, lambda: qtbot.keyClick(window, Qt.Key_P))  # known hit before
    n = window.state.n_frames
    wait_complete(qtbot, window, n - 3, lambda: window.controller.go(n - 3))
    dock.min_peaks.setValue(100000)  # no frame is a hit now: the search ends at the last frame
    with qtbot.waitSignal(window.worker.hitFound, timeout=120000) as blocker:
        qtbot.keyClick(window, Qt.Key_N)
    assert blocker.args == [-1]
    assert window.state.index == n - 3
    assert {n - 2, n - 1} <= set(window.state.summaries)


def test_follow_live_shows_and_analyses_new_frames(qtbot, window, tmp_path):
    fabio = pytest.importorskip("fabio")
    from fabio.edfimage import EdfImage

    from peaknet_gui.sources.demo import open_demo_run

    run_dir = tmp_path / "live"
    run_dir.mkdir()
    src = open_demo_run()
    frames = [src[i].data[600:1112, 600:1112] for i in range(5)]  # real demo pixels, a 512 x 512 crop
    src.close()

    def write(i):
        p = run_dir / f"img_{i:04d}.edf"
        EdfImage(data=frames[i].astype(np.float32)).write(str(p))
        old = time.time() - 30
        os.utime(p, (old, old))  # complete and settled

    for i in range(2):
        write(i)
    wait_complete(qtbot, window, 0, lambda: window.open_paths([str(run_dir)]))
    assert window.state.n_frames == 2
    wait_complete(qtbot, window, 1, lambda: window.controller.go(1))
    window.controller.set_follow(True)
    for i in range(2, 5):
        write(i)
    # the newest frame appears, is shown and analysed; the others are analysed in the background
    qtbot.waitUntil(lambda: window.state.n_frames == 5, timeout=20000)
    qtbot.waitUntil(lambda: window.state.index == 4 and window.image_view.overlay is not None
                    and window.image_view.overlay.index == 4, timeout=60000)
    qtbot.waitUntil(lambda: {2, 3, 4} <= set(window.state.summaries), timeout=60000)
    assert window.nav.slider.maximum() == 4
    window.controller.set_follow(False)


def test_settings_persist(qtbot, tmp_path, recorder):
    w = make_window(qtbot, tmp_path)
    open_demo(qtbot, w, 2)
    w.docks["peaks"].threshold.set_value(0.37)
    w.docks["peaks"].threshold.valueChanged.emit(0.37)
    w.docks["mask"].dilation.setValue(3)
    w.set_show_rings(False)
    assert w.state.finder.peak_threshold == pytest.approx(0.37)
    w.close()
    w2 = make_window(qtbot, tmp_path)
    try:
        assert w2.state.finder.peak_threshold == pytest.approx(0.37)
        assert w2.state.mask.dilation == 3
        assert w2.state.display.show_rings is False
        assert w2.docks["peaks"].threshold.value() == pytest.approx(0.37)
        last = w2.settings.last_run()
        assert last is not None and last.demo and last.start_index == 2
    finally:
        w2.close()


def test_new_geometry_moves_beam_and_rings(qtbot, window, tmp_path):
    from peaknet_gui.geometry.crystfel_geom import write_geom

    open_demo(qtbot, window, 0)
    old = window.image_view.view
    g = old.geometry.copy()
    for p in g.panels:  # the beam 40 pixels further along +x on the detector
        p.corner_x -= 40.0
    with qtbot.waitSignal(window.worker.geometryChanged, timeout=30000):
        window.worker.set_geometry(g)  # e.g. a fitted geometry handed over by the program
    qtbot.waitUntil(lambda: window.image_view.view is not old and window.image_view.view.geometry is not None
                    and window.image_view.view.beam[0] == pytest.approx(old.beam[0] + 40.0), timeout=30000)
    assert window.image_view.view.rings and window.image_view.rings_item.n == len(window.image_view.view.rings)
    path = tmp_path / "moved.geom"
    write_geom(g, path)
    with qtbot.waitSignal(window.worker.geometryChanged, timeout=30000):
        window.worker.set_geometry(str(path))
    assert window.worker.run_info.request.geometry_path == str(path)
    assert "moved.geom" in window.worker.run_info.geometry_text


def test_shortcut_list_names_every_bound_key(window):
    """Help > Keyboard shortcuts lists exactly the keys the window's actions are bound to."""
    from peaknet_gui.gui.actions import SHORTCUTS
    from peaknet_gui.gui.qt import QtGui

    names = {"\u2190": "Left", "\u2192": "Right"}
    listed = set()
    for keys, _ in SHORTCUTS:
        if keys.startswith("wheel"):
            continue
        for k in keys.split(" / "):
            listed.add(QtGui.QKeySequence(names.get(k, k)).toString())
    bound = {s.toString() for a in window.actions() for s in a.shortcuts() if not s.isEmpty()}
    assert "Ctrl+Shift+C" in bound  # the calibration dock's action
    assert listed == bound
