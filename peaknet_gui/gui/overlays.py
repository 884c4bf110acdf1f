"""Graphics items drawn over the detector image: peaks, masks, resolution rings, beam centre.

All items live in the image's scene coordinates (see :mod:`.display`); they only receive ready
arrays from :class:`~.display.OverlayView` / :class:`~.display.FrameView`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .display import MASK_AUTO, MASK_STATIC, RingSpec
from .qt import QtCore, QtGui, QtWidgets, pg

PEAK_COLOR = (0, 255, 90)  # lime: not in any of the offered colormaps' greys
AUTO_MASK_COLOR = (255, 0, 200)  # magenta: artifact scattering (auto-mask)
STATIC_MASK_COLOR = (40, 140, 255)  # blue: static mask, detector gaps, bad pixels
RING_COLOR = (255, 200, 40)
BEAM_COLOR = (255, 60, 60)


class PeakOverlay(pg.ScatterPlotItem):
    """Circles at the peaks: the diameter grows with the peak's pixel count (scene units) and
    never gets smaller than ``MIN_SCREEN_PX`` on screen, so peaks stay visible zoomed out."""

    MIN_SCREEN_PX = 11.0

    def __init__(self):
        pen = pg.mkPen(PEAK_COLOR, width=1.6)
        pen.setCosmetic(True)
        super().__init__(pxMode=False, symbol="o", pen=pen, brush=None, antialias=True)
        self.setZValue(20)
        self.n = 0
        self._diameter = np.zeros(0)
        self._px_per_unit = 1.0
        self._drawn = np.zeros(0)

    def set_peaks(self, x: np.ndarray, y: np.ndarray, diameter: np.ndarray) -> None:
        self.n = len(x)
        self._diameter = np.asarray(diameter, dtype=np.float64)
        if self.n == 0:
            self._drawn = np.zeros(0)
            self.clear()
            return
        self._drawn = self._sizes()
        self.setData(x=x, y=y, size=self._drawn)

    def _sizes(self) -> np.ndarray:
        return np.maximum(self._diameter, self.MIN_SCREEN_PX / max(self._px_per_unit, 1e-6))

    def set_zoom(self, px_per_unit: float) -> None:
        """Screen pixels per scene unit changed (zoom): keep the minimum circle size."""
        self._px_per_unit = float(px_per_unit)
        if self.n:
            sizes = self._sizes()
            if not np.allclose(sizes, self._drawn):
                self._drawn = sizes
                self.setSize(sizes)

    @property
    def drawn_diameters(self) -> np.ndarray:
        """Circle diameters as drawn now (scene units)."""
        return self._drawn


class MaskOverlay(pg.ImageItem):
    """The mask code image (0 none, 1 static/gaps, 2 auto-mask) through a translucent LUT."""

    def __init__(self):
        super().__init__()
        self.setZValue(10)
        self._opacity = 0.45
        self._show_static = True
        self._show_auto = True
        self._code: Optional[np.ndarray] = None

    def _lut(self) -> np.ndarray:
        a = int(round(255 * self._opacity))
        lut = np.zeros((256, 4), dtype=np.uint8)
        if self._show_static:
            lut[MASK_STATIC] = (*STATIC_MASK_COLOR, a)
        if self._show_auto:
            lut[MASK_AUTO] = (*AUTO_MASK_COLOR, a)
        return lut

    def configure(self, show_static: bool, show_auto: bool, opacity: float) -> None:
        changed = (show_static, show_auto, opacity) != (self._show_static, self._show_auto, self._opacity)
        self._show_static, self._show_auto, self._opacity = show_static, show_auto, float(opacity)
        if changed and self._code is not None:
            self.setLookupTable(self._lut())
        self.setVisible((show_static or show_auto) and self._code is not None)

    def set_codes(self, code: Optional[np.ndarray]) -> None:
        self._code = code
        if code is None:
            self.clear()
            self.setVisible(False)
            return
        self.setImage(code, autoLevels=False, levels=(0, 255), lut=self._lut())
        self.setVisible(self._show_static or self._show_auto)

    @property
    def codes(self) -> Optional[np.ndarray]:
        return self._code


class RingsOverlay(QtWidgets.QGraphicsItemGroup):
    """Resolution rings (dashed circles around the beam) labelled with their d-spacing."""

    def __init__(self, view_box: pg.ViewBox):
        super().__init__()
        self._vb = view_box
        self._items: list = []
        self.setZValue(15)

    def set_rings(self, beam: Optional[tuple], rings: list) -> None:
        up = -1.0 if self._vb.yInverted() else 1.0  # the labels sit upper right on screen
        key = (None if beam is None else tuple(round(float(v), 3) for v in beam),
               tuple((round(float(r.d_a), 4), round(float(r.radius), 3)) for r in rings), up)
        if key == getattr(self, "_key", None):
            return
        self._key = key
        self._args = (beam, list(rings))
        for it in self._items:
            self._vb.removeItem(it)
        self._items = []
        if beam is None:
            return
        bx, by = beam
        pen = pg.mkPen(RING_COLOR, width=1.0, style=QtCore.Qt.DashLine)
        pen.setCosmetic(True)
        for ring in rings:
            r = ring.radius if isinstance(ring, RingSpec) else float(ring[1])
            d = ring.d_a if isinstance(ring, RingSpec) else float(ring[0])
            ell = QtWidgets.QGraphicsEllipseItem(bx - r, by - r, 2 * r, 2 * r)
            ell.setPen(pen)
            ell.setZValue(15)
            label = pg.TextItem(f"{d:g} \u00c5", color=RING_COLOR, anchor=(0, 1))
            label.setPos(bx + r * 0.7071, by + up * r * 0.7071)
            label.setZValue(16)
            for it in (ell, label):
                self._vb.addItem(it, ignoreBounds=True)
                it.setVisible(self.isVisible())
                self._items.append(it)

    def refresh(self) -> None:
        """Draw the rings again (after the view's orientation changed)."""
        if getattr(self, "_args", None) is not None:
            self.set_rings(*self._args)

    def setVisible(self, visible: bool) -> None:  # noqa: N802 (Qt naming)
        super().setVisible(visible)
        for it in self._items:
            it.setVisible(visible)

    @property
    def n(self) -> int:
        return sum(1 for it in self._items if isinstance(it, QtWidgets.QGraphicsEllipseItem))


class BeamOverlay(pg.ScatterPlotItem):
    """A cross at the direct beam position."""

    def __init__(self):
        super().__init__(pxMode=True, symbol="+", size=22, pen=pg.mkPen(BEAM_COLOR, width=2), brush=pg.mkBrush(BEAM_COLOR))
        self.setZValue(25)

    def set_beam(self, beam: Optional[tuple]) -> None:
        if beam is None:
            self.clear()
        else:
            self.setData(x=[beam[0]], y=[beam[1]])


def color_icon(rgb: tuple, size: int = 12) -> QtGui.QIcon:
    pm = QtGui.QPixmap(size, size)
    pm.fill(QtGui.QColor(*rgb))
    return QtGui.QIcon(pm)
