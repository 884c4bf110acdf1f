"""Orderly teardown of the window's pyqtgraph scenes.

pyqtgraph items whose ``boundingRect`` asks their ViewBox for its size (``InfiniteLine``, the run
overview's cursors and threshold line, the calibration profile's ring markers) crash the process
when Qt destroys the ViewBox first and then asks the orphaned line for its bounds (seen as
``'NoneType' object has no attribute 'size'`` followed by a segmentation fault, at a random later
moment when the deferred deletes run).  Taking those items out of their scenes while every ViewBox is
still alive leaves Qt nothing to ask.
"""

from __future__ import annotations

import pyqtgraph as pg

from .qt import QtWidgets

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
