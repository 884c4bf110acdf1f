"""The curation dock's items on the detector image: the label overlay and the tool item.

:class:`LabelToolItem` lies over the image (scene coordinates, see :mod:`.display`) and takes the
left mouse button while a curation tool is chosen (hidden otherwise, so the image pans and zooms
and the mask editor's tools work as usual).  Remove peak / add peak: a click (``clicked(x, y)``);
paint / erase artifact: a drag or a click (``stroked(points, radius)``).  Enter accepts a
previewed spot, Escape drops it (``keyAction("accept" | "reject")``).

:class:`LabelOverlay` draws the labels being curated: peak green, artifact red, the previewed
spot yellow; background and unlabelled pixels are not drawn.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .qt import QtCore, QtGui, QtWidgets, Signal, pg

TOOLS = ("remove", "add", "paint", "erase")
PEAK_COLOR = (40, 230, 90)
ARTIFACT_COLOR = (240, 70, 60)
PREVIEW_COLOR = (255, 225, 40)
PREVIEW_CODE = 3


class LabelToolItem(pg.GraphicsObject):
    clicked = Signal(float, float)
    stroked = Signal(object, float)  # ((x, y), ...) scene points, radius (scene pixels)
    keyAction = Signal(str)

    def __init__(self):
        super().__init__()
        self.tool: Optional[str] = None
        self.brush_radius = 3.0
        self._points: list = []
        self.setZValue(42)
        self.setAcceptHoverEvents(True)
        self.setFlag(QtWidgets.QGraphicsItem.ItemIsFocusable, True)
        self.setVisible(False)

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 (Qt naming)
        return QtCore.QRectF(-1e7, -1e7, 2e7, 2e7)

    def paint(self, p, *args) -> None:
        pass

    def set_tool(self, tool: Optional[str]) -> None:
        if tool is not None and tool not in TOOLS:
            raise ValueError(f"unknown curation tool {tool!r}")
        self.tool = tool
        self._points = []
        self.setVisible(tool is not None)
        self.setCursor(QtCore.Qt.CrossCursor if tool else QtCore.Qt.ArrowCursor)
        if tool is not None:
            self.setFocus()

    def hoverEvent(self, ev) -> None:  # noqa: N802
        if self.tool is None or ev.isExit():
            return
        ev.acceptClicks(QtCore.Qt.LeftButton)
        if self.tool in ("paint", "erase"):
            ev.acceptDrags(QtCore.Qt.LeftButton)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        if self.tool is None or ev.button() != QtCore.Qt.LeftButton:
            ev.ignore()
            return
        ev.accept()
        self.setFocus()
        p = ev.pos()
        if self.tool in ("paint", "erase"):
            self.stroked.emit(((float(p.x()), float(p.y())),), float(self.brush_radius))
        else:
            self.clicked.emit(float(p.x()), float(p.y()))

    def mouseDragEvent(self, ev) -> None:  # noqa: N802
        if self.tool not in ("paint", "erase") or ev.button() != QtCore.Qt.LeftButton:
            ev.ignore()
            return
        ev.accept()
        if ev.isStart():
            b = ev.buttonDownPos()
            self._points = [(float(b.x()), float(b.y()))]
        p = ev.pos()
        self._points.append((float(p.x()), float(p.y())))
        if ev.isFinish():
            pts, self._points = tuple(self._points), []
            self.stroked.emit(pts, float(self.brush_radius))

    def keyPressEvent(self, ev) -> None:  # noqa: N802
        key = ev.key()
        if key in (QtCore.Qt.Key_Return, QtCore.Qt.Key_Enter):
            self.keyAction.emit("accept")
        elif key == QtCore.Qt.Key_Escape:
            self.keyAction.emit("reject")
        else:
            ev.ignore()
            return
        ev.accept()


class LabelOverlay(pg.ImageItem):
    """Display-shaped label codes (0/255 nothing, 1 peak, 2 artifact, 3 previewed spot)."""

    def __init__(self, opacity: float = 0.55):
        super().__init__()
        self.setZValue(14)  # over the mask overlays, under the peak circles (20)
        lut = np.zeros((256, 4), dtype=np.uint8)
        a = int(round(255 * opacity))
        lut[1] = (*PEAK_COLOR, a)
        lut[2] = (*ARTIFACT_COLOR, int(a * 0.7))
        lut[PREVIEW_CODE] = (*PREVIEW_COLOR, min(255, a + 60))
        self._lut = lut
        self.codes: Optional[np.ndarray] = None

    def set_labels(self, mapper, labels: Optional[np.ndarray], preview: Optional[np.ndarray] = None) -> None:
        if labels is None:
            self.codes = None
            self.clear()
            return
        codes = np.where(labels == 255, 0, labels).astype(np.uint8)
        if preview is not None:
            codes[preview] = PREVIEW_CODE
        disp = mapper.image(codes, fill=0)
        self.codes = disp
        self.setImage(np.ascontiguousarray(disp), autoLevels=False, levels=(0, 255), lut=self._lut)


def color_swatch(rgb) -> QtGui.QIcon:
    pm = QtGui.QPixmap(12, 12)
    pm.fill(QtGui.QColor(*rgb))
    return QtGui.QIcon(pm)
