"""The window as a workbench: the whole run analysed in the background (overview, N/P, play and
export reuse it), per-run state reset on a run change, a failed open that changes nothing,
0-based numbering.  Offscreen (pytest-qt), real analyzer and model on small runs cut from the
demo's pixels."""

from __future__ import annotations

import threading
import time

import h5py
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from _gui_support import make_window, shared_predictor, wait_complete  # noqa: E402

pytestmark = pytest.mark.gui

N = 6


def _small_run(path, n=N, offset=0):
    """``n`` 384 x 384 crops of the demo's frames in one CXI-style file."""
    from peaknet_gui.sources.demo import open_demo_run

    src = open_demo_run()
    frames = [src[(i + offset) % len(src)].data[700:1084, 700:1084] for i in range(n)]
    src.close()
    with h5py.File(path, "w") as f:
        f.create_dataset("/entry_1/data_1/data", data=np.asarray(frames, dtype=np.float32), chunks=(1, 384, 384))
    return path


def _count_model_runs(monkeypatch) -> list:
    pred = shared_predictor()
    calls = []
    original = pred.run

    def counting(prepared, *a, **k):
        calls.append(len(prepared))
        return original(prepared, *a, **k)

    monkeypatch.setattr(pred, "run", counting)
    return calls


@pytest.fixture
def bg_window(qtbot, tmp_path, recorder):
    w = make_window(qtbot, tmp_path, background=True)
    yield w
    w.close()


def _open(qtbot, w, path, index=0):
    wait_complete(qtbot, w, index, lambda: w.open_paths([str(path)], event=index), timeout=60000)


def _wait_all_analysed(qtbot, w, timeout=120000):
    n = w.state.n_frames
    qtbot.waitUntil(lambda: w.worker.analysed() == set(range(n)) and w.state.n_current == n, timeout=timeout)
    qtbot.wait(300)  # the overview's redraw timer


def test_background_fills_the_run_and_browsing_reuses_it(qtbot, bg_window, tmp_path, monkeypatch, recorder):
    from peaknet_gui.gui.qt import Qt

    w = bg_window
    calls = _count_model_runs(monkeypatch)
    _open(qtbot, w, _small_run(tmp_path / "small.h5"), index=2)
    # no user action: the rest of the run is analysed, the overview shows it
    _wait_all_analysed(qtbot, w)
    ov = w.docks["overview"]
    assert ov.n_done == N and f"analysed {N}/{N}" in ov.summary.text()
    assert int(ov.band.image.sum()) == N
    assert len(calls) == N  # each frame once: the shown one, then the others in read-ahead order
    assert f"analysed {N}/{N}" in w.run_label.text()
    assert not w.progress_bar.isVisible()

    # stepping, N/P and play show peaks at once, from the stored results: no model run
    w.docks["peaks"].min_peaks.setValue(0)  # every frame a hit (the hit criterion invalidates nothing)
    qtbot.waitUntil(lambda: w.state.finder.min_peaks_for_hit == 0, timeout=5000)
    before = len(calls)
    for i in (3, 4, 5, 0, 1):
        t0 = time.perf_counter()
        wait_complete(qtbot, w, i, lambda i=i: w.controller.go(i), timeout=10000)
        assert time.perf_counter() - t0 < 5.0
        assert w.docks["info"].labels["peaks"].text() == str(w.image_view.overlay.result.n_peaks)
    wait_complete(qtbot, w, 2, lambda: qtbot.keyClick(w, Qt.Key_N), timeout=10000)
    wait_complete(qtbot, w, 1, lambda: qtbot.keyClick(w, Qt.Key_P), timeout=10000)
    w.controller.set_fps(20.0)
    qtbot.keyClick(w, Qt.Key_Space)
    assert w.state.playing
    qtbot.waitUntil(lambda: not w.state.playing, timeout=20000)  # played to the end
    assert w.state.index == N - 1
    assert len(calls) == before, "analysed frames were run through the model again"
    # what is drawn for a stored frame is what the store holds
    stored = w.worker.store.get(N - 1, w.worker._result_key(), w.worker._fingerprint())
    assert w.image_view.overlay.result.n_peaks == stored.n_peaks
    assert not recorder.errors


