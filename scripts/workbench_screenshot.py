"""Screenshot of the window as a workbench: the mask editor with a drawn polygon, a masked panel and
an ice ring applied to the analysis, the peak table sorted by intensity with its top peak
selected, and the label curation dock (tabbed with Frame info) with the model's least confident
peak removed and a missed spot previewed for adding.  Offscreen unless $QT_QPA_PLATFORM says
otherwise.

    python scripts/workbench_screenshot.py OUT.png [RUN --geom G] [--event N] [--size 1600x1000]
        [--panel K] [--no-curation]

Without RUN: the demo run.  Prints what it did and how long each step took.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("run", nargs="*")
    ap.add_argument("--geom")
    ap.add_argument("--event", type=int, default=2)
    ap.add_argument("--size", default="1600x1000")
    ap.add_argument("--panel", type=int, default=None, help="panel index to mask whole (default: none)")
    ap.add_argument("--no-curation", action="store_true", help="leave the label curation dock closed")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from peaknet_gui.gui.qt import QtCore, ensure_app

    app = ensure_app()
    from peaknet_gui.gui.main_window import MainWindow
    from peaknet_gui.gui.settings import AppSettings
    from peaknet_gui.masks.editor_ops import Polygon

    w_, h_ = (int(v) for v in args.size.lower().split("x"))
    settings = AppSettings(os.path.join(os.path.dirname(os.path.abspath(args.out)), ".workbench_settings.ini"))
    w = MainWindow(settings, restore_layout=False)
    w.resize(w_, h_)
    w.show()
    done = {"i": None}
    w.controller.frameComplete.connect(lambda i: done.__setitem__("i", i))

    def wait(cond, timeout=300.0):
        t0 = time.time()
        while not cond() and time.time() - t0 < timeout:
            app.processEvents()
            time.sleep(0.02)
        return cond()

    t0 = time.time()
    if args.run:
        w.open_paths(args.run, geometry=args.geom, event=args.event)
    else:
        w.open_demo(event=args.event)
    if not wait(lambda: done["i"] is not None):
        print("the frame was not analysed in time", file=sys.stderr)
        return 1
    print(f"first frame analysed after {time.time() - t0:.1f} s")
    dock = w.docks["mask_editor"]
    w.actions_by_name["mask_editor"].trigger()
    view = dock.view
    H, W = view.mapper.shape
    t = time.time()
    dock.centres()
    print(f"display {W}x{H}: pixel map {1e3 * (time.time() - t):.0f} ms")
    t = time.time()
    dock._shape_drawn(Polygon(((0.04 * W, 0.62 * H), (0.28 * W, 0.56 * H), (0.33 * W, 0.95 * H), (0.08 * W, 0.9 * H))), True)
    print(f"polygon: {dock.edit.n_masked:,} pixels in {1e3 * (time.time() - t):.0f} ms")
    if args.panel is not None:
        dock.mask_panel(args.panel)
    if view.geometry is not None and view.wavelength_a:
        n0 = dock.edit.n_masked
        dock.d_min.setValue(3.64)
        dock.d_max.setValue(3.70)
        t = time.time()
        dock.mask_resolution()
        wait(lambda: dock.edit.n_masked != n0, 60)
        print(f"ice ring 3.64-3.70 A: {dock.edit.n_masked - n0:,} pixels in {time.time() - t:.1f} s")
    done["i"] = None
    t = time.time()
    dock.apply()
    wait(lambda: done["i"] is not None)
    print(f"applied: frame analysed again in {time.time() - t:.1f} s")
    table = w.docks["peak_table"]
    if table.model.rowCount():
        col = 5  # intensity
        table.table.sortByColumn(col, QtCore.Qt.DescendingOrder)
        table.select_peak(table.model.peak_at(0), centre=False)
        print(f"{table.model.rowCount()} peaks; brightest: {table.describe(table.model.peak_at(0))}")
    if not args.no_curation:
        curate(w, wait)
    for _ in range(40):
        app.processEvents()
        time.sleep(0.02)
    w.grab().save(args.out)
    print(f"saved {args.out}")
    w.close()
    return 0


def curate(w, wait) -> None:
    """Label curation dock: labels of the shown frame from the prediction, the least confident
    peak removed, the brightest unlabelled spot away from the peaks previewed (yellow) for adding."""
    import numpy as np

    from peaknet_gui.gui.qt import QtCore

    dock = w.docks["curation"]
    w.tabifyDockWidget(w.docks["info"], dock)
    w.actions_by_name["curation"].trigger()
    w.resizeDocks([dock], [440], QtCore.Qt.Horizontal)  # its tool buttons side by side
    t = time.time()
    if not wait(lambda: dock.editor is not None, 120):
        print("curation: the labels were not prepared in time", file=sys.stderr)
        return
    print(f"curation: labels of the frame prepared in {time.time() - t:.1f} s")
    ed = dock.editor
    peaks = w.image_view.overlay.result.peaks
    if len(peaks):
        conf = np.nan_to_num(np.asarray(peaks.confidence, float), nan=2.0)
        geom = w.image_view.view.geometry
        if geom is not None and len(geom.panels) > 1:  # a peak inside its panel, not on an edge
            for j, (f, s_, pn) in enumerate(zip(peaks.fs, peaks.ss, peaks.panel)):
                p = geom.panels[int(pn)] if 0 <= int(pn) < len(geom.panels) else None
                if p is None or not (p.min_fs + 3 <= f <= p.max_fs - 3 and p.min_ss + 3 <= s_ <= p.max_ss - 3):
                    conf[j] = 3.0
        k = int(np.argmin(conf))
        dock.set_tool("remove")
        dock._clicked(*(float(np.asarray(v)) for v in w.image_view.data_to_scene(peaks.fs[k], peaks.ss[k])))
        print(f"curation: removed peak {k} (confidence {conf[k]:.2f}) at fs {peaks.fs[k]:.1f}, ss {peaks.ss[k]:.1f}")
    data = np.asarray(ed.data, float)
    free = ed.labels == 0
    from scipy import ndimage

    near = ndimage.binary_dilation(ed.labels == 1, iterations=6)
    cand = np.where(free & ~near, data, -np.inf)
    dock.set_tool("add")
    for _ in range(20):  # the brightest candidates until one is a spot above the local threshold
        ss, fs = np.unravel_index(int(np.argmax(cand)), cand.shape)
        if not np.isfinite(cand[ss, fs]):
            break
        pos = dock._to_data(*(float(np.asarray(v)) for v in w.image_view.data_to_scene(fs, ss)))
        cand[max(ss - 3, 0):ss + 4, max(fs - 3, 0):fs + 4] = -np.inf
        if pos is not None and 1 < dock.preview_spot(*pos) <= 30:
            print(f"curation: previewed a spot of {int(dock.preview.sum())} pixels at fs {fs}, ss {ss}")
            break
    else:
        dock.reject_preview()
    dock.raise_()


if __name__ == "__main__":
    sys.exit(main())
