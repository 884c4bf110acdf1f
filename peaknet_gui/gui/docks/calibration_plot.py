"""Widgets of the calibration dock: the radial profile plot with ring markers, the before/after table."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..calibration_overlay import EXPECTED_COLOR, REFINED_COLOR
from ..qt import Qt, QtCore, QtGui, QtWidgets, pg

#: x-axis choices: key, menu text, axis label
AXES = (("q", "q (\u00c5\u207b\u00b9)", "q  (\u00c5\u207b\u00b9)"),
        ("2theta", "2\u03b8 (\u00b0)", "2\u03b8  (\u00b0)"),
        ("d", "d (\u00c5)", "d  (\u00c5)"))
START_CURVE_COLOR = (175, 185, 205)
MAX_MARKER_LABELS = 10
FOCUS_RINGS = 16


def _ring_axis(table, axis: str) -> np.ndarray:
    return {"q": table.q_inv_a, "2theta": np.rad2deg(table.twotheta_rad), "d": table.d_a}[axis]


class ProfilePlot(QtWidgets.QWidget):
    """I(q), I(2theta) or I(d) of the frame at the start (and refined) geometry, with dashed
    markers where the calibrant's rings belong.  ``axisChanged(str)`` when the user picks an axis."""

    axisChanged = QtCore.pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.axis_combo = QtWidgets.QComboBox()
        for key, text, _ in AXES:
            self.axis_combo.addItem(text, key)
        self.axis_combo.setToolTip("Radial axis of the azimuthally integrated profile: I(q), I(2\u03b8) or I(d)")
        self.log_y = QtWidgets.QCheckBox("log")
        self.log_y.setChecked(True)
        self.log_y.setToolTip("Logarithmic intensity axis")
        top = QtWidgets.QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.setSpacing(6)
        top.addWidget(self.axis_combo)
        top.addWidget(self.log_y)
        top.addStretch(1)
        self.header = top  # the dock adds its own switches here

        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(165)
        pi = self.plot.getPlotItem()
        pi.showGrid(x=True, y=True, alpha=0.15)
        pi.setLabel("left", "Intensity")
        left = pi.getAxis("left")
        left.setToolTip("Mean intensity per pixel of each radial bin (solid-angle corrected)")
        pi.setMenuEnabled(False)
        pi.hideButtons()
        self.legend = pi.addLegend(offset=(-6, 30), labelTextSize="8pt", brush=pg.mkBrush(21, 23, 28, 210),
                                   pen=pg.mkPen(70, 76, 90))
        self.start_curve = pi.plot(pen=pg.mkPen(START_CURVE_COLOR, width=1.2), name="start geometry")
        self.refined_curve = pi.plot(pen=pg.mkPen(REFINED_COLOR, width=1.5), name="refined geometry")
        self._marker_legend = pi.plot(pen=pg.mkPen(EXPECTED_COLOR, width=1, style=Qt.DashLine), name="calibrant rings")
        self.markers: list = []
        self._data: dict = {}
        self.marker_positions = np.zeros(0)
        self.view_range = (0.0, 1.0)
        self.result = None

        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(3)
        lay.addLayout(top)
        lay.addWidget(self.plot, 1)
        self.axis_combo.currentIndexChanged.connect(self._axis_changed)
        self.log_y.toggled.connect(self._redraw)

    @property
    def axis(self) -> str:
        return self.axis_combo.currentData()

    def set_axis(self, axis: str) -> None:
        i = self.axis_combo.findData(axis)
        if i >= 0:
            self.axis_combo.setCurrentIndex(i)

    def _axis_changed(self, *_):
        self._redraw()
        self.axisChanged.emit(self.axis)

    def clear(self) -> None:
        self.result = None
        self._redraw()

    def set_result(self, result) -> None:
        """A :class:`~..calibration_jobs.ProfileResult` (or None)."""
        self.result = result
        self._redraw()

    def curve_data(self, which: str = "start") -> tuple:
        """(x, y) of a curve: NaN-free, x in the current axis units, y the intensity (linear, also
        when the curve shows log10 of it)."""
        return self._data.get(which, (np.zeros(0), np.zeros(0)))

    def _show(self, curve, which: str, xy: tuple) -> tuple:
        """Plot ``xy`` (linear intensity) on ``curve``; returns the displayed (x, y).  Log scale is
        log10 of the data on a linear axis: pyqtgraph's own log axis crowds a short axis with
        minor-tick labels."""
        x, y = xy
        self._data[which] = (x, y)
        shown = np.log10(y) if self.log_y.isChecked() else y
        curve.setData(x, shown)
        return x, shown

    def _xy(self, prof) -> tuple:
        x = prof.axis(self.axis)
        y = np.asarray(prof.intensity, float)
        ok = np.isfinite(x) & np.isfinite(y) & (prof.q > 1e-6)
        if self.log_y.isChecked():
            ok &= y > 0
        return x[ok], y[ok]

    def _redraw(self, *_):
        pi = self.plot.getPlotItem()
        for m in self.markers:
            pi.removeItem(m)
        self.markers = []
        self.marker_positions = np.zeros(0)
        label = dict((k, lab) for k, _, lab in AXES)[self.axis]
        pi.setLabel("bottom", label)
        pi.setLabel("left", "log\u2081\u2080 intensity" if self.log_y.isChecked() else "Intensity")
        r = self.result
        self._data = {}
        if r is None:
            self.start_curve.setData([], [])
            self.refined_curve.setData([], [])
            return
        xs, ys = self._show(self.start_curve, "start", self._xy(r.start))
        if r.refined is not None:
            xr, yr = self._show(self.refined_curve, "refined", self._xy(r.refined))
        else:
            xr = np.zeros(0)
            self.refined_curve.setData([], [])
        self.legend.setVisible(True)
        xall = np.concatenate([xs, xr])
        if not len(xall):
            return
        lo, hi = float(np.min(xall)), float(np.max(xall))
        rings = _ring_axis(r.table, self.axis)
        if self.axis == "d":  # d -> infinity at the beam: show from the finest d to beyond the first ring
            hi = min(hi, 1.25 * float(np.max(rings))) if len(rings) else hi
        inside = np.flatnonzero((rings >= lo) & (rings <= hi))
        self.marker_positions = rings[inside]
        # the view: the first FOCUS_RINGS rings when there are many (silver behenate's high orders are
        # weak and dense); the whole profile is a drag / zoom away
        vlo, vhi = lo, hi
        if len(inside) > FOCUS_RINGS:
            order = np.argsort(np.abs(r.table.q_inv_a[inside]))  # low q first on every axis
            edge = rings[inside[order[FOCUS_RINGS]]]
            prev = rings[inside[order[FOCUS_RINGS - 1]]]
            if self.axis == "d":
                vlo = max(lo, 0.5 * (edge + prev))
            else:
                vhi = min(hi, 0.5 * (edge + prev))
        pen = pg.mkPen(EXPECTED_COLOR + (150,), width=1, style=Qt.DashLine)
        min_gap = 0.06 * (vhi - vlo)
        last_label_x = None
        labelled = 0
        for k in inside[np.argsort(np.abs(r.table.q_inv_a[inside]))]:
            x = float(rings[k])
            text = None
            if (labelled < MAX_MARKER_LABELS and vlo <= x <= vhi
                    and (last_label_x is None or abs(x - last_label_x) >= min_gap)):
                text = str(int(r.table.index[k]) + 1)
                labelled += 1
                last_label_x = x
            line = pg.InfiniteLine(pos=x, angle=90, pen=pen, movable=False, label=text,
                                   labelOpts={"position": 0.96, "color": EXPECTED_COLOR,
                                              "anchors": [(0.5, 0), (0.5, 0)]})
            d = float(r.table.d_a[k])
            hkl = r.table.hkl[k]
            line.setToolTip(f"ring #{int(r.table.index[k]) + 1}: d = {d:.4f} \u00c5" + (f", hkl {hkl}" if hkl else ""))
            pi.addItem(line, ignoreBounds=True)
            self.markers.append(line)
        self.view_range = (vlo, vhi)
        pi.setXRange(vlo, vhi, padding=0.02)
        ys = [y[(x >= vlo) & (x <= vhi)] for x, y in ((xs, ys), (xr, yr if r.refined is not None else xr))]
        yv = np.concatenate(ys)
        if len(yv):
            ylo, yhi = float(np.min(yv)), float(np.max(yv))
            span = max(yhi - ylo, 1e-9)
            pi.setYRange(ylo - 0.03 * span, yhi + 0.18 * span, padding=0)  # room for the ring numbers


