"""The window on a live Eiger stream: opens in Live mode with the stream's status, shows the newest
frame, keeps the event loop free while frames arrive at 100 Hz, and stays responsive when the
sender vanishes (offscreen; localhost only)."""

from __future__ import annotations

import time

import pytest
from _stream_support import SenderThread, need_streams, spot_frames

need_streams()
pytest.importorskip("pytestqt")

from _gui_support import make_window  # noqa: E402

from peaknet_gui.gui.qt import QtCore  # noqa: E402
from peaknet_gui.gui.stream_live import attach_stream_live  # noqa: E402
from peaknet_gui.sources.stream_eiger.sender import ReplaySender  # noqa: E402

pytestmark = pytest.mark.gui


class StallMeter:
    """The longest gap between 10 ms timer ticks of the GUI thread (the event loop's stall)."""

    def __init__(self):
        self.last = None
        self.worst_ms = 0.0
        self.timer = QtCore.QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        if self.last is not None:
            self.worst_ms = max(self.worst_ms, 1e3 * (now - self.last))
        self.last = now

    def start(self):
        self.last = None
        self.timer.start()

    def stop(self):
        self.timer.stop()


@pytest.mark.slow
def test_window_follows_a_stream_and_survives_the_sender(qtbot, tmp_path, recorder):
    w = make_window(qtbot, tmp_path)
    live = attach_stream_live(w)
    frames = spot_frames(60, shape=(192, 256))
    sender = ReplaySender()
    meter = StallMeter()
    try:
        def send(s):
            s.series(frames[:1])  # the first frame opens the run
            time.sleep(1.0)
            s.series(frames[1:], series=2, rate_hz=100, die_after=50)  # 50 frames at 100 Hz, then the sender dies
            return True
        st = SenderThread(sender, send, delay_s=0.0).start()
        with qtbot.waitSignal(w.controller.runOpened, timeout=60000):
            w.open_paths([sender.url])
        assert w.state.follow_live and w.nav.follow.isChecked()
        assert live.label.isVisible() and live.label.text().startswith("Stream")
        meter.start()
        qtbot.waitUntil(lambda: w.state.n_frames == 51, timeout=30000)
        st.join()
        sender.close(linger_s=0)
        # latest frame wins: the newest frame is shown and analysed
        qtbot.waitUntil(lambda: w.state.index == 50 and w.controller.current_overlay is not None
                        and w.controller.current_overlay.index == 50, timeout=60000)
        meter.stop()
        assert meter.worst_ms < 1000, f"the event loop stalled {meter.worst_ms:.0f} ms"
        # the sender is gone: the status says so and the window still answers
        qtbot.waitUntil(lambda: live.last_status is not None and live.last_status.state in ("reconnecting", "stalled"),
                        timeout=10000)
        t = time.perf_counter()
        w.controller.go(10)
        qtbot.waitUntil(lambda: w.controller.current_view is not None and w.controller.current_view.index == 10,
                        timeout=20000)
        assert time.perf_counter() - t < 20
        assert not recorder.errors, recorder.errors
    finally:
        meter.stop()
        try:
            sender.close(linger_s=0)
        except Exception:  # noqa: BLE001 -- closed above
            pass
