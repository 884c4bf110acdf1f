"""The one place the GUI imports Qt from (PyQt5) and configures pyqtgraph.

Every other module of :mod:`peaknet_gui.gui` writes ``from .qt import QtCore, QtGui, QtWidgets,
Signal, pg``.  Images are row-major everywhere (``data[ss, fs]``, as in the core).
"""

from __future__ import annotations

import os

from PyQt5 import QtCore, QtGui, QtWidgets  # noqa: F401  (re-exported)

import pyqtgraph as pg  # noqa: E402  (after PyQt5 so pyqtgraph binds to it)

Signal = QtCore.pyqtSignal
Slot = QtCore.pyqtSlot
Qt = QtCore.Qt

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="#15171c", foreground="#d0d4dc")


def ensure_app(argv=None) -> QtWidgets.QApplication:
    """The QApplication (created once; high-DPI pixmaps on)."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        QtWidgets.QApplication.setAttribute(Qt.AA_EnableHighDpiScaling, True)
        QtWidgets.QApplication.setAttribute(Qt.AA_UseHighDpiPixmaps, True)
        app = QtWidgets.QApplication(list(argv) if argv is not None else ["peaknet-gui"])
        app.setApplicationName("peaknet-gui")
        app.setOrganizationName("peaknet_gui")
        app.setApplicationDisplayName("PeakNet")
    return app


def is_offscreen() -> bool:
    """True when Qt renders without a display (tests, ``--screenshot`` on a headless machine)."""
    app = QtWidgets.QApplication.instance()
    name = app.platformName() if app is not None else os.environ.get("QT_QPA_PLATFORM", "")
    return name in ("offscreen", "minimal")


__all__ = ["QtCore", "QtGui", "QtWidgets", "Signal", "Slot", "Qt", "pg", "ensure_app", "is_offscreen"]