class _TextTable(QtWidgets.QTableWidget):
    """A read-only table of text rows: row names in the vertical header, right-aligned cells,
    as high as its rows (no scroll bar)."""

    HEADERS: tuple = ()
    BOLD_COLUMN = -1

    def __init__(self, headers: tuple, parent=None):
        super().__init__(0, len(headers), parent)
        self.HEADERS = tuple(headers)
        f = self.font()
        f.setPointSizeF(f.pointSizeF() * 0.92)
        self.setFont(f)
        self.setHorizontalHeaderLabels(self.HEADERS)
        self.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.setSelectionMode(QtWidgets.QAbstractItemView.NoSelection)
        self.setFocusPolicy(Qt.NoFocus)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(QtWidgets.QHeaderView.Stretch)
        hh.setHighlightSections(False)
        vh = self.verticalHeader()
        vh.setSectionResizeMode(QtWidgets.QHeaderView.Fixed)
        vh.setDefaultSectionSize(self.fontMetrics().height() + 3)
        vh.setDefaultAlignment(Qt.AlignLeft | Qt.AlignVCenter)
        vh.setHighlightSections(False)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)

    def _fill(self, rows: list, highlight: Optional[set] = None) -> None:
        self.setRowCount(len(rows))
        warn = QtGui.QColor("#ffaa28")
        for i, (name, *cells) in enumerate(rows):
            self.setVerticalHeaderItem(i, QtWidgets.QTableWidgetItem(name))
            for j, text in enumerate(cells):
                it = QtWidgets.QTableWidgetItem(text)
                it.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                if j == self.BOLD_COLUMN:
                    f = it.font()
                    f.setBold(True)
                    it.setFont(f)
                if highlight and i in highlight:
                    it.setForeground(warn)
                self.setItem(i, j, it)
        body = sum(self.rowHeight(i) for i in range(len(rows)))
        self.setFixedHeight(self.horizontalHeader().sizeHint().height() + body + 2 * self.frameWidth())

    def row_names(self) -> list:
        return [self.verticalHeaderItem(i).text() for i in range(self.rowCount())]

    def cell_text(self, row_name: str, column: str) -> str:
        for i in range(self.rowCount()):
            if self.verticalHeaderItem(i).text() == row_name:
                return self.item(i, self.HEADERS.index(column) if column in self.HEADERS else 0).text()
        raise KeyError(row_name)


