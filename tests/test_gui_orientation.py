"""View > CrystFEL orientation: the detector drawn as CrystFEL's viewer draws it (lab +x to the
right, lab +y up: ``crystfelimageview.c`` scales by (zoom, -zoom) from the lab frame), or with
the first data row at the top (lab +y down, the default).  Rendered pixels are read back; the
hover read-out and ring labels follow; the choice is a persisted display setting."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from _gui_support import make_window  # noqa: E402
from test_gui_render import _grab  # noqa: E402
from test_masks_editor import four_panels  # noqa: E402

pytestmark = pytest.mark.gui

N = 24  # panel size (pixels)
# (panel index, local fs, local ss) of the bright 3 x 3 markers: one per panel, two panels turned
MARKERS = [(0, 6, 15), (1, 17, 5), (2, 4, 9), (3, 12, 18)]


def _geometry():
    """A 2N x 2N slab in four N x N panels around the beam; q2 turned by 90, q3 by 180 degrees."""
    return four_panels(N, clen=0.02)


def _lab(p, fs, ss):
    """Lab (x, y) in pixels of the centre of local pixel (fs, ss): CrystFEL's corner + directions."""
    return (p.corner_x + (fs + 0.5) * p.fs[0] + (ss + 0.5) * p.ss[0],
            p.corner_y + (fs + 0.5) * p.fs[1] + (ss + 0.5) * p.ss[1])


def _frame_view():
    from peaknet_gui.frame import EventId, Frame, FrameMetadata
    from peaknet_gui.gui.display import build_frame_view

    g = _geometry()
    data = np.zeros(g.data_shape, np.float32)
    for i, fs, ss in MARKERS:
        p = g.panels[i]
        data[p.min_ss + ss - 1:p.min_ss + ss + 2, p.min_fs + fs - 1:p.min_fs + fs + 2] = 100.0
    frame = Frame(data, EventId("run.h5", 0), 0, FrameMetadata())
    return g, build_frame_view(0, frame, g, log_scale=False, levels=(0.0, 100.0))


def _blobs(qtbot, view):
    """Centroids (x, y) of the white blobs in the rendered viewport, in viewport pixels."""
    from scipy import ndimage

    white = _grab(qtbot, view).min(axis=2) > 200
    box = view.graphics.mapFromScene(view.view_box.sceneBoundingRect()).boundingRect()  # the image, not the histogram
    inside = np.zeros_like(white)
    inside[max(box.top(), 0):box.bottom(), max(box.left(), 0):box.right()] = True
    white &= inside
    lab, n = ndimage.label(white)
    return np.array(ndimage.center_of_mass(white, lab, range(1, n + 1)))[:, ::-1] if n else np.zeros((0, 2))


def _to_viewport(view, x, y):
    from peaknet_gui.gui.qt import QtCore

    p = view.graphics.mapFromScene(view.view_box.mapViewToScene(QtCore.QPointF(float(x), float(y))))
    return np.array([p.x(), p.y()])


@pytest.mark.parametrize("orientation,y_sign", [("data", 1.0), ("crystfel", -1.0)])
def test_markers_are_drawn_where_the_orientation_puts_the_lab_frame(qtbot, orientation, y_sign):
    """Each marker lies at beam + zoom * (lab x, y_sign * lab y) on screen: CrystFEL's viewer
    has y_sign = -1 (lab +y up), the data orientation +1; x is never mirrored.  The hover
    read-out at a marker names its panel and pixel; ring labels stay upper right of the beam."""
    from peaknet_gui.gui.image_view import DetectorImageView
    from peaknet_gui.gui.qt import QtCore
    from peaknet_gui.gui.state import DisplaySettings

    view = DetectorImageView(DisplaySettings(orientation=orientation, show_beam=False, show_rings=False))
    qtbot.addWidget(view)
    view.resize(520, 560)
    view.show()
    qtbot.waitExposed(view)
    g, fv = _frame_view()
    view.show_frame(fv)
    view.fit()
    assert view.view_box.yInverted() == (orientation == "data")
    zoom = 1.0 / view.view_box.viewPixelSize()[0]
    beam = _to_viewport(view, *fv.beam)
    found = _blobs(qtbot, view)
    assert len(found) == len(MARKERS), found
    for i, fs, ss in MARKERS:
        x, y = _lab(g.panels[i], fs, ss)
        want = beam + zoom * np.array([x, y_sign * y])
        d = np.hypot(*(found - want).T)
        assert d.min() < max(2.0, 0.3 * zoom), f"marker on {g.panels[i].name}: expected at {want}, blobs at {found}"
        # the read-out under the drawn marker names the marker's pixel
        k = int(np.argmin(d))
        scene = view.graphics.mapToScene(QtCore.QPoint(int(round(found[k][0])), int(round(found[k][1]))))
        p = view.view_box.mapSceneToView(scene)
        r = view.readout_at(p.x(), p.y())
        p = g.panels[i]
        assert r is not None and (r.panel, r.fs, r.ss) == (p.name, p.min_fs + fs, p.min_ss + ss), r
    # resolution-ring labels: upper right of the beam on screen in either orientation
    assert fv.rings, "the test geometry should show rings"
    import pyqtgraph as pg

    labels = [it for it in view.rings_item._items if isinstance(it, pg.TextItem)]
    assert labels
    for it in labels:
        sx, sy = _to_viewport(view, it.pos().x(), it.pos().y())
        assert sx > beam[0] and sy < beam[1]


def test_view_menu_switches_and_the_choice_persists(qtbot, tmp_path):
    """View > CrystFEL orientation flips the view at once, is saved with the display settings and
    restored by the next window (no model needed: no run is opened)."""
    from peaknet_gui.gui.settings import AppSettings

    w = make_window(qtbot, tmp_path, factory=False)
    a = w.actions_by_name["crystfel_orientation"]
    assert not a.isChecked() and w.image_view.view_box.yInverted()
    a.trigger()
    assert w.state.display.orientation == "crystfel" and not w.image_view.view_box.yInverted()
    w.close()
    assert AppSettings(str(tmp_path / "settings.ini")).display().orientation == "crystfel"
    w2 = make_window(qtbot, tmp_path, factory=False)
    try:
        assert w2.actions_by_name["crystfel_orientation"].isChecked()
        assert not w2.image_view.view_box.yInverted()
        w2.set_crystfel_orientation(False)
        assert w2.image_view.view_box.yInverted() and not w2.actions_by_name["crystfel_orientation"].isChecked()
    finally:
        w2.close()
