"""The mask editor dock (Tools > Mask editor...) on a small four-panel run (two panels turned):
drawing with the mouse, exact panel pixels, value / ring / panel masks, undo and redo, apply to
the analysis, save (.h5 + .geom, .npy) and load back, errors as dialogs.  Offscreen, pytest-qt,
the real analyzer and model."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from _gui_support import wait_complete  # noqa: E402
from test_masks_editor import POLY, four_panels, winding_inside  # noqa: E402

pytestmark = pytest.mark.gui

N = 64  # panel size: the slab is 128 x 128


@pytest.fixture
def run_path(tmp_path):
    """Three frames of Poisson background with bright spots, a .geom with four panels."""
    from peaknet_gui.geometry.crystfel_geom import write_geom

    geom = four_panels(N)
    geom.globals.update({"data": "/entry_1/data_1/data", "dim0": "%", "dim1": "ss", "dim2": "fs"})
    rng = np.random.default_rng(5)
    shape = geom.data_shape
    data = rng.poisson(10.0, (3,) + shape).astype(np.float32)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    for k in range(3):
        for cy, cx in rng.uniform(6, shape[0] - 6, (20, 2)):
            data[k] += 600.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0)
    data[:, 5, 7] = 60000.0  # a hot pixel
    path = tmp_path / "run.cxi"
    with h5py.File(path, "w") as f:
        f["/entry_1/data_1/data"] = data
    write_geom(geom, tmp_path / "run.geom")
    return path


def _open(qtbot, window, run_path, index=0):
    wait_complete(qtbot, window, index, lambda: window.open_paths([run_path], geometry=str(run_path.with_suffix(".geom")),
                                                                 event=index), timeout=120000)
    dock = window.docks["mask_editor"]
    window.actions_by_name["mask_editor"].trigger()
    assert dock.isVisible() and dock.edit is not None and dock.edit.shape == (2 * N, 2 * N)
    _wait_layout_settled(qtbot, window)
    return dock


def _wait_layout_settled(qtbot, window):
    """The dock's appearance widens the left dock area and the image view re-fits: wait until the
    view's range holds still, so clicks are placed with the final mapping."""
    seen = []

    def still():
        qtbot.wait(60)
        seen.append((window.image_view.graphics.size(), [tuple(r) for r in window.image_view.view_box.viewRange()]))
        return len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]

    qtbot.waitUntil(still, timeout=5000)


def _drag(qtbot, window, x0, y0, x1, y1, steps=6):
    """A real left-button drag on the image from scene (x0, y0) to (x1, y1)."""
    from peaknet_gui.gui.qt import QtCore, QtGui, QtWidgets, Qt

    iv = window.image_view
    vp = iv.graphics.viewport()

    def at(x, y):
        p = iv.view_box.mapViewToScene(QtCore.QPointF(x, y))
        return iv.graphics.mapFromScene(p)

    def send(kind, pos, button, buttons):
        ev = QtGui.QMouseEvent(kind, QtCore.QPointF(pos), button, buttons, Qt.NoModifier)
        QtWidgets.QApplication.sendEvent(vp, ev)

    send(QtCore.QEvent.MouseMove, at(x0, y0), Qt.NoButton, Qt.NoButton)  # hover first: the tool claims the drag
    send(QtCore.QEvent.MouseButtonPress, at(x0, y0), Qt.LeftButton, Qt.LeftButton)
    for t in np.linspace(0, 1, steps)[1:]:
        qtbot.wait(40)  # pyqtgraph rate-limits mouse moves
        send(QtCore.QEvent.MouseMove, at(x0 + t * (x1 - x0), y0 + t * (y1 - y0)), Qt.NoButton, Qt.LeftButton)
    qtbot.wait(40)
    send(QtCore.QEvent.MouseButtonRelease, at(x1, y1), Qt.LeftButton, Qt.NoButton)


def _click(qtbot, window, x, y):
    from peaknet_gui.gui.qt import QtCore, Qt

    iv = window.image_view
    p = iv.graphics.mapFromScene(iv.view_box.mapViewToScene(QtCore.QPointF(x, y)))
    qtbot.mouseMove(iv.graphics.viewport(), p)
    qtbot.wait(30)
    qtbot.mouseClick(iv.graphics.viewport(), Qt.LeftButton, pos=p)


