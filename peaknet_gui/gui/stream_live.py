"""Live streams in the window: a stream run (``peaknet-gui tcp://HOST:PORT``) opens in Live mode,
shows the stream's status in the status bar and keeps its hits in the stream's memory window.

Nothing here waits on the network: the receiver thread (:mod:`peaknet_gui.sources.live`) does
the reading; the status is a handful of attribute reads every half second, the worker's
follow-live refresh picks up new frames (newest analysed first: latest frame wins).
"""

from __future__ import annotations

from .qt import QtCore, QtWidgets

STATUS_MS = 500
FOLLOW_MS = 200  # a stream refreshes faster than a directory of files
FILES_FOLLOW_MS = 1000


class StreamLive(QtCore.QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.controller = window.controller
        self.label = QtWidgets.QLabel("")
        self.label.setVisible(False)
        window.statusBar().addPermanentWidget(self.label)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(STATUS_MS)
        self.timer.timeout.connect(self._tick)
        self.controller.runOpened.connect(self._on_run)
        self.controller.worker.summaryReady.connect(self._on_summary)
        self.last_status = None

    def source(self):
        """The worker's run source when it is a live stream, else None."""
        src = getattr(self.controller.worker, "_source", None)
        return src if src is not None and hasattr(src, "status") and hasattr(src, "keep") else None

    def _on_run(self, info) -> None:
        if self.source() is None:
            self.timer.stop()
            self.label.setVisible(False)
            self.controller.follow_timer.setInterval(FILES_FOLLOW_MS)
            return
        self.controller.follow_timer.setInterval(FOLLOW_MS)
        self.controller.set_follow(True)
        self.label.setVisible(True)
        self._tick()
        self.timer.start()

    def _tick(self) -> None:
        src = self.source()
        if src is None:
            self.timer.stop()
            self.label.setVisible(False)
            return
        st = src.status()
        self.last_status = st
        self.label.setText(f"Stream {st.state} \u00b7 {st.received} frames")
        self.label.setToolTip(f"{src.description}\n{st.line()}\n{st.left_window} frames left the in-memory window, "
                              f"{st.reconnects} reconnects, {st.bad_messages} messages not understood")

    def _on_summary(self, index: int, n_peaks: int, hit: bool, ms: float, fingerprint) -> None:
        src = self.source()
        if hit and src is not None:
            src.keep(index)  # hits stay readable after the recent frames move on


def attach_stream_live(window) -> StreamLive:
    window.stream_live = StreamLive(window)
    return window.stream_live
