"""Menus, tool bar and keyboard shortcuts of the main window."""

from __future__ import annotations

from .qt import QtGui, QtWidgets


def _action(window, text: str, slot, shortcut=None, tip: str = "", checkable: bool = False, checked: bool = False):
    a = QtWidgets.QAction(text, window)
    if shortcut:
        if isinstance(shortcut, (list, tuple)):
            a.setShortcuts([QtGui.QKeySequence(s) for s in shortcut])
        else:
            a.setShortcut(QtGui.QKeySequence(shortcut))
    if tip:
        a.setStatusTip(tip)
        a.setToolTip(tip)
    if checkable:
        a.setCheckable(True)
        a.setChecked(checked)
        a.toggled.connect(slot)
    else:
        a.triggered.connect(lambda *_: slot())
    window.addAction(a)  # shortcuts work even when the menu bar is hidden
    return a


def build_actions(w) -> dict:
    """Create the window's actions and menus; returns them by name."""
    c = w.controller
    d = w.state.display
    A = {}
    A["open"] = _action(w, "&Open run\u2026", w.open_run_dialog, "Ctrl+O", "Open image files of a run (HDF5/CXI, NeXus, CBF, ...)")
    A["open_dir"] = _action(w, "Open &directory\u2026", w.open_directory_dialog, "Ctrl+Shift+O", "Open every image file in a directory")
    A["open_glob"] = _action(w, "Open by &pattern\u2026", w.open_pattern_dialog, None, "Open the files a glob pattern matches")
    A["open_demo"] = _action(w, "Open the d&emo run", w.open_demo, None, "The built-in simulated run")
    A["geometry"] = _action(w, "Open &geometry\u2026", w.open_geometry_dialog, "Ctrl+G", "Use a CrystFEL .geom file")
    A["geometry_reset"] = _action(w, "Geometry from the &files", lambda: w.worker.set_geometry(None), None,
                                  "Use the geometry the run's files imply")
    A["mask_file"] = _action(w, "Load static &mask\u2026", w.open_mask_file_dialog, None, "A static mask file (HDF5, .npy, EDF)")
    A["weights"] = _action(w, "Load model &weights\u2026", w.open_weights_dialog, None, "Other PeakNet weights")
    A["export"] = _action(w, "&Export peaks\u2026", w.export_dialog, "Ctrl+E", "Write .stream, .lst, CXI for CrystFEL")
    A["export_mask"] = _action(w, "Export auto-&mask for CrystFEL\u2026", w.export_mask_dialog, "Ctrl+Shift+M",
                               "This frame's auto-mask as mask .h5 plus a .geom with the mask lines")
    A["screenshot"] = _action(w, "Save &screenshot\u2026", w.screenshot_dialog, "Ctrl+Shift+S", "Save the window as PNG")
    A["quit"] = _action(w, "&Quit", w.close, "Ctrl+Q")

    A["prev"] = _action(w, "&Previous frame", lambda: c.step(-1), "Left")
    A["next"] = _action(w, "&Next frame", lambda: c.step(1), "Right")
    A["first"] = _action(w, "&First frame", c.first, "Home")
    A["last"] = _action(w, "&Last frame", c.last, "End")
    A["next_hit"] = _action(w, "Next &hit", lambda: c.goto_hit(1), "N")
    A["prev_hit"] = _action(w, "Previous h&it", lambda: c.goto_hit(-1), "P")
    A["play"] = _action(w, "P&lay / pause", c.toggle_play, "Space")
    A["follow"] = _action(w, "F&ollow live", c.set_follow, "Ctrl+L", "Show and analyse frames as they are written",
                          checkable=True)
    A["cancel"] = _action(w, "&Stop", c.cancel, "Esc", "Stop playing and searching")

    A["peaks"] = _action(w, "Show &peaks", w.set_show_peaks, "K", checkable=True, checked=d.show_peaks)
    A["mask"] = _action(w, "Show auto-&mask", w.set_show_mask, "M", checkable=True, checked=d.show_automask)
    A["static"] = _action(w, "Show &static mask", w.set_show_static, "S", checkable=True, checked=d.show_static)
    A["rings"] = _action(w, "Show resolution &rings", w.set_show_rings, "R", checkable=True, checked=d.show_rings)
    A["beam"] = _action(w, "Show &beam centre", w.set_show_beam, "B", checkable=True, checked=d.show_beam)
    A["log"] = _action(w, "&Log scale", w.set_log_scale, "L", checkable=True, checked=d.log_scale)
    A["fit"] = _action(w, "&Fit detector", w.image_view.fit, "F", "Show the whole detector")
    A["crystfel_orientation"] = _action(w, "&CrystFEL orientation (lab +y up)", w.set_crystfel_orientation, None,
                                        "Draw the detector as CrystFEL's viewer does: lab +x right, +y up "
                                        "(off: the first data row at the top)", checkable=True,
                                        checked=d.orientation == "crystfel")
    A["about"] = _action(w, "&About", w.about)
    A["keys"] = _action(w, "&Keyboard shortcuts", w.show_shortcuts, "F1")

    mb = w.menuBar()
    m = mb.addMenu("&File")
    for k in ("open", "open_dir", "open_glob", "open_demo"):
        m.addAction(A[k])
    w.recent_menu = m.addMenu("&Recent runs")
    m.addSeparator()
    for k in ("geometry", "geometry_reset", "mask_file", "weights"):
        m.addAction(A[k])
    m.addSeparator()
    for k in ("export", "export_mask", "screenshot"):
        m.addAction(A[k])
    m.addSeparator()
    m.addAction(A["quit"])
    m = mb.addMenu("&Navigate")
    for k in ("prev", "next", "first", "last", "prev_hit", "next_hit"):
        m.addAction(A[k])
    m.addSeparator()
    for k in ("play", "follow", "cancel"):
        m.addAction(A[k])
    m = mb.addMenu("&View")
    for k in ("peaks", "mask", "static", "rings", "beam"):
        m.addAction(A[k])
    m.addSeparator()
    m.addAction(A["log"])
    m.addAction(A["fit"])
    m.addAction(A["crystfel_orientation"])
    m.addSeparator()
    w.docks_menu = m.addMenu("&Docks")
    w.tools_menu = mb.addMenu("&Tools")
    w.tools_menu.menuAction().setVisible(False)  # shown when an add-on puts actions in it
    m = mb.addMenu("&Help")
    m.addAction(A["keys"])
    m.addAction(A["about"])

    tb = w.addToolBar("Main")
    tb.setObjectName("toolbar_main")
    tb.setMovable(False)
    for k in ("open", "geometry", "export", "screenshot"):
        tb.addAction(A[k])
    tb.addSeparator()
    for k in ("peaks", "mask", "rings"):
        tb.addAction(A[k])
    return A


