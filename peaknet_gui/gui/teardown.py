"""Orderly teardown of the window's pyqtgraph scenes.

pyqtgraph items whose ``boundingRect`` asks their ViewBox for its size (``InfiniteLine``, the run
overview's cursors and threshold line, the calibration profile's ring markers) crash the process
when Qt destroys the ViewBox first and then asks the orphaned line for its bounds (seen as
``'NoneType' object has no attribute 'size'`` followed by a segmentation fault, at a random later
moment when the deferred deletes run).  Taking those items out of their scenes while every ViewBox is
still alive leaves Qt nothing to ask.

Slots that are lambdas (``readoutChanged`` -> the status bar's label, a status timer, docks'
hooks on the controller) are not disconnected when their window is destroyed, unlike bound
methods: a signal emitted while Qt tears the widgets down (a leave event of the image, a timer)
runs Python code on half-deleted widgets -- a segmentation fault seen in the test suite
(``main_window.py ... in <lambda>`` from a later test's event processing).  A closed window's
objects are therefore silenced (:func:`silence`).
"""

from __future__ import annotations

import pyqtgraph as pg

from .qt import QtCore, QtWidgets

VIEW_DEPENDENT = (pg.InfiniteLine, pg.LinearRegionItem)


def release_view_dependent_items(window: QtWidgets.QWidget) -> int:
    """Remove every view-dependent item from the scenes of ``window``'s graphics views; returns how many."""
    removed = 0
    for view in window.findChildren(pg.GraphicsView):
        scene = view.scene()
        if scene is None:
            continue
        for item in list(scene.items()):
            if not isinstance(item, VIEW_DEPENDENT):
                continue
            vb = item.getViewBox()
            if isinstance(vb, pg.ViewBox):
                vb.removeItem(item)
            if item.scene() is not None:
                item.scene().removeItem(item)
            removed += 1
    return removed


def silence(window: QtWidgets.QWidget) -> int:
    """Block the signals of ``window``'s QObjects and of its worker and controller (closing: no
    slot may run on widgets being destroyed); returns how many objects were silenced."""
    objs = [window] + window.findChildren(QtCore.QObject)
    for name in ("worker", "controller"):
        o = getattr(window, name, None)
        if isinstance(o, QtCore.QObject) and o not in objs:
            objs.append(o)
    for o in objs:
        o.blockSignals(True)
    return len(objs)
