"""The peak table dock on a small four-panel run: one row per peak of the frame on screen with
the PeakList's values, sorting, a row click centres and zooms on the peak, a click on a peak
circle selects its row, copy and CSV export.  Offscreen, pytest-qt, the real analyzer and model."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from _gui_support import wait_complete  # noqa: E402
from test_gui_workbench_masks import _click, run_path  # noqa: E402,F401  (the run fixture)

pytestmark = pytest.mark.gui


def _open(qtbot, window, path, index=0):
    wait_complete(qtbot, window, index, lambda: window.open_paths([path], geometry=str(path.with_suffix(".geom")),
                                                                 event=index), timeout=120000)
    dock = window.docks["peak_table"]
    assert dock.isVisible()
    qtbot.waitUntil(lambda: dock.index == index and dock.result is window.image_view.overlay.result, timeout=10000)
    return dock


def _column(dock, name):
    from peaknet_gui.peaks.table import COLUMNS

    c = COLUMNS.index(name)
    return [dock.model.data(dock.model.index(r, c)) for r in range(dock.model.rowCount())]


def test_rows_are_the_frames_peaks_sorted_and_linked_to_the_image(qtbot, window, run_path, recorder, tmp_path):
    from peaknet_gui.gui.qt import QtCore, QtWidgets, Qt

    dock = _open(qtbot, window, run_path)
    pk = window.image_view.overlay.result.peaks
    n = len(pk)
    assert n >= 5 and dock.model.rowCount() == n
    assert f"{n} peaks" in dock.label.text()
    geom = dock.frame_view.geometry
    np.testing.assert_allclose([float(v) for v in _column(dock, "fs")], pk.fs, atol=0.005)
    np.testing.assert_allclose([float(v) for v in _column(dock, "ss")], pk.ss, atol=0.005)
    assert _column(dock, "panel") == [geom.panels[i].name for i in pk.panel]
    np.testing.assert_allclose([float(v) for v in _column(dock, "d_A")], 1.0 / pk.resolution, rtol=1e-3)
    np.testing.assert_allclose([float(v) for v in _column(dock, "pixel_snr")], pk.max_snr, atol=0.005)
    np.testing.assert_allclose([float(v) for v in _column(dock, "confidence")], pk.confidence, atol=0.0005)
    assert np.isfinite(pk.resolution).all() and np.isfinite(pk.confidence).all()

    # sort by intensity (a click on the header; a second click reverses)
    from peaknet_gui.peaks.table import COLUMNS

    header = dock.table.horizontalHeader()
    col = COLUMNS.index("intensity")
    x = header.sectionViewportPosition(col) + header.sectionSize(col) // 2
    qtbot.mouseClick(header.viewport(), Qt.LeftButton, pos=QtCore.QPoint(x, header.height() // 2))
    first = [float(v) for v in _column(dock, "intensity")]
    qtbot.mouseClick(header.viewport(), Qt.LeftButton, pos=QtCore.QPoint(x, header.height() // 2))
    second = [float(v) for v in _column(dock, "intensity")]
    assert sorted(first) in (first, second) and sorted(first, reverse=True) in (first, second) and first != second

    # a row click centres and zooms on its peak
    window.image_view.fit()
    row = 2
    peak = dock.model.peak_at(row)
    rect = dock.table.visualRect(dock.model.index(row, 1))
    qtbot.mouseClick(dock.table.viewport(), Qt.LeftButton, pos=rect.center())
    assert dock.selected_peak() == peak
    (x0, x1), (y0, y1) = window.image_view.view_box.viewRange()
    px, py = window.image_view.data_to_scene(pk.fs[peak], pk.ss[peak])
    assert abs((x0 + x1) / 2 - float(px)) < 2.0 and abs((y0 + y1) / 2 - float(py)) < 2.0
    assert min(x1 - x0, y1 - y0) <= 2 * 40 + 1 and dock.marker.isVisible()  # aspect locked: the other side is wider

    # a click on another peak's circle selects its row (the image does not move)
    other = dock.model.peak_at(0) if peak != dock.model.peak_at(0) else dock.model.peak_at(1)
    window.image_view.fit()
    qtbot.wait(50)
    ox, oy = window.image_view.data_to_scene(pk.fs[other], pk.ss[other])
    before = window.image_view.view_box.viewRange()
    _click(qtbot, window, float(ox), float(oy))
    qtbot.waitUntil(lambda: dock.selected_peak() == other, timeout=5000)
    assert window.image_view.view_box.viewRange() == before
    assert window.status_label.text().startswith(f"peak {other}: fs ")  # the peak described in the status bar

    # copy: the selected rows, or all rows
    dock.table.clearSelection()
    text = dock.copy()
    assert QtWidgets.QApplication.clipboard().text() == text
    lines = text.strip().split("\n")
    assert lines[0].split("\t") == list(COLUMNS) and len(lines) == n + 1
    dock.table.selectRow(dock.model.row_of(other))
    assert len(dock.copy().strip().split("\n")) == 2

    # CSV export, in the table's order, with the frame named in a comment
    with qtbot.waitSignal(dock.exported, timeout=30000):
        dock.export_csv(tmp_path / "peaks.csv")
    raw = (tmp_path / "peaks.csv").read_text()
    assert raw.startswith("# frame 0: ") and "run.cxi //0" in raw.splitlines()[0]
    rows = list(csv.reader(io.StringIO("".join(ln + "\n" for ln in raw.splitlines() if not ln.startswith("#")))))
    assert rows[0] == list(COLUMNS) and len(rows) == n + 1
    assert [r[COLUMNS.index("peak")] for r in rows[1:]] == [str(dock.model.peak_at(i)) for i in range(n)]
    (tmp_path / "afile").write_text("x")
    dock.export_csv(tmp_path / "afile" / "p.csv")
    qtbot.waitUntil(lambda: bool(recorder.errors), timeout=30000)
    assert "afile" in recorder.errors[-1][1]

    # the next frame brings its own peaks
    wait_complete(qtbot, window, 1, lambda: window.controller.go(1))
    qtbot.waitUntil(lambda: dock.index == 1 and dock.result is window.image_view.overlay.result, timeout=10000)
    assert dock.model.rowCount() == len(window.image_view.overlay.result.peaks)
    assert dock.label.text().startswith("frame 1:")


def test_table_core_formatting_and_order():
    from peaknet_gui.geometry import Geometry
    from peaknet_gui.peaks.peaklist import PeakList
    from peaknet_gui.peaks.table import COLUMNS, peak_table

    g = Geometry.single_panel((10, 10), 172e-6, 0.1, 5.0, 5.0, photon_energy_ev=12000.0, name="m0")
    pk = PeakList(fs=[1.0, 2.5, 3.0], ss=[4.0, 5.0, 6.0], intensity=[10.0, 30.0, 20.0], snr=[1, np.nan, 3],
                  panel=[0, 0, -1], resolution=[0.5, 0.0, np.nan], confidence=[np.nan, 0.9, 0.8], npix=[3, 4, 5])
    t = peak_table(pk, g)
    assert [t.text(0, c) for c in range(len(COLUMNS))] == ["0", "1.00", "4.00", "m0", "2.000", "10.0", "1.00", "", "", "3"]
    assert t.text(1, COLUMNS.index("d_A")) == "\u221e" and t.text(2, COLUMNS.index("panel")) == ""
    inten = COLUMNS.index("intensity")
    assert t.sort_order(inten).tolist() == [0, 2, 1] and t.sort_order(inten, True).tolist() == [1, 2, 0]
    snr = COLUMNS.index("snr")
    assert t.sort_order(snr).tolist() == [0, 2, 1] and t.sort_order(snr, True).tolist() == [2, 0, 1]  # unknown last
    d = COLUMNS.index("d_A")
    assert t.sort_order(d).tolist() == [0, 1, 2]
    assert peak_table(PeakList()).values.shape == (0, len(COLUMNS))
