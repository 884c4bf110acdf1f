"""Run overview dock: peaks per frame and the rolling hit rate; a click jumps to that frame.

A shaded band behind the peaks marks the frames analysed with the current settings (the
worker's background analysis fills it); points of frames analysed with earlier settings are
drawn hollow until analysed again; the hit-rate line stops at frames never analysed.
"""

from __future__ import annotations

import numpy as np

from ..overlays import PEAK_COLOR
from ..qt import QtCore, QtWidgets, Signal, pg
from ..state import BrowserState, with_gaps

HIT_COLOR = (255, 170, 40)
MISS_COLOR = (120, 130, 150)
BAND_COLOR = (90, 150, 230, 45)


class RunOverviewDock(QtWidgets.QDockWidget):
    """``frameClicked(index)`` when the user clicks a point (or anywhere) in the plots."""

    frameClicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__("Run overview", parent)
        self.setObjectName("dock_run_overview")
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumHeight(150)
        self.peaks_plot = self.plots.addPlot(row=0, col=0)
        self.rate_plot = self.plots.addPlot(row=0, col=1)
        self.plots.ci.layout.setColumnStretchFactor(0, 3)
        self.plots.ci.layout.setColumnStretchFactor(1, 2)
        self.rate_plot.setXLink(self.peaks_plot)
        self.peaks_plot.setLabel("left", "peaks")
        self.rate_plot.setLabel("left", "hit rate (%)")
        self.rate_plot.setTitle("rolling hit rate", size="9pt")
        self.peaks_plot.setTitle("peaks per frame (orange: hits)", size="9pt")
        self.rate_plot.setLabel("bottom", "frame")
        self.peaks_plot.setLabel("bottom", "frame")
        self.rate_plot.setYRange(0, 100, padding=0.05)
        self.rate_plot.getAxis("left").setTicks([[(v, str(v)) for v in (0, 25, 50, 75, 100)]])
        for p in (self.peaks_plot, self.rate_plot):
            for side in ("bottom", "left"):
                p.getAxis(side).enableAutoSIPrefix(False)  # frame numbers and counts, never "x0.001"
            p.showGrid(x=True, y=True, alpha=0.2)
            p.setMenuEnabled(False)
            p.getViewBox().setMouseEnabled(x=True, y=False)
        self.scatter = pg.ScatterPlotItem(size=6, pen=None, hoverable=True, tip=None)
        self.peaks_plot.addItem(self.scatter)
        self.threshold_line = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen((255, 170, 40, 120), style=QtCore.Qt.DashLine))
        self.peaks_plot.addItem(self.threshold_line)
        self.rate_curve = self.rate_plot.plot(pen=pg.mkPen(HIT_COLOR, width=1.5), connect="finite")
        # analysed frames: a one-row image stretched over the visible height behind the points
        self.band = pg.ImageItem(np.zeros((1, 1), np.uint8))
        self.band.setLookupTable(np.array([(0, 0, 0, 0), BAND_COLOR], dtype=np.uint8))
        self.band.setLevels((0, 1))
        self.band.setZValue(-10)
        self.peaks_plot.addItem(self.band, ignoreBounds=True)
        self.peaks_plot.getViewBox().sigYRangeChanged.connect(self._place_band)
        self._band_n = 0
        self.cursors = []
        for p in (self.peaks_plot, self.rate_plot):
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(PEAK_COLOR, width=1))
            p.addItem(line)
            self.cursors.append(line)
        self.summary = QtWidgets.QLabel("")
        body = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(body)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.plots, 1)
        lay.addWidget(self.summary)
        self.setWidget(body)
        self.scatter.sigClicked.connect(self._points_clicked)
        self.plots.scene().sigMouseClicked.connect(self._scene_clicked)
        self._n_frames = 0
        self._brushes = (pg.mkBrush(HIT_COLOR), pg.mkBrush(MISS_COLOR), pg.mkBrush(None), pg.mkBrush(None))
        self._pens = (pg.mkPen(None), pg.mkPen(None), pg.mkPen(HIT_COLOR), pg.mkPen(MISS_COLOR))
        self.n_done = 0  # frames analysed with the current settings (what the band shows)

    def _place_band(self, *_):
        y0, y1 = self.peaks_plot.getViewBox().viewRange()[1]
        self.band.setRect(QtCore.QRectF(-0.5, y0, max(self._band_n, 1), y1 - y0))

    def update_from(self, state: BrowserState) -> None:
        """Redraw from the state's summaries (cheap: a few thousand points)."""
        idx, peaks, hits = state.series()
        fp = state.fingerprint
        stale = np.array([state.summaries[i].fingerprint != fp for i in idx], dtype=bool)
        kind = np.where(hits, 0, 1) + 2 * stale
        self.scatter.setData(x=idx, y=peaks, brush=[self._brushes[k] for k in kind], pen=[self._pens[k] for k in kind],
                             data=idx)
        ridx, rate = state.rolling_hit_rate()
        self.rate_curve.setData(*with_gaps(ridx, rate))
        done = state.analysed_mask()
        self.n_done = int(done.sum())
        self._band_n = len(done)
        self.band.setImage(done.astype(np.uint8).reshape(1, -1), autoLevels=False, levels=(0, 1))  # row-major: one row
        self._place_band()
        self.threshold_line.setPos(state.finder.min_peaks_for_hit)
        if state.n_frames != self._n_frames:
            self._n_frames = state.n_frames
            for p in (self.peaks_plot, self.rate_plot):
                p.setLimits(xMin=-1, xMax=max(state.n_frames, 1))
                if state.n_frames <= 10:  # whole frames only on short runs
                    p.getAxis("bottom").setTickSpacing(1, 1)
                else:
                    p.getAxis("bottom").setTickSpacing()
            self.peaks_plot.setXRange(-0.5, max(state.n_frames - 0.5, 0.5), padding=0.01)
        self.set_current(state.index)
        n = state.n_analysed
        stale_n = n - self.n_done
        self.summary.setText(
            f"analysed {self.n_done}/{state.n_frames}" + (f" (+{stale_n} with earlier settings)" if stale_n else "")
            + f" \u2022 hits {state.n_hits} ({100 * state.hit_rate:.1f} %)"
            + (f" \u2022 mean peaks {peaks.mean():.1f}" if n else ""))

    def set_current(self, index: int) -> None:
        for c in self.cursors:
            c.setPos(index)

    def _points_clicked(self, item, points, ev=None) -> None:
        if len(points):
            self.frameClicked.emit(int(points[0].data()))

    def _scene_clicked(self, ev) -> None:
        if ev.isAccepted() or ev.button() != QtCore.Qt.LeftButton:
            return
        for p in (self.peaks_plot, self.rate_plot):
            vb = p.getViewBox()
            if vb.sceneBoundingRect().contains(ev.scenePos()):
                x = vb.mapSceneToView(ev.scenePos()).x()
                if self._n_frames:
                    self.frameClicked.emit(int(min(max(round(x), 0), self._n_frames - 1)))
                return