def test_space_starts_and_stops_play_every_time(qtbot, bg_window, tmp_path):
    from peaknet_gui.gui.qt import Qt

    w = bg_window
    _open(qtbot, w, _small_run(tmp_path / "small.h5"))
    _wait_all_analysed(qtbot, w)
    w.controller.set_fps(2.0)
    for _ in range(3):
        if w.state.index != 0:
            wait_complete(qtbot, w, 0, lambda: w.controller.go(0), timeout=10000)
        qtbot.keyClick(w, Qt.Key_Space)
        assert w.state.playing and w.nav.play.isChecked()
        qtbot.waitUntil(lambda: w.state.index >= 1, timeout=10000)
        qtbot.keyClick(w, Qt.Key_Space)
        assert not w.state.playing and not w.nav.play.isChecked()
        stopped = w.state.index
        qtbot.wait(700)
        assert w.state.index == stopped


def test_export_reuses_the_background_results(qtbot, bg_window, tmp_path, monkeypatch, recorder):
    from peaknet_gui.export.stream_reader import read_stream
    from peaknet_gui.gui.exports import ExportOptions

    w = bg_window
    calls = _count_model_runs(monkeypatch)
    _open(qtbot, w, _small_run(tmp_path / "small.h5"))
    _wait_all_analysed(qtbot, w)
    before = len(calls)
    out = tmp_path / "out"
    job = w.start_export(ExportOptions(out_dir=str(out), scope="all", formats={"stream", "lst"}))
    qtbot.waitUntil(lambda: job.outcome is not None or job.error is not None, timeout=120000)
    assert job.error is None and job.outcome.frames == N
    assert len(calls) == before, "the export ran the model on frames the window had analysed"
    chunks = read_stream(out / "peaks.stream")
    assert [c.event_index for c in chunks] == list(range(N))
    assert [c.n_peaks for c in chunks] == [w.state.summaries[i].n_peaks for i in range(N)]
    shown = w.worker.cached_result(0)  # the exported peaks are the drawn ones
    np.testing.assert_allclose(np.sort(chunks[0].peaks.fs), np.sort(shown.peaks.fs), atol=0.01)

    # other thresholds: the stored results no longer apply; the export analyses again (and
    # the background brings the run up to date with the new thresholds too)
    dock = w.docks["peaks"]
    dock.threshold.argmax.setChecked(False)
    dock.threshold.slider.setValue(90)
    qtbot.waitUntil(lambda: w.worker.settings_version > 0 and w.state.finder.peak_threshold == pytest.approx(0.9),
                    timeout=5000)
    assert w.worker.export_context()["cached"].keys() <= {w.worker.cached_frame(0).event.lst_line()}
    _wait_all_analysed(qtbot, w)
    assert w.docks["overview"].n_done == N
    assert not recorder.errors


