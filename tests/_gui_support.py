"""Shared pieces of the GUI tests (test_gui_*.py): one real model for the session, windows, waits.

The model: the shipped weights (``resources/peaknet.safetensors``, or ``$PEAKNET_WEIGHTS``); the
tests that need it skip when there are none.  The real :class:`~peaknet_gui.pipeline.analyzer.FrameAnalyzer`
and :class:`~peaknet_gui.inference.predictor.Predictor` do the work; one predictor is shared by
all windows of the session (loading it is the slow part).
"""

from __future__ import annotations

import os
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_predictor = None
_lock = threading.Lock()


def shared_predictor():
    global _predictor
    with _lock:
        if _predictor is None:
            import pytest

            from peaknet_gui.inference.predictor import Predictor
            from peaknet_gui.model.weights import default_weights_path

            path = default_weights_path()
            if not path.exists():
                pytest.skip(f"no PeakNet weights at {path} (set PEAKNET_WEIGHTS)")
            _predictor = Predictor(None, device="cpu")
        return _predictor


def analyzer_factory(**kwargs):
    """What the window's worker calls to build its analyzer: the real FrameAnalyzer, shared model."""
    from peaknet_gui.pipeline.analyzer import FrameAnalyzer

    kwargs["predictor"] = shared_predictor()
    finder = kwargs["finder"]
    return FrameAnalyzer(finder.algorithm, **kwargs)


class Recorder:
    """Stands in for the dialog functions: records (title, text) instead of blocking on a box."""

    def __init__(self):
        self.errors = []
        self.warnings = []
        self.infos = []

    def install(self, monkeypatch):
        from peaknet_gui.gui import dialogs

        monkeypatch.setattr(dialogs, "show_error", lambda parent, title, text: self.errors.append((title, text)))
        monkeypatch.setattr(dialogs, "show_warning", lambda parent, title, text: self.warnings.append((title, text)))
        monkeypatch.setattr(dialogs, "show_info", lambda parent, title, text: self.infos.append((title, text)))
        return self


def make_window(qtbot, tmp_path, factory=None, size=(1400, 900), background: bool = False, **kwargs):
    """A shown main window.  ``background``: the worker's whole-run analysis (off by default so
    the tests that count model runs or race frames see only what they ask for; on in
    test_gui_background.py)."""
    from peaknet_gui.gui.main_window import MainWindow
    from peaknet_gui.gui.settings import AppSettings

    if factory is None or callable(factory):
        shared_predictor()  # loads the model (or skips the test) here, before any thread needs it
    if factory is None:
        factory = analyzer_factory
    elif factory is False:
        factory = None  # the application's own analyzer (weights from the window's model settings)
    settings = AppSettings(str(tmp_path / "settings.ini"))
    w = MainWindow(settings, analyzer_factory=factory, restore_layout=False, **kwargs)
    w.worker.set_background(background)
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    return w


def wait_complete(qtbot, window, index: int, action, timeout: int = 60000):
    """Run ``action()`` and wait until frame ``index`` has its image and overlays drawn."""
    with qtbot.waitSignal(window.controller.frameComplete, timeout=timeout, check_params_cb=lambda i: i == index):
        action()
    assert window.state.index == index
    assert window.image_view.overlay is not None and window.image_view.overlay.index == index


def open_demo(qtbot, window, index: int = 0):
    wait_complete(qtbot, window, index, lambda: window.open_demo(event=index), timeout=120000)


def close_window(window):
    window.close()
