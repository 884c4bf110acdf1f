"""Look of the application: a dark Fusion palette (easy on the eyes in a dark hutch) and the icon."""

from __future__ import annotations

from pathlib import Path

from ..shipped import ICON_NAME, shipped_file
from .qt import QtCore, QtGui, QtWidgets


def icon_path() -> Path:
    """The application icon: inside an installed package, else ``icons/`` of the source checkout."""
    return shipped_file(ICON_NAME)


def app_icon() -> QtGui.QIcon:
    p = icon_path()
    icon = QtGui.QIcon(str(p)) if p.exists() else QtGui.QIcon()
    if icon.isNull():  # no SVG plugin: a plain painted icon
        pm = QtGui.QPixmap(64, 64)
        pm.fill(QtGui.QColor("#1b1f29"))
        painter = QtGui.QPainter(pm)
        painter.setRenderHint(QtGui.QPainter.Antialiasing)
        painter.setPen(QtGui.QPen(QtGui.QColor("#00ff5a"), 3))
        for x, y in ((20, 18), (44, 26), (16, 42), (40, 46)):
            painter.drawEllipse(QtCore.QPointF(x, y), 6, 6)
        painter.end()
        icon = QtGui.QIcon(pm)
    return icon


def apply_dark_style(app: QtWidgets.QApplication) -> None:
    app.setStyle("Fusion")
    p = QtGui.QPalette()
    c = QtGui.QColor
    base, window, text, mid = c("#1e2129"), c("#272b35"), c("#dfe3ea"), c("#3a4050")
    p.setColor(QtGui.QPalette.Window, window)
    p.setColor(QtGui.QPalette.WindowText, text)
    p.setColor(QtGui.QPalette.Base, base)
    p.setColor(QtGui.QPalette.AlternateBase, window)
    p.setColor(QtGui.QPalette.ToolTipBase, c("#30364a"))
    p.setColor(QtGui.QPalette.ToolTipText, text)
    p.setColor(QtGui.QPalette.Text, text)
    p.setColor(QtGui.QPalette.Button, mid)
    p.setColor(QtGui.QPalette.ButtonText, text)
    p.setColor(QtGui.QPalette.BrightText, c("#ff6060"))
    p.setColor(QtGui.QPalette.Highlight, c("#3d7eff"))
    p.setColor(QtGui.QPalette.HighlightedText, c("#ffffff"))
    p.setColor(QtGui.QPalette.Link, c("#6ea8ff"))
    for role in (QtGui.QPalette.WindowText, QtGui.QPalette.Text, QtGui.QPalette.ButtonText):
        p.setColor(QtGui.QPalette.Disabled, role, c("#7a8090"))
    # disabled sliders (a threshold held by "argmax") must look it: no blue fill, a flat handle
    p.setColor(QtGui.QPalette.Disabled, QtGui.QPalette.Highlight, c("#3a3f4b"))
    p.setColor(QtGui.QPalette.Disabled, QtGui.QPalette.Button, c("#2b2f38"))
    p.setColor(QtGui.QPalette.Disabled, QtGui.QPalette.Base, c("#23262e"))
    app.setPalette(p)
    app.setStyleSheet(
        "QDockWidget::title { background: #323846; padding: 4px; font-weight: bold; }"
        "QToolTip { border: 1px solid #4a5368; }"
        "QStatusBar QLabel { padding: 0 6px; }"
    )


def glyph_icon(kind: str, color: str = "#dfe3ea", size: int = 32) -> QtGui.QIcon:
    """Light media glyphs for the dark palette: first, last, play, pause, prev, next."""
    pm = QtGui.QPixmap(size, size)
    pm.fill(QtCore.Qt.transparent)
    p = QtGui.QPainter(pm)
    p.setRenderHint(QtGui.QPainter.Antialiasing)
    p.setPen(QtCore.Qt.NoPen)
    p.setBrush(QtGui.QColor(color))
    s = size
    m = 0.2 * s

    def tri(x0, x1):
        p.drawPolygon(QtGui.QPolygonF([QtCore.QPointF(x0, m), QtCore.QPointF(x1, s / 2), QtCore.QPointF(x0, s - m)]))

    bar = 0.12 * s
    if kind == "play":
        tri(0.28 * s, 0.8 * s)
    elif kind == "next":
        tri(0.3 * s, 0.72 * s)
    elif kind == "prev":
        tri(0.7 * s, 0.28 * s)
    elif kind == "pause":
        p.drawRect(QtCore.QRectF(0.28 * s, m, bar * 1.4, s - 2 * m))
        p.drawRect(QtCore.QRectF(0.58 * s, m, bar * 1.4, s - 2 * m))
    elif kind == "first":
        p.drawRect(QtCore.QRectF(0.22 * s, m, bar, s - 2 * m))
        tri(0.78 * s, 0.36 * s)
    elif kind == "last":
        tri(0.22 * s, 0.64 * s)
        p.drawRect(QtCore.QRectF(0.66 * s, m, bar, s - 2 * m))
    p.end()
    return QtGui.QIcon(pm)
