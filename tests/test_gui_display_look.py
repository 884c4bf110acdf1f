"""Display details of issue 17, item 6, under the application's own dark Fusion style: a threshold
held by "argmax" looks disabled (no blue fill in the rendered slider), and the Peak finding dock
fits a 1600 x 1000 window without scrolling.  No model is loaded."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from _gui_support import make_window  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def dark_style(qapp):
    """peaknet-gui's style for one test; the previous style, palette and style sheet come back after."""
    from peaknet_gui.gui.qt import QtWidgets
    from peaknet_gui.gui.style import apply_dark_style

    old_style = qapp.style().objectName()
    old_palette = QtWidgets.QApplication.palette()
    old_sheet = qapp.styleSheet()
    apply_dark_style(qapp)
    yield qapp
    qapp.setStyleSheet(old_sheet)
    qapp.setStyle(old_style)
    qapp.setPalette(old_palette)


def _render(qtbot, widget) -> np.ndarray:
    from peaknet_gui.gui.qt import QtGui, QtWidgets

    QtWidgets.QApplication.processEvents()
    qtbot.wait(20)
    img = widget.grab().toImage().convertToFormat(QtGui.QImage.Format_RGB888)
    ptr = img.constBits()
    ptr.setsize(img.byteCount())
    arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine())[:, : 3 * img.width()]
    return arr.reshape(img.height(), img.width(), 3).astype(int)


def test_held_slider_looks_disabled(qtbot, dark_style):
    from peaknet_gui.gui.docks.widgets import ProbabilitySlider

    s = ProbabilitySlider()
    qtbot.addWidget(s)
    s.resize(260, 50)
    s.show()
    qtbot.waitExposed(s)
    s.set_value(0.6)
    free = _render(qtbot, s.slider)
    blue = lambda a: ((a[..., 2] - a[..., 0] > 80) & (a[..., 2] > 180)).sum()  # noqa: E731 (the #3d7eff fill)
    assert s.slider.isEnabled() and blue(free) > 50
    s.set_value(None)  # held by argmax
    held = _render(qtbot, s.slider)
    assert not s.slider.isEnabled() and not s.label.isEnabled() and s.label.text() == "max"
    assert blue(held) == 0, "a held slider still shows the active blue fill"


def test_peak_finding_dock_fits_1600_by_1000(qtbot, tmp_path, dark_style):
    w = make_window(qtbot, tmp_path, factory=False, size=(1600, 1000))
    try:
        for _ in range(5):
            qtbot.wait(20)
        for key in ("peaks", "info"):
            area = w.docks[key].widget()
            assert w.docks[key].isVisible()
            assert not area.verticalScrollBar().isVisible(), f"{key} dock scrolls at 1600 x 1000"
            assert not area.horizontalScrollBar().isVisible(), f"{key} dock scrolls sideways at 1600 x 1000"
    finally:
        w.close()