SHORTCUTS = (
    ("\u2190 / \u2192", "previous / next frame"),
    ("Home / End", "first / last frame"),
    ("P / N", "previous / next hit (searches when none is known)"),
    ("Space", "play / pause"),
    ("Esc", "stop playing and searching"),
    ("Ctrl+L", "follow the run live"),
    ("K / M / S", "show peaks / auto-mask / static mask"),
    ("R / B", "resolution rings / beam centre"),
    ("L / F", "log scale / fit the detector"),
    ("Ctrl+O / Ctrl+Shift+O", "open run / directory"),
    ("Ctrl+G", "open geometry"),
    ("Ctrl+E / Ctrl+Shift+M", "export peaks / export mask"),
    ("Ctrl+Shift+S", "screenshot"),
    ("Ctrl+Shift+C", "calibration (ring fit on a calibrant frame)"),
    ("Ctrl+Shift+D", "mask editor (draw a static mask)"),
    ("Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y", "undo / redo a mask edit (mask editor shown)"),
    ("Ctrl+Shift+L", "label curation (correct labels, fine-tune the model)"),
    ("Ctrl+Shift+T", "peak table"),
    ("F1", "this list"),
    ("Ctrl+Q", "quit"),
    ("wheel / drag / double-click", "zoom / pan / fit"),
)