def test_run_change_resets_per_run_state(qtbot, bg_window, tmp_path, recorder):
    from peaknet_gui.gui.exports import ExportOptions

    w = bg_window
    a = _small_run(tmp_path / "run_a.h5")
    b = _small_run(tmp_path / "run_b.h5", n=3, offset=7)
    _open(qtbot, w, a, index=N - 1)
    # 0-based everywhere: the last of N frames is N-1 in Frame info, the spin box and the export range
    assert w.docks["info"].labels["event"].text().startswith(f"{N - 1} / {N - 1}")
    assert w.nav.spin.value() == N - 1 and w.nav.spin.suffix() == f" / {N - 1}"
    assert w.windowTitle() == "run_a.h5"
    out_a = str(tmp_path / "export_a")
    job = w.start_export(ExportOptions(out_dir=out_a, scope="current", formats={"stream"}))
    qtbot.waitUntil(lambda: job.outcome is not None or job.error is not None, timeout=30000)
    assert w.export_dir() == out_a
    view = w.image_view
    r = view.readout_at(10.0, 10.0)
    view.readoutChanged.emit(r)
    assert w.readout_label.text() != ""
    cal = w.docks.get("calibration")
    if cal is not None:
        from peaknet_gui.gui.docks.calibration import show_calibration

        show_calibration(w)
        qtbot.waitUntil(cal.isVisible, timeout=5000)

    _open(qtbot, w, b, index=0)
    assert w.windowTitle() == "run_b.h5"
    assert w.export_dir() != out_a and "run_b" in w.export_dir()
    assert w.readout_label.text() == ""
    assert w.docks["info"].labels["event"].text().startswith("0 / 2")
    assert w.nav.spin.suffix() == " / 2"
    assert w.image_view.overlay.index == 0 and w.controller.current_view.frame.shape == (384, 384)
    if cal is not None:  # the last run's calibrant rings are gone, the dock is closed until asked for
        assert not cal.isVisible()
        assert cal.overlay.expected.paths is None or not cal.overlay.expected.paths.x
    _wait_all_analysed(qtbot, w)
    assert set(w.state.summaries) == {0, 1, 2}  # nothing of run A's six frames is left
    # back to run A: its export folder comes back
    _open(qtbot, w, a, index=0)
    assert w.export_dir() == out_a
    assert not recorder.errors


class _HeldRead:
    """The worker's source lock, holding back the model thread's next read of the run until the
    run is closed (by the next run's open): a job of run A (the background's, or the frame on
    screen's) is mid-frame when run B opens.  ``when`` "closed": held before the read, which
    then meets A's closed file (an unreadable-file error); "late": held after it, so A's frame
    reaches the analysis after run B replaced run A."""

    def __init__(self, worker, when: str):
        self._lock, self._model_thread, self._when = worker._source_lock, worker.model, when
        self.held = threading.Event()  # the model thread is waiting
        self.closed = threading.Event()
        source = worker._source
        close = source.close
        source.close = lambda: (close(), self.closed.set())

    def _hold(self, when: str) -> None:
        from peaknet_gui.gui.qt import QtCore

        if when == self._when and not self.held.is_set() and QtCore.QThread.currentThread() is self._model_thread:
            self.held.set()
            self.closed.wait(60)

    def __enter__(self):
        self._hold("closed")
        self._lock.acquire()

    def __exit__(self, *exc):
        self._lock.release()
        self._hold("late")


@pytest.mark.parametrize("when", ["closed", "late"])
def test_new_run_is_analysed_whatever_the_last_runs_background_job_does(qtbot, bg_window, tmp_path, recorder, when):
    """Run A's background job, still reading a frame when run B opens (cancelled, its file closed
    under it), must neither stop run B's background (an error reading A's closed file marked
    B's frame 1 unreadable: B was never fully analysed) nor put A's frame into B's results."""
    w = bg_window
    a = _small_run(tmp_path / "run_a.h5")
    b = _small_run(tmp_path / "run_b.h5", n=3, offset=7)
    w.worker.set_background(False)
    _open(qtbot, w, a, index=0)
    held = _HeldRead(w.worker, when)
    w.worker._source_lock = held
    w.worker.set_background(True)  # its job takes frame 1 and is held at its read
    qtbot.waitUntil(held.held.is_set, timeout=30000)
    _open(qtbot, w, b, index=0)
    assert held.closed.is_set()
    _wait_all_analysed(qtbot, w, timeout=30000)
    assert set(w.state.summaries) == {0, 1, 2}
    cached = w.worker.export_context()["cached"]
    assert sorted(cached) == [f"{b} //{i}" for i in range(3)]  # run B's frames, none of run A's
    assert not recorder.errors


