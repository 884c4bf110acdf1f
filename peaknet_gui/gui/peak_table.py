"""The peak table dock: every peak of the frame on screen, sortable; a row click centres and
zooms the image on the peak, a click on a peak circle selects its row; copy and CSV export.

The rows come from the overlay the worker prepared (``image_view.overlay.result.peaks``) and the
frame's geometry (panel names), through the Qt-free :mod:`peaknet_gui.peaks.table`; the CSV is
written by the window's file thread (:mod:`.file_jobs`, atomically), problems come back as dialogs naming the file.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..peaks.table import COLUMNS, HEADERS, PeakTable, peak_table, write_peak_csv
from . import dialogs
from .file_jobs import file_jobs
from .qt import Qt, QtCore, QtGui, QtWidgets, Signal, pg

SELECT_COLOR = (0, 230, 255)
ZOOM_HALF_WIDTH = 40.0  # scene pixels either side of a peak the row click zooms to (at most)


class PeakTableModel(QtCore.QAbstractTableModel):
    """A :class:`PeakTable` in a row order of its own (sorting never copies the table)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = PeakTable(np.zeros((0, len(COLUMNS))))
        self.order = np.zeros(0, dtype=np.int64)
        self._sort: Optional[tuple] = None

    def set_table(self, table: PeakTable) -> None:
        self.beginResetModel()
        self.table = table
        self.order = np.arange(len(table), dtype=np.int64)
        if self._sort is not None:
            self.order = table.sort_order(*self._sort)
        self.endResetModel()

    def rowCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: N802 (Qt naming)
        return 0 if parent.isValid() else len(self.order)

    def columnCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        if role == Qt.DisplayRole:
            return self.table.text(int(self.order[index.row()]), index.column())
        if role == Qt.TextAlignmentRole:
            return int((Qt.AlignLeft if COLUMNS[index.column()] == "panel" else Qt.AlignRight) | Qt.AlignVCenter)
        return None

    def headerData(self, section, orientation, role=Qt.DisplayRole):  # noqa: N802
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return HEADERS[section]
        if role == Qt.ToolTipRole and orientation == Qt.Horizontal:
            return {"d_A": "d-spacing (needs the geometry and the photon energy)",
                    "snr": "signal-to-noise ratio of the peak's total intensity",
                    "pixel_snr": "brightest pixel over the local background sigma",
                    "confidence": "the model's highest peak probability in the peak"}.get(COLUMNS[section])
        return None

    def sort(self, column: int, order=Qt.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        self._sort = (int(column), order == Qt.DescendingOrder) if 0 <= column < len(COLUMNS) else None
        self.order = self.table.sort_order(*self._sort) if self._sort else np.arange(len(self.table), dtype=np.int64)
        self.layoutChanged.emit()

    def peak_at(self, row: int) -> int:
        return int(self.order[row])

    def row_of(self, peak: int) -> int:
        hit = np.flatnonzero(self.order == int(peak))
        return int(hit[0]) if hit.size else -1


class PeakTableDock(QtWidgets.QDockWidget):
    """See the module docstring.  ``peakSelected(peak index)`` when a row becomes current;
    ``exported(path)`` after a CSV was written."""

    peakSelected = Signal(int)
    exported = Signal(str)

    def __init__(self, window):
        super().__init__("Peaks", window)
        self.setObjectName("dock_peak_table")
        self.window = window
        self.image_view = window.image_view
        self.result = None
        self.frame_view = None
        self.index = -1
        self._scene_xy = (np.zeros(0), np.zeros(0))
        self._programmatic = False
        self.model = PeakTableModel(self)
        self.table = QtWidgets.QTableView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.AscendingOrder)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        fm = self.table.fontMetrics()
        for c, sample in enumerate(("0000", "0000.00", "0000.00", "q0a15", "00.000", "000000.0", "000.00", "000.00",
                                    "0.000", "0000")):
            width = max(fm.horizontalAdvance(sample), fm.horizontalAdvance(HEADERS[c]) + 14) + 12
            self.table.horizontalHeader().resizeSection(c, width)
        self.table.setAlternatingRowColors(True)
        self.label = QtWidgets.QLabel("no frame")
        self.label.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Preferred)  # may be cut, never widens the dock
        self.copy_button = QtWidgets.QToolButton()
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy the selected rows (all rows when none is selected) as tab-separated text (Ctrl+C)")
        self.csv_button = QtWidgets.QToolButton()
        self.csv_button.setText("CSV\u2026")
        self.csv_button.setToolTip("Save the frame's peaks as a CSV file")
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.label, 1)
        top.addWidget(self.copy_button)
        top.addWidget(self.csv_button)
        body = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(body)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.addLayout(top)
        lay.addWidget(self.table, 1)
        self.setWidget(body)
        self.marker = pg.ScatterPlotItem(pxMode=True, symbol="s", size=24, brush=None,
                                         pen=pg.mkPen(SELECT_COLOR, width=2))
        self.marker.setVisible(False)
        self.image_view.add_item(self.marker, z=26)

        copy = QtWidgets.QShortcut(QtGui.QKeySequence.Copy, self.table)
        copy.setContext(Qt.WidgetShortcut)
        copy.activated.connect(self.copy)
        self.copy_button.clicked.connect(lambda *_: self.copy())
        self.csv_button.clicked.connect(lambda *_: self.export_dialog())
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.table.clicked.connect(lambda idx: self._go_to_row(idx.row()))
        self.image_view.overlayDrawn.connect(self._overlay_drawn)
        self.image_view.frameDrawn.connect(self._frame_drawn)
        self.image_view.peak_item.sigClicked.connect(self._circle_clicked)
        self._update_buttons()

    # --- following the image ------------------------------------------------------------------------
    def _frame_drawn(self, index: int) -> None:
        ov = self.image_view.overlay
        if ov is None or ov.index != index:
            self.set_result(None, self.image_view.view, index)

    def _overlay_drawn(self, index: int) -> None:
        ov = self.image_view.overlay
        if ov is not None and ov.index == index:
            self.set_result(ov.result, self.image_view.view, index)

    def set_result(self, result, frame_view, index: int) -> None:
        """Show the peaks of ``result`` (None: the frame is not analysed yet)."""
        same_frame = index == self.index and result is not None and self.result is not None
        keep = self.selected_peak() if same_frame else None
        self.result, self.frame_view, self.index = result, frame_view, index
        geom = getattr(frame_view, "geometry", None)
        if result is None:
            self.model.set_table(PeakTable(np.zeros((0, len(COLUMNS)))))
            self._scene_xy = (np.zeros(0), np.zeros(0))
            self.label.setText(f"frame {index}: analysing\u2026" if index >= 0 else "no frame")
        else:
            peaks = result.peaks
            self.model.set_table(peak_table(peaks, geom))
            if frame_view is not None and len(peaks):
                x, y = frame_view.mapper.data_to_scene(peaks.fs, peaks.ss)
                self._scene_xy = (np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(y, float)))
            else:
                self._scene_xy = (np.zeros(0), np.zeros(0))
            self.label.setText(f"frame {index}: {len(peaks):,} peak{'s' if len(peaks) != 1 else ''}")
        self.marker.setVisible(False)
        if keep is not None and keep < len(self.model.table):
            self.select_peak(keep, centre=False)
        self._update_buttons()

    def _update_buttons(self) -> None:
        have = len(self.model.table) > 0
        self.copy_button.setEnabled(have)
        self.csv_button.setEnabled(have)

    # --- selection ------------------------------------------------------------------------------------
    def selected_peak(self) -> Optional[int]:
        cur = self.table.selectionModel().currentIndex()
        return self.model.peak_at(cur.row()) if cur.isValid() and cur.row() < len(self.model.order) else None

    def selected_peaks(self) -> list:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.peak_at(r) for r in rows]

    def select_peak(self, peak: int, centre: bool = True) -> None:
        """Make ``peak`` (index in the frame's peak list) the current row; ``centre`` zooms onto it."""
        row = self.model.row_of(peak)
        if row < 0:
            return
        self._programmatic = not centre
        try:
            self.table.selectRow(row)
            self.table.setCurrentIndex(self.model.index(row, 0))
            self.table.scrollTo(self.model.index(row, 0), QtWidgets.QAbstractItemView.PositionAtCenter)
        finally:
            self._programmatic = False
        self._mark(peak)

    def _current_changed(self, cur, _prev) -> None:
        if not cur.isValid():
            return
        peak = self.model.peak_at(cur.row())
        self._mark(peak)
        self.peakSelected.emit(peak)
        if not self._programmatic:
            self.centre_on(peak)

    def _go_to_row(self, row: int) -> None:
        if 0 <= row < len(self.model.order):
            self.centre_on(self.model.peak_at(row))

    def _mark(self, peak: int) -> None:
        x, y = self._scene_xy
        if 0 <= peak < len(x) and np.isfinite(x[peak]) and np.isfinite(y[peak]):
            self.marker.setData(x=[x[peak]], y=[y[peak]])
            self.marker.setVisible(True)
        else:
            self.marker.setVisible(False)

    def centre_on(self, peak: int) -> None:
        """Centre the image on the peak, zoomed in to at most ``ZOOM_HALF_WIDTH`` pixels either side."""
        x, y = self._scene_xy
        if not (0 <= peak < len(x)) or not (np.isfinite(x[peak]) and np.isfinite(y[peak])):
            return
        vb = self.image_view.view_box
        (x0, x1), (y0, y1) = vb.viewRange()
        half = min(ZOOM_HALF_WIDTH, max(abs(x1 - x0), abs(y1 - y0)) / 2.0)
        vb.setRange(QtCore.QRectF(x[peak] - half, y[peak] - half, 2 * half, 2 * half), padding=0)

    def _circle_clicked(self, _item, points, _ev=None) -> None:
        if not len(points):
            return
        p = points[0].pos()
        self.select_circle_at(p.x(), p.y())

    def select_circle_at(self, x: float, y: float) -> Optional[int]:
        """Select the row of the peak whose circle is at scene (x, y) (the nearest peak)."""
        px, py = self._scene_xy
        if not len(px):
            return None
        d2 = (px - x) ** 2 + (py - y) ** 2
        d2[~np.isfinite(d2)] = np.inf
        peak = int(np.argmin(d2))
        if not np.isfinite(d2[peak]):
            return None
        self.select_peak(peak, centre=False)
        self.window.controller.statusMessage.emit(self.describe(peak), 10000)
        return peak

    def describe(self, peak: int) -> str:
        """One line about a peak (the status bar, when its circle is clicked)."""
        t = self.model.table
        parts = [f"{HEADERS[c]} {t.text(peak, c)}" for c in range(1, len(COLUMNS)) if t.text(peak, c)]
        return f"peak {peak}: " + "   ".join(parts)

    # --- copy / export --------------------------------------------------------------------------------
    def copy(self) -> str:
        peaks = self.selected_peaks()
        rows = peaks if peaks else None
        text = self.model.table.rows_text(rows)
        QtWidgets.QApplication.clipboard().setText(text)
        n = len(peaks) if peaks else len(self.model.table)
        self.window.controller.statusMessage.emit(f"{n} peak{'s' if n != 1 else ''} copied", 4000)
        return text

    def _comment(self) -> str:
        r, lines = self.result, []
        frame = getattr(self.frame_view, "frame", None)
        if frame is not None:
            lines.append(f"frame {self.index}: {frame.event.lst_line()}")
        if r is not None:
            lines.append(f"{len(r.peaks)} peaks, algorithm {r.algorithm}; fs/ss: pixel indices (first pixel centre at 0)")
        return "\n".join(lines)

    def export_dialog(self) -> None:
        if not len(self.model.table):
            dialogs.show_error(self.window, "Peak table", "No peaks on this frame to export.")
            return
        start = self.window.settings.last_dir() or os.getcwd()
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save the peak table", os.path.join(start, f"peaks_{self.index}.csv"),
                                                        "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path) -> None:
        """Write the frame's peaks (in the table's order) as CSV in the file thread (:mod:`.file_jobs`)."""
        table, rows = self.model.table, [int(v) for v in self.model.order]
        file_jobs(self.window).submit(write_peak_csv, path, table, rows, self._comment(),
                                      context=f"Writing the peak table {path}", on_done=lambda _: self._exported(str(path)))

    def _exported(self, path: str) -> None:
        self.window.controller.statusMessage.emit(f"Peak table written: {path}", 8000)
        self.exported.emit(path)


def install_peak_table(window) -> PeakTableDock:
    """Add the peak table on the right, below the frame info, and Tools > Peak table (Ctrl+Shift+T)."""
    dock = PeakTableDock(window)
    window.add_dock(dock, "right")
    info = window.docks.get("info")
    if info is not None:
        window.splitDockWidget(info, dock, Qt.Vertical)
    window.docks["peak_table"] = dock
    action = QtWidgets.QAction("&Peak table", window)
    action.setShortcut("Ctrl+Shift+T")
    action.setStatusTip("The frame's peaks: position, panel, resolution, intensity, SNR, confidence")
    action.triggered.connect(lambda *_: (dock.show(), dock.raise_()))
    window.addAction(action)
    window.tools_menu.addAction(action)
    window.tools_menu.menuAction().setVisible(True)
    window.actions_by_name["peak_table"] = action
    return dock
