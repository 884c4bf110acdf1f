"""Drawing tools of the mask editor on the detector image: rectangle, circle, polygon, brush,
eraser and panel picking, plus the overlay that shows the edited mask in its own colour.

:class:`MaskToolItem` lies over the image (scene coordinates, see :mod:`.display`) and takes the
left mouse button while a tool is chosen, so dragging draws instead of panning; without a tool it
is hidden and the image pans and zooms as usual.  It only turns mouse gestures into
:mod:`peaknet_gui.masks.editor_ops` shapes (``shapeDrawn``) and panel clicks (``pointPicked``);
the editor computes the pixels.

Gestures: rectangle -- drag a corner to the opposite corner; circle -- drag from the centre;
polygon -- click the vertices, then click the first vertex again, double-click or press Enter
(Backspace removes the last vertex, Escape drops the polygon); brush / eraser -- drag; panel --
click a panel.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..masks.editor_ops import Circle, Polygon, Rect, Stroke
from .qt import QtCore, QtGui, QtWidgets, Signal, pg

TOOLS = ("rect", "circle", "polygon", "brush", "eraser", "panel")
EDIT_MASK_COLOR = (255, 150, 20)  # orange: the mask being edited (static blue, auto-mask magenta)
PREVIEW_COLOR = (255, 230, 60)


class MaskToolItem(pg.GraphicsObject):
    """See the module docstring.  ``shapeDrawn(shape, masked)``: a finished shape (``masked``
    False for the eraser); ``pointPicked(x, y)``: a click with the panel tool."""

    shapeDrawn = Signal(object, bool)
    pointPicked = Signal(float, float)

    def __init__(self, view_box: pg.ViewBox):
        super().__init__()
        self._vb = view_box
        self.tool: Optional[str] = None
        self.brush_radius = 5.0  # scene pixels
        self._start: Optional[QtCore.QPointF] = None
        self._points: list = []  # polygon vertices / stroke points (scene x, y)
        self._cursor: Optional[tuple] = None
        self.setZValue(40)
        self.setAcceptHoverEvents(True)
        self.setFlag(QtWidgets.QGraphicsItem.ItemIsFocusable, True)
        self.preview = QtWidgets.QGraphicsPathItem()
        pen = QtGui.QPen(QtGui.QColor(*PREVIEW_COLOR))
        pen.setCosmetic(True)
        pen.setWidthF(1.5)
        pen.setStyle(QtCore.Qt.DashLine)
        self.preview.setPen(pen)
        self.preview.setBrush(QtGui.QBrush(QtGui.QColor(*PREVIEW_COLOR, 50)))
        self.preview.setZValue(41)
        self.setVisible(False)

    # --- QGraphicsItem -----------------------------------------------------------------------------
    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 (Qt naming)
        return QtCore.QRectF(-1e7, -1e7, 2e7, 2e7)  # the whole view: every press lands here

    def paint(self, p, *args) -> None:
        pass

    def set_tool(self, tool: Optional[str]) -> None:
        if tool is not None and tool not in TOOLS:
            raise ValueError(f"unknown mask tool {tool!r}")
        self.cancel()
        self.tool = tool
        self.setVisible(tool is not None)
        self.setCursor(QtCore.Qt.CrossCursor if tool else QtCore.Qt.ArrowCursor)

    def cancel(self) -> None:
        """Drop a shape being drawn."""
        self._start = None
        self._points = []
        self.preview.setPath(QtGui.QPainterPath())

    # --- mouse (pyqtgraph's scene events) ---------------------------------------------------------------
    def hoverEvent(self, ev) -> None:  # noqa: N802
        if self.tool is None or ev.isExit():
            self._cursor = None
            return
        ev.acceptDrags(QtCore.Qt.LeftButton)
        ev.acceptClicks(QtCore.Qt.LeftButton)
        p = ev.pos()
        self._cursor = (p.x(), p.y())
        if self.tool == "polygon" and self._points:
            self._show_polygon(self._points + [self._cursor], closed=False)

    def mouseDragEvent(self, ev) -> None:  # noqa: N802
        if self.tool is None or ev.button() != QtCore.Qt.LeftButton or self.tool in ("polygon", "panel"):
            ev.ignore()
            return
        ev.accept()
        p = ev.pos()
        if ev.isStart():
            b = ev.buttonDownPos()
            self.press(b.x(), b.y())
        self.move(p.x(), p.y())
        if ev.isFinish():
            self.release(p.x(), p.y())

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        if self.tool is None or ev.button() != QtCore.Qt.LeftButton:
            ev.ignore()
            return
        ev.accept()
        p = ev.pos()
        if self.tool == "polygon":
            if ev.double():
                self.finish_polygon()
            else:
                self.add_vertex(p.x(), p.y())
        elif self.tool == "panel":
            self.pointPicked.emit(float(p.x()), float(p.y()))
        elif self.tool in ("brush", "eraser"):  # a click paints one dab
            self.press(p.x(), p.y())
            self.release(p.x(), p.y())

    def keyPressEvent(self, ev) -> None:  # noqa: N802
        key = ev.key()
        if self.tool == "polygon" and key in (QtCore.Qt.Key_Return, QtCore.Qt.Key_Enter):
            self.finish_polygon()
        elif self.tool == "polygon" and key == QtCore.Qt.Key_Backspace and self._points:
            self._points.pop()
            self._show_polygon(self._points, closed=False)
        elif key == QtCore.Qt.Key_Escape and (self._points or self._start is not None):
            self.cancel()
        else:
            ev.ignore()
            return
        ev.accept()

    # --- gestures in scene coordinates (the mouse handlers call these; tests may too) ------------------
    def press(self, x: float, y: float) -> None:
        self._start = QtCore.QPointF(float(x), float(y))
        self._points = [(float(x), float(y))]

    def move(self, x: float, y: float) -> None:
        if self._start is None:
            return
        x, y = float(x), float(y)
        if self.tool in ("brush", "eraser"):
            if (x, y) != self._points[-1]:
                self._points.append((x, y))
        self._show_preview(x, y)

    def release(self, x: float, y: float) -> None:
        if self._start is None:
            return
        self.move(x, y)
        shape = self._shape(float(x), float(y))
        masked = self.tool != "eraser"
        self.cancel()
        if shape is not None:
            self.shapeDrawn.emit(shape, masked)

    def add_vertex(self, x: float, y: float) -> None:
        """Polygon: one more vertex; a click on the first vertex closes the polygon."""
        if len(self._points) >= 3 and self._near_first(x, y):
            self.finish_polygon()
            return
        self._points.append((float(x), float(y)))
        self._show_polygon(self._points, closed=False)

    def finish_polygon(self) -> None:
        pts = list(self._points)
        self.cancel()
        if len(pts) >= 3:
            self.shapeDrawn.emit(Polygon(tuple(pts)), True)

    @property
    def vertices(self) -> list:
        return list(self._points) if self.tool == "polygon" else []

    # --- helpers -----------------------------------------------------------------------------------------
    def _near_first(self, x: float, y: float) -> bool:
        px = self._vb.viewPixelSize()[0] if self._vb is not None else 1.0
        x0, y0 = self._points[0]
        return math.hypot(x - x0, y - y0) <= 8.0 * max(px, 1e-9)

    def _shape(self, x: float, y: float):
        s = self._start
        if self.tool == "rect":
            if s.x() == x or s.y() == y:
                return None
            return Rect(s.x(), s.y(), x, y)
        if self.tool == "circle":
            r = math.hypot(x - s.x(), y - s.y())
            return Circle(s.x(), s.y(), r) if r > 0 else None
        if self.tool in ("brush", "eraser"):
            return Stroke(tuple(self._points), float(self.brush_radius))
        return None

    def _show_preview(self, x: float, y: float) -> None:
        path = QtGui.QPainterPath()
        s = self._start
        if self.tool == "rect":
            path.addRect(QtCore.QRectF(s, QtCore.QPointF(x, y)).normalized())
        elif self.tool == "circle":
            r = math.hypot(x - s.x(), y - s.y())
            path.addEllipse(s, r, r)
        elif self.tool in ("brush", "eraser"):
            r = float(self.brush_radius)
            for px, py in self._points[-200:]:
                path.addEllipse(QtCore.QPointF(px, py), r, r)
        self.preview.setPath(path)

    def _show_polygon(self, pts: list, closed: bool) -> None:
        path = QtGui.QPainterPath()
        if pts:
            path.moveTo(*pts[0])
            for p in pts[1:]:
                path.lineTo(*p)
            if closed:
                path.closeSubpath()
        self.preview.setPath(path)


class EditedMaskOverlay(pg.ImageItem):
    """The mask being edited, drawn in its own colour over the image (display-shaped uint8 0/1)."""

    def __init__(self, opacity: float = 0.5):
        super().__init__()
        self.setZValue(12)  # over the static / auto-mask overlay (10), under the peaks (20)
        lut = np.zeros((256, 4), dtype=np.uint8)
        lut[1] = (*EDIT_MASK_COLOR, int(round(255 * opacity)))
        self._lut = lut
        self.n_shown = 0

    def set_display_mask(self, disp: Optional[np.ndarray]) -> None:
        if disp is None or not disp.any():
            self.n_shown = 0
            self.clear()
            return
        self.n_shown = int(np.count_nonzero(disp))
        self.setImage(disp.astype(np.uint8), autoLevels=False, levels=(0, 255), lut=self._lut)
