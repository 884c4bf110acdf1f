"""Calibrant rings drawn over the detector image: expected (start geometry) and refined (after a fit).

Each set of rings is one :class:`pyqtgraph.PlotCurveItem` (rings separated by NaN, drawn with
``connect="finite"``), so hundreds of rings and arcs cost two items.  Points come ready in scene
coordinates from :func:`.calibration_rings.ring_paths` (ellipses on a tilted detector, arcs
where the beam is off the detector, any panel layout).  A small ring-number label sits on the first few rings; the
refined beam centre gets a cross.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .calibration_rings import RingPaths, concatenated
from .qt import QtCore, pg

EXPECTED_COLOR = (70, 205, 255)  # cyan: rings the start geometry predicts
REFINED_COLOR = (255, 125, 60)  # coral: rings of the refined geometry
MAX_LABELS = 6


def _pen(color, width: float, dashed: bool):
    pen = pg.mkPen(color, width=width, style=QtCore.Qt.DashLine if dashed else QtCore.Qt.SolidLine)
    pen.setCosmetic(True)
    return pen


class _RingSet:
    def __init__(self, image_view, color, dashed: bool, z: float, max_labels: int):
        self.image_view = image_view
        self.color = color
        self.curve = pg.PlotCurveItem(pen=_pen(color, 1.4, dashed), connect="finite", antialias=True)
        self.curve.setZValue(z)
        self.beam = pg.ScatterPlotItem(pxMode=True, symbol="x", size=14, pen=pg.mkPen(color, width=2), brush=None)
        self.beam.setZValue(z + 1)
        self.labels: list = []
        self.paths: Optional[RingPaths] = None
        self.max_labels = int(max_labels)
        self._visible = True
        self._wanted = True
        image_view.add_item(self.curve, z=z)
        image_view.add_item(self.beam, z=z + 1)

    def set_paths(self, paths: Optional[RingPaths], show_beam: bool) -> None:
        self.paths = paths
        for lab in self.labels:
            self.image_view.remove_item(lab)
        self.labels = []
        if paths is None or not paths.x:
            self.curve.setData(x=np.zeros(0), y=np.zeros(0))
        else:
            x, y = concatenated(paths)
            self.curve.setData(x=x, y=y, connect="finite")
            span = max(np.nanmax(x) - np.nanmin(x), np.nanmax(y) - np.nanmin(y))
            last_r = -np.inf
            for ring, rx, ry in zip(paths.rings, paths.x, paths.y):
                ok = np.flatnonzero(np.isfinite(rx) & np.isfinite(ry))
                if len(self.labels) >= self.max_labels:
                    break
                if not len(ok) or ring.radius_px - last_r < 0.05 * span:  # labels apart, not on top of each other
                    continue
                last_r = ring.radius_px
                k = ok[np.argmin(ry[ok] - 0.2 * rx[ok])]  # the upper-right-most point: out of the way
                lab = pg.TextItem(f"#{ring.index + 1}", color=self.color, anchor=(0.0, 1.0))
                lab.setPos(float(rx[k]), float(ry[k]))
                self.image_view.add_item(lab, z=self.curve.zValue() + 1)
                self.labels.append(lab)
        beam = paths.beam if (paths is not None and show_beam) else None
        if beam is None or not np.all(np.isfinite(beam)):
            self.beam.clear()
        else:
            self.beam.setData(x=[beam[0]], y=[beam[1]])
        self._apply()

    def set_visible(self, on: bool) -> None:
        self._wanted = bool(on)
        self._apply()

    def _apply(self) -> None:
        vis = self._wanted and self.paths is not None
        for it in [self.curve, self.beam] + self.labels:
            it.setVisible(vis)

    @property
    def visible(self) -> bool:
        return self.curve.isVisible()

    def remove(self) -> None:
        for it in [self.curve, self.beam] + self.labels:
            self.image_view.remove_item(it)
        self.labels = []


class CalibrantRingsOverlay:
    """The expected and the refined calibrant rings on ``image_view`` (a DetectorImageView)."""

    def __init__(self, image_view):
        self.expected = _RingSet(image_view, EXPECTED_COLOR, dashed=True, z=32, max_labels=MAX_LABELS)
        self.refined = _RingSet(image_view, REFINED_COLOR, dashed=False, z=34, max_labels=0)  # numbers once suffice

    def set_expected(self, paths: Optional[RingPaths]) -> None:
        self.expected.set_paths(paths, show_beam=False)

    def set_refined(self, paths: Optional[RingPaths]) -> None:
        self.refined.set_paths(paths, show_beam=True)

    def set_visible(self, expected: bool, refined: bool) -> None:
        self.expected.set_visible(expected)
        self.refined.set_visible(refined)

    def clear(self) -> None:
        self.set_expected(None)
        self.set_refined(None)

    def remove(self) -> None:
        self.expected.remove()
        self.refined.remove()
