"""The worker: sliders re-threshold without running the model, the window stays responsive
while the model runs, model and device problems reach the user as dialogs."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from _gui_support import analyzer_factory, make_window, open_demo, shared_predictor, wait_complete  # noqa: E402

pytestmark = pytest.mark.gui


def _count_model_runs(monkeypatch, predictor) -> list:
    calls = []
    original = predictor.run

    def counting(prepared, *a, **k):
        calls.append(len(prepared))
        return original(prepared, *a, **k)

    monkeypatch.setattr(predictor, "run", counting)
    return calls


def _shipped_operating_point():
    import json

    from peaknet_gui.model.operating_point import OperatingPoint
    from peaknet_gui.model.weights import default_weights_path, sidecar_path

    side = json.loads(sidecar_path(default_weights_path()).read_text())
    return OperatingPoint.from_metadata(side.get("metadata"))


def _wait_new_overlay(qtbot, window, change, timeout=30000):
    """Apply a settings change and wait for the overlay made with the new settings."""
    change()
    qtbot.waitUntil(lambda: window.image_view.overlay is not None
                    and window.image_view.overlay.settings_version == window.worker.settings_version, timeout=timeout)
    return window.image_view.overlay


def test_sliders_rethreshold_without_running_the_model(qtbot, tmp_path, recorder, monkeypatch):
    pred = shared_predictor()
    calls = _count_model_runs(monkeypatch, pred)
    w = make_window(qtbot, tmp_path)
    try:
        open_demo(qtbot, w, 0)
        assert len(calls) == 1
        raw = w.worker._results.get(0).result  # the cached result with the class probabilities
        assert raw.peak_prob is not None
        frame = w.worker.cached_frame(0)
        # the demo's 67 hot pixels (43,152 counts, same place in every frame) are learnt from the
        # frames read at run open: masked, never circled, shown in Frame info
        hot = w.worker.analyzer.hot_pixels.run_mask()
        assert hot is not None and int(hot.sum()) == 67 and raw.hot_pixels == 67
        assert w.docks["info"].labels["hot"].text() == "67 (masked)"
        assert raw.artifact_mask[hot].all()
        on_hot = hot[np.rint(raw.peaks.ss).astype(int), np.rint(raw.peaks.fs).astype(int)]
        assert not on_hot.any()
        peaks_dock, mask_dock = w.docks["peaks"], w.docks["mask"]

        def set_peak_threshold(v):
            peaks_dock.threshold.argmax.setChecked(False)
            peaks_dock.threshold.slider.setValue(int(round(100 * v)))

        low = _wait_new_overlay(qtbot, w, lambda: set_peak_threshold(0.10))
        high = _wait_new_overlay(qtbot, w, lambda: set_peak_threshold(0.95))
        assert w.state.finder.peak_threshold == pytest.approx(0.95)
        assert low.result.n_peaks >= high.result.n_peaks
        assert low.result.n_peaks != high.result.n_peaks or low.result.n_peaks == 0
        # what is drawn is what the core computes from the cached probabilities
        expected = w.worker.analyzer.rethreshold(raw, frame, w.state.finder, w.state.mask)
        np.testing.assert_allclose(np.sort(high.peak_x - 0.5), np.sort(expected.peaks.fs))
        np.testing.assert_allclose(np.sort(high.peak_y - 0.5), np.sort(expected.peaks.ss))
        assert w.docks["info"].labels["peaks"].text() == str(expected.n_peaks)

        # the confidence slider drops whole peaks of low confidence ("auto": the weights' own point)
        def set_confidence(v):
            peaks_dock.threshold.argmax.setChecked(True)
            peaks_dock.confidence.argmax.setChecked(v is None)
            if v is not None:
                peaks_dock.confidence.slider.setValue(int(round(100 * v)))

        auto = _wait_new_overlay(qtbot, w, lambda: set_confidence(None))
        assert w.state.finder.min_confidence is None
        sure = _wait_new_overlay(qtbot, w, lambda: set_confidence(0.97))
        assert w.state.finder.min_confidence == pytest.approx(0.97)
        expected = w.worker.analyzer.rethreshold(raw, frame, w.state.finder, w.state.mask)
        assert sure.result.n_peaks == expected.n_peaks < auto.result.n_peaks
        assert np.all(expected.peaks.confidence >= np.float32(0.97))
        op = _shipped_operating_point()
        assert 0 <= op.peak_min_confidence < 1
        assert peaks_dock.confidence.argmax.text() == f"model ({op.peak_min_confidence:g})"

        # the pixel-SNR box drops whole peaks whose brightest pixel is faint ("model": the weights' point)
        assert op.peak_min_pixel_snr > 0 and peaks_dock.pixel_snr.specialValueText() == f"model ({op.peak_min_pixel_snr:g})"
        tier = op.confident_tier  # the weights' second tier, told in the tooltip
        assert tier is not None and (f"or >= {tier.min_pixel_snr:g} where the confidence is >= "
                                     f"{tier.min_confidence:g}") in peaks_dock.pixel_snr.toolTip()
        auto = _wait_new_overlay(qtbot, w, lambda: set_confidence(None))
        assert w.state.finder.min_pixel_snr is None
        bright = _wait_new_overlay(qtbot, w, lambda: peaks_dock.pixel_snr.setValue(3 * op.peak_min_pixel_snr))
        assert w.state.finder.min_pixel_snr == pytest.approx(3 * op.peak_min_pixel_snr)
        expected = w.worker.analyzer.rethreshold(raw, frame, w.state.finder, w.state.mask)
        assert bright.result.n_peaks == expected.n_peaks < auto.result.n_peaks
        assert np.all(expected.peaks.max_snr >= 3 * op.peak_min_pixel_snr)
        back = _wait_new_overlay(qtbot, w, lambda: peaks_dock.pixel_snr.setValue(peaks_dock.pixel_snr.minimum()))
        assert w.state.finder.min_pixel_snr is None and back.result.n_peaks == auto.result.n_peaks

        def set_artifact(v):
            mask_dock.threshold.argmax.setChecked(False)
            mask_dock.threshold.slider.setValue(int(round(100 * v)))

        loose = _wait_new_overlay(qtbot, w, lambda: set_artifact(0.05))
        strict = _wait_new_overlay(qtbot, w, lambda: set_artifact(0.95))
        grown = _wait_new_overlay(qtbot, w, lambda: mask_dock.dilation.setValue(3))
        n_loose, n_strict, n_grown = ((o.mask_code == 2).sum() for o in (loose, strict, grown))
        assert n_loose > n_strict
        assert n_grown >= n_strict
        expected = w.worker.analyzer.rethreshold(raw, frame, w.state.finder, w.state.mask)
        assert (grown.result.artifact_mask == expected.artifact_mask).all()
        # hiding and showing the mask and the peaks changes visibility only
        w.actions_by_name["mask"].trigger()
        w.actions_by_name["peaks"].trigger()
        assert not w.image_view.peak_item.isVisible() and not w.state.display.show_automask
        w.actions_by_name["peaks"].trigger()
        assert w.image_view.peak_item.isVisible()
        assert len(calls) == 1, "moving sliders must not run the model again"
        assert w.worker.stats.rethresholds >= 5
        # a new frame does run the model (stepping forward may also start frame 2 ahead of time)
        wait_complete(qtbot, w, 1, lambda: w.controller.step(1))
        assert len(calls) in (2, 3)
        assert not recorder.errors
    finally:
        w.close()


def test_powder_ring_spots_are_masked_and_can_be_kept(qtbot, tmp_path, recorder, monkeypatch):
    """Demo frame 13 has grainy ice rings: their spots are masked, not counted, until the user
    keeps them, and the rings are masked along their arcs until the user asks for the network's
    pixels only (re-filters of the cached probabilities, no model run)."""
    calls = _count_model_runs(monkeypatch, shared_predictor())
    w = make_window(qtbot, tmp_path)
    try:
        open_demo(qtbot, w, 13)
        peaks_dock, info = w.docks["peaks"], w.docks["info"]
        shown = w.image_view.overlay
        rings = shown.result.ring_spots
        assert len(rings) >= 6 and peaks_dock.drop_rings.isChecked()
        assert info.labels["rings"].text() == f"{len(rings)} (masked)"
        assert info.labels["peaks"].text() == str(shown.result.n_peaks)
        iy, ix = np.rint(rings.ss).astype(int), np.rint(rings.fs).astype(int)
        from peaknet_gui.gui.display import MASK_AUTO

        assert (shown.mask_code[iy, ix] == MASK_AUTO).all()  # drawn in the auto-mask
        kept = _wait_new_overlay(qtbot, w, lambda: peaks_dock.drop_rings.setChecked(False))
        assert w.state.finder.drop_ring_spots is False and len(kept.result.ring_spots) == 0
        assert kept.result.n_peaks == shown.result.n_peaks + len(rings)
        assert info.labels["rings"].text() == "none"
        # the ice rings' arcs are masked beyond the network's pixels; unchecking "whole powder
        # rings" leaves the network's own pixels (and, with ring spots dropped, their discs)
        mask_dock = w.docks["mask"]
        assert mask_dock.whole_rings.isChecked() and w.state.mask.whole_rings
        whole = int((kept.mask_code == MASK_AUTO).sum())
        part = _wait_new_overlay(qtbot, w, lambda: mask_dock.whole_rings.setChecked(False))
        assert w.state.mask.whole_rings is False
        assert int((part.mask_code == MASK_AUTO).sum()) < whole - 500
        assert len(calls) == 1 and not recorder.errors
    finally:
        w.close()


class SlowAnalyzer:
    """The real analyzer made slower by running it several times per frame (all real CPU work:
    model and post-processing), to measure how the window behaves during a long inference."""

    repeats = 2

    def __init__(self, **kwargs):
        self.inner = analyzer_factory(**kwargs)
        self.running = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __setattr__(self, name, value):
        if name in ("inner", "running"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.inner, name, value)

    def analyze(self, frames, prepared=None):
        self.running = True
        try:
            for _ in range(self.repeats - 1):
                self.inner.analyze(frames)
            return self.inner.analyze(frames)
        finally:
            self.running = False


def test_event_loop_stays_responsive_during_inference(qtbot, tmp_path, recorder):
    from peaknet_gui.gui.qt import QtCore

    shared_predictor()
    made = []

    def factory(**kw):
        a = SlowAnalyzer(**kw)
        made.append(a)
        return a

    w = make_window(qtbot, tmp_path, factory=factory)
    try:
        open_demo(qtbot, w, 0)
        ticks = []
        timer = QtCore.QTimer()
        timer.setInterval(5)
        timer.timeout.connect(lambda: ticks.append((time.perf_counter(), made[-1].running)))
        timer.start()
        shown = []
        w.controller.frameShown.connect(lambda v: shown.append((v.index, time.perf_counter(), made[-1].running)))
        t0 = time.perf_counter()
        wait_complete(qtbot, w, 1, lambda: w.controller.go(1), timeout=120000)
        busy_s = time.perf_counter() - t0
        # while the model works on frame 1, the user moves to frame 2: its image appears at once
        qtbot.waitUntil(lambda: made[-1].running is False, timeout=60000)
        w.controller.go(3)
        qtbot.waitUntil(lambda: made[-1].running, timeout=30000)
        # frame 2's overlay may follow its image within the same round of events (the model may
        # be analysing frame 2 ahead already): record completions from before the request on
        completed = []
        w.controller.frameComplete.connect(completed.append)
        t_go = time.perf_counter()
        w.controller.go(2)
        qtbot.waitUntil(lambda: any(i == 2 for i, _, _ in shown), timeout=30000)
        image_latency = next(t for i, t, _ in shown if i == 2) - t_go
        model_still_running = next(r for i, _, r in shown if i == 2)
        qtbot.waitUntil(lambda: 2 in completed, timeout=120000)
        assert w.state.index == 2 and w.image_view.overlay is not None and w.image_view.overlay.index == 2
        timer.stop()
        times = np.array([t for t, _ in ticks])
        busy = np.array([b for _, b in ticks])
        gaps = np.diff(times)
        during = gaps[busy[1:] | busy[:-1]]
        longest = float(during.max()) if len(during) else float(gaps.max())
        print(f"\nslow inference: {busy_s:.2f} s for one frame; longest event-loop stall during inference "
              f"{1e3 * longest:.0f} ms (over {len(during)} ticks); image of a new frame after "
              f"{1e3 * image_latency:.0f} ms while the model was {'busy' if model_still_running else 'idle'}")
        assert len(during) > 10, "the timer must have ticked while the model ran"
        assert longest < 0.5, f"the event loop stalled for {1e3 * longest:.0f} ms during inference"
        assert image_latency < 2.0
        assert not recorder.errors
    finally:
        w.close()


def test_missing_weights_dialog_and_fallback_to_peakfinder8(qtbot, tmp_path, recorder):
    from peaknet_gui.gui.worker import ModelSettings

    missing = tmp_path / "nowhere" / "peaknet.safetensors"
    w = make_window(qtbot, tmp_path, factory=False, model=ModelSettings(weights=str(missing), device="cpu"))
    try:
        with qtbot.waitSignal(w.controller.errorShown, timeout=60000):
            w.open_demo(event=0)
        title, text = recorder.errors[-1]
        assert title == "Model weights" and str(missing) in text
        assert w.image_view.view is not None and w.image_view.view.index == 0  # the image is there
        # the window stays usable: the classical finder works without weights
        with qtbot.waitSignal(w.controller.frameComplete, timeout=60000):
            w.docks["peaks"].algorithm.setCurrentIndex(w.docks["peaks"].algorithm.findData("peakfinder8"))
        assert w.image_view.overlay.result.algorithm == "peakfinder8"
        assert len(recorder.errors) == 1
    finally:
        w.close()


class _OutOfMemoryAnalyzer(SlowAnalyzer):
    """The analyzer as it behaves when the GPU runs out of memory and the CPU fallback fails too."""

    def analyze(self, frames, prepared=None):
        from peaknet_gui.errors import DeviceError

        raise DeviceError("cuda:0: CUDA out of memory while running PeakNet on 1 frame(s) of 1920x1920 "
                          "(tried batch size 1), and the CPU fallback failed")


def test_device_error_dialog(qtbot, tmp_path, recorder):
    w = make_window(qtbot, tmp_path, factory=lambda **kw: _OutOfMemoryAnalyzer(**kw))
    try:
        with qtbot.waitSignal(w.controller.errorShown, timeout=60000):
            w.open_demo(event=0)
        title, text = recorder.errors[-1]
        assert title == "Compute device" and "out of memory" in text
        # still usable: the next frame is read and shown
        with qtbot.waitSignal(w.controller.frameShown, timeout=30000):
            w.controller.step(1)
        assert w.state.index == 1
    finally:
        w.close()


class _CudaFallbackAnalyzer(SlowAnalyzer):
    """The real analyzer, whose predictor reports what the Predictor says when CUDA ran out of
    memory and it went on on the CPU."""

    repeats = 1
    message = "cuda:0: CUDA out of memory (tried to allocate 2.00 GiB); PeakNet continues on the CPU"

    def analyze(self, frames, prepared=None):
        import types

        res = super().analyze(frames)
        if "_predictor" not in self.__dict__:  # the first frame hit the out-of-memory fallback
            object.__setattr__(self, "_predictor", types.SimpleNamespace(warnings=[]))
            self._predictor.warnings.append(self.message)
        return res


def test_cuda_fallback_warning_is_shown_once(qtbot, tmp_path, recorder):
    w = make_window(qtbot, tmp_path, factory=lambda **kw: _CudaFallbackAnalyzer(**kw))
    try:
        open_demo(qtbot, w, 0)
        qtbot.waitUntil(lambda: bool(recorder.warnings), timeout=10000)
        assert "out of memory" in recorder.warnings[-1][1]
        wait_complete(qtbot, w, 1, lambda: w.controller.step(1))
        assert len(recorder.warnings) == 1 and not recorder.errors
    finally:
        w.close()