@pytest.mark.parametrize("when", ["closed", "late"])
def test_last_runs_shown_frame_job_reports_nothing_and_stores_nothing_for_the_new_run(qtbot, bg_window, tmp_path,
                                                                                      recorder, when):
    """The model's job for run A's frame on screen, reading that frame from the file when run B
    opens (its file closed under the read), must neither report the failed read (a "corrupt or
    truncated" dialog about run A, a run gone) nor analyse A's frame as run B's frame 0."""
    w = bg_window
    a = _small_run(tmp_path / "run_a.h5")
    b = _small_run(tmp_path / "run_b.h5", n=3, offset=7)
    w.worker.set_background(False)  # the model thread runs only the shown frame's job
    _open(qtbot, w, a, index=0)
    stored = []  # every frame stored for a run, by its event line
    put = w.worker.store.put
    w.worker.store.put = lambda index, key, fp, frame, result: (stored.append(frame.event.lst_line()),
                                                                 put(index, key, fp, frame, result))[1]
    held = _HeldRead(w.worker, when)
    w.worker._source_lock = held
    with w.worker._lock:
        w.worker._frames.clear()  # frame 0 has left the frame cache (browsing evicts it)
    peaks = w.docks["peaks"]  # another peak finder: the model thread analyses frame 0 again, reading it
    peaks.algorithm.setCurrentIndex(peaks.algorithm.findData("peakfinder8"))
    qtbot.waitUntil(held.held.is_set, timeout=30000)
    del stored[:]
    _open(qtbot, w, b, index=0)
    assert held.closed.is_set()
    qtbot.waitUntil(lambda: not w.worker.busy(), timeout=30000)
    qtbot.wait(300)  # the worker's signals reach the window
    assert not recorder.errors
    assert stored and all(line.startswith(f"{b} //") for line in stored), stored  # none of run A's frames
    assert w.worker.export_context()["cached"].keys() == {f"{b} //0"}
    assert w.docks["info"].labels["peaks"].text() == str(w.worker.cached_result(0).n_peaks)


def test_failed_open_keeps_the_current_run(qtbot, bg_window, tmp_path, recorder):
    w = bg_window
    _open(qtbot, w, _small_run(tmp_path / "small.h5"), index=1)
    _wait_all_analysed(qtbot, w)
    info = w.docks["info"].labels
    before = {k: info[k].text() for k in ("event", "peaks", "hit", "file")}
    overlay = w.image_view.overlay
    n_circles = len(overlay.peak_x)
    title = w.windowTitle()
    n = len(recorder.errors)
    with qtbot.waitSignal(w.controller.errorShown, timeout=30000):
        w.open_paths([str(tmp_path / "nowhere" / "run_0002.h5")])
    assert len(recorder.errors) == n + 1 and "run_0002.h5" in recorder.errors[-1][1]
    qtbot.wait(500)
    assert w.controller.run.request.inputs == [str(tmp_path / "small.h5")]
    assert w.state.index == 1 and w.image_view.view.index == 1
    assert w.image_view.overlay is not None and w.image_view.overlay.index == 1
    assert len(w.image_view.overlay.peak_x) == n_circles
    assert {k: info[k].text() for k in before} == before  # not "InputError"
    assert w.windowTitle() == title
    # and the window goes on as before
    wait_complete(qtbot, w, 2, lambda: w.controller.step(1), timeout=10000)


def test_space_plays_and_pauses_from_a_spin_box(qtbot, tmp_path, recorder):
    """The fps box keeps the focus after the user sets the rate: Space still plays and pauses."""
    from peaknet_gui.gui.qt import Qt

    w = make_window(qtbot, tmp_path, background=True)
    try:
        _open(qtbot, w, _small_run(tmp_path / "small.h5"))
        _wait_all_analysed(qtbot, w)
        w.activateWindow()
        w.nav.fps.setFocus()
        w.nav.fps.setValue(2.0)
        qtbot.keyClick(w.nav.fps, Qt.Key_Space)
        assert w.state.playing, "Space went into the fps box"
        qtbot.keyClick(w.nav.fps, Qt.Key_Space)
        assert not w.state.playing
        assert w.nav.fps.value() == 2.0
    finally:
        w.close()