def test_drawn_shapes_mask_exactly_the_panel_pixels_inside(qtbot, window, run_path, recorder):
    from peaknet_gui.geometry import Assembler
    from peaknet_gui.masks.editor_ops import PixelCentres, Polygon, Rect

    dock = _open(qtbot, window, run_path)
    geom = dock.view.geometry
    asm = Assembler(geom, geom.data_shape)
    assert dock.view.mapper.shape == asm.shape  # the image is assembled (gaps between the panels)
    # the polygon tool: click the vertices, click the first one again to close
    poly = [(1.3 * x, 1.3 * y) for x, y in POLY]  # reaches all four panels of this slab
    shapes = []
    dock.tool_item.shapeDrawn.connect(lambda shape, masked: shapes.append(shape))
    dock.set_tool("polygon")
    for x, y in poly:
        _click(qtbot, window, x, y)
    _click(qtbot, window, *poly[0])
    qtbot.waitUntil(lambda: dock.edit.n_masked > 0, timeout=5000)
    (drawn,) = shapes
    assert isinstance(drawn, Polygon) and len(drawn.points) == len(poly)
    np.testing.assert_allclose(drawn.points, poly, atol=1.0)  # the mouse lands within a display pixel
    ss, fs = np.mgrid[0:2 * N, 0:2 * N]
    row, col = asm.to_display(fs.astype(float), ss.astype(float))
    # exactly the data pixels whose centres, on the assembled image, lie inside the drawn polygon
    expect = winding_inside(col + 0.5, row + 0.5, [tuple(p) for p in drawn.points])
    got = dock.edit.mask.copy()
    assert np.array_equal(got, expect)
    assert all(got[p.slices()].any() for p in geom.panels)  # every panel, turned ones too
    # the orange overlay shows exactly those pixels on the assembled image
    assert dock.overlay.n_shown == int(asm.assemble(got).sum())
    # a polygon closed with Enter (Backspace dropped a stray vertex)
    from peaknet_gui.gui.qt import Qt

    vp = window.image_view.graphics.viewport()
    for x, y in ((100.0, 100.0), (120.0, 100.0), (5.0, 5.0), (110.0, 120.0)):
        _click(qtbot, window, x, y)
    qtbot.keyClick(vp, Qt.Key_Backspace)  # drops (110, 120)
    assert len(dock.tool_item.vertices) == 3
    qtbot.keyClick(vp, Qt.Key_Backspace)  # drops (5, 5)
    _click(qtbot, window, 110.0, 120.0)
    qtbot.keyClick(vp, Qt.Key_Return)
    assert len(shapes) == 2 and len(shapes[1].points) == 3 and not dock.tool_item.vertices
    dock.undo()
    # a rectangle dragged with the mouse (unmask mode) removes the pixels in it
    dock.edit.clear()
    dock.set_tool("rect")
    _drag(qtbot, window, 20.0, 20.0, 110.0, 50.0)
    qtbot.waitUntil(lambda: dock.edit.n_masked > 0, timeout=5000)
    rect = dock.edit.mask.copy()
    want = PixelCentres(geom.data_shape, asm).select(Rect(20.0, 20.0, 110.0, 50.0))
    assert abs(int(rect.sum()) - int(want.sum())) <= 0.05 * want.sum() and (rect & want).sum() >= 0.95 * want.sum()
    # brush, then the eraser along the same path (outside the rectangle)
    dock.radius.setValue(3.0)
    dock.set_tool("brush")
    _drag(qtbot, window, 15.0, 100.0, 70.0, 104.0)
    qtbot.waitUntil(lambda: dock.edit.n_masked > rect.sum(), timeout=5000)
    brushed = int(dock.edit.n_masked - rect.sum())
    assert 55 * 5 <= brushed <= 60 * 8  # about length x width
    dock.set_tool("eraser")
    _drag(qtbot, window, 15.0, 100.0, 70.0, 104.0)
    qtbot.waitUntil(lambda: dock.edit.n_masked < rect.sum() + brushed, timeout=5000)
    assert (dock.edit.mask & ~rect).sum() <= 0.05 * brushed and (dock.edit.mask & rect).sum() == rect.sum()
    dock.mode_unmask.setChecked(True)
    dock.set_tool("circle")
    _drag(qtbot, window, 60.0, 35.0, 70.0, 35.0)
    qtbot.waitUntil(lambda: dock.edit.n_masked < rect.sum(), timeout=5000)
    # undo / redo from the keyboard
    from peaknet_gui.gui.qt import Qt

    n_after = dock.edit.n_masked
    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)
    assert dock.edit.n_masked == rect.sum()
    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert dock.edit.n_masked == n_after
    # the view did not pan while drawing
    assert not recorder.errors