class ComparisonTable(_TextTable):
    """Before/after of a fit: quantity | start | refined | 1-sigma | change."""

    BOLD_COLUMN = 1
    EMPTY_ROWS = ("Beam fs (px)", "Beam ss (px)", "Distance (mm)", "Tilt (\u00b0)", "Residual (px RMS)",
                  "Rings / points")

    def __init__(self, parent=None):
        super().__init__(("Start", "Refined", "\u00b1 1\u03c3", "Change"), parent)
        self.setToolTip("Beam fs / ss: the direct-beam centre (where the beam meets the detector; Fit2D's "
                        "centerX/Y \u2212 0.5) in pixel indices; distance: sample to that point; tilt: angle of "
                        "the detector normal to the beam and the direction of its axis; \u00b1 1\u03c3: "
                        "formal errors from the least-squares covariance")
        self.set_rows([])

    def set_rows(self, rows: list, highlight: Optional[set] = None) -> None:
        """``rows``: (quantity, start, refined, 1-sigma, change) text tuples; ``highlight``: row
        numbers to draw in the warning colour."""
        if not rows:
            rows = [(q, "\u2013", "\u2013", "", "") for q in self.EMPTY_ROWS]
        self._fill(rows, highlight)


class ResidualTable(_TextTable):
    """Residuals per ring or per panel (hidden while empty)."""

    def __init__(self, headers: tuple, tooltip: str = "", parent=None):
        super().__init__(headers, parent)
        self.setToolTip(tooltip)
        self.set_rows([])

    def set_rows(self, rows: list, highlight: Optional[set] = None) -> None:
        self._fill(rows, highlight)
        self.setVisible(bool(rows))