def test_levels_ring_panel_apply_and_files(qtbot, window, run_path, recorder, tmp_path):
    from peaknet_gui.masks.editor_io import load_user_mask

    dock = _open(qtbot, window, run_path)
    # outside the levels: the hot pixel (60000) lies above any sane upper level
    window.image_view.set_levels(0.0, 3.0)  # log scale: 1 .. 1000 counts
    assert dock.view.log_scale
    n = dock.mask_outside_levels()
    assert n >= 1 and dock.edit.mask[5, 7]
    data = dock.view.frame.data
    assert np.array_equal(dock.edit.mask, np.log10(np.maximum(data, 1)) > 3.0)
    dock.undo()
    # a resolution ring
    dock.d_min.setValue(5.0)
    dock.d_max.setValue(8.0)
    with qtbot.waitSignal(dock.maskChanged, timeout=30000):
        dock.mask_resolution()  # the d-spacing map is made in the file thread
    n = dock.edit.n_masked
    d = 1.0 / dock.view.geometry.resolution(*np.mgrid[0:2 * N, 0:2 * N][::-1].astype(float))
    assert n == int(((d >= 5.0) & (d <= 8.0)).sum()) > 0
    dock.clear()
    # a whole panel, from the combo box and by clicking it
    dock.panel_combo.setCurrentIndex(2)
    assert dock.mask_chosen_panel() == N * N and dock.edit.mask[N:, :N].all()
    dock.set_tool("panel")
    x, y = window.image_view.data_to_scene(100.0, 100.0)  # a pixel of q3
    _click(qtbot, window, float(x), float(y))
    qtbot.waitUntil(lambda: dock.edit.n_masked == 2 * N * N, timeout=5000)
    assert dock.edit.mask[N:, N:].all()
    dock.set_tool(None)

    # apply: the analysis masks those panels -> no peak on them, static mask in the overlay
    with qtbot.waitSignal(window.controller.frameComplete, timeout=60000):
        dock.apply()
    qtbot.waitUntil(lambda: window.image_view.overlay is not None and window.worker.analyzer.static_mask is not None,
                    timeout=60000)
    pk = window.image_view.overlay.result.peaks
    assert len(pk) and not (pk.ss >= N).any()
    assert window.worker.export_context()["static_mask"][N:, :].all()
    assert "in the analysis" in dock.count_label.text()

    # save as .h5 (+ .geom) and as .npy, load back
    with qtbot.waitSignal(dock.saved, timeout=30000) as saved:
        dock.save(tmp_path / "drawn.h5")
    res = saved.args[0]
    assert res.geom_path.is_file() and "mask_bad = 0x1" in res.geom_path.read_text()
    assert np.array_equal(load_user_mask(res.path, dock.edit.shape), dock.edit.mask)
    with qtbot.waitSignal(dock.saved, timeout=30000):
        dock.save(tmp_path / "drawn.npy")
    assert np.array_equal(np.load(tmp_path / "drawn.npy") != 0, dock.edit.mask)
    expect = dock.edit.mask.copy()
    dock.clear()
    with qtbot.waitSignal(dock.loaded, timeout=30000):
        dock.load(str(tmp_path / "drawn.h5"))
    assert np.array_equal(dock.edit.mask, expect)
    dock.undo()  # loading is an edit too
    assert dock.edit.n_masked == 0
    assert not recorder.errors

    # errors are dialogs naming the file
    (tmp_path / "wrong.npy").write_bytes(b"not numpy")
    dock.load(str(tmp_path / "wrong.npy"))
    np.save(tmp_path / "small.npy", np.zeros((3, 3), np.uint8))
    dock.load(str(tmp_path / "small.npy"))
    (tmp_path / "afile").write_text("x")
    dock.save(str(tmp_path / "afile" / "m.h5"))
    qtbot.waitUntil(lambda: len(recorder.errors) >= 3, timeout=30000)
    texts = [t for _, t in recorder.errors]
    assert any("wrong.npy" in t for t in texts) and any("small.npy" in t and "shape" in t for t in texts)
    assert any("afile" in t for t in texts)
