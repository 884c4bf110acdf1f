"""The mask editor dock (Tools > Mask editor...): draw a static mask on the detector image.

Tools (:mod:`.mask_tools`): rectangle, circle, polygon, brush, eraser, whole panel; buttons mask
the pixels outside the histogram's levels, a resolution annulus (d-spacing range, needs the
geometry) or a chosen panel.  Every edit can be undone (Ctrl+Z) and redone (Ctrl+Shift+Z).  The
mask being edited is drawn in orange, beside the static mask (blue) and the auto-mask (magenta).

The pixels are computed by the Qt-free core (:mod:`peaknet_gui.masks.editor_ops`) on the data
array, panel by panel, whatever the display layout.  **Apply to analysis** hands the mask to the
worker (:meth:`AnalysisWorker.set_user_mask`): it joins the run's static mask in the analysis,
the overlays and the exports (and stays for later runs of the same detector shape).  **Save**
writes ``NAME.h5`` + ``NAME.geom`` for CrystFEL or ``NAME.npy``
(:mod:`peaknet_gui.masks.editor_io`), **Load** reads a mask file back; both run in the window's
file thread (:mod:`.file_jobs`) and report problems as dialogs naming the file.
"""

from __future__ import annotations

import math
import os
from typing import Optional

import numpy as np

from ..errors import GeometryError
from ..masks.editor_ops import (EditableMask, PixelCentres, d_spacing_map, panel_pixels, resolution_pixels,
                                 value_range_pixels)
from . import dialogs
from .file_jobs import file_jobs
from .mask_editor_ui import LOAD_FILTER, MASK_FILTER, setup_ui
from .mask_tools import EditedMaskOverlay, MaskToolItem
from .qt import Qt, QtGui, QtWidgets, Signal

HC_EV_A = 12398.419843320026


class MaskEditorDock(QtWidgets.QDockWidget):
    """See the module docstring.  Signals: ``maskChanged(n_masked)`` after every edit,
    ``saved(SavedMask)``, ``loaded(path)``, ``applied(n_masked)``."""

    maskChanged = Signal(int)
    saved = Signal(object)
    loaded = Signal(str)
    applied = Signal(int)

    def __init__(self, window):
        super().__init__("Mask editor", window)
        self.setObjectName("dock_mask_editor")
        self.window = window
        self.image_view = window.image_view
        self.worker = window.worker
        self.view = None  # the FrameView on screen
        self.edit: Optional[EditableMask] = None
        self.applied_revision: Optional[int] = None  # the edit's revision the worker has (None: none)
        self._centres: dict = {}
        self._d_map: Optional[tuple] = None  # (key, d-spacing map) of the last ring mask
        self.overlay = EditedMaskOverlay()
        self.tool_item = MaskToolItem(self.image_view.view_box)
        self.image_view.add_item(self.overlay, z=12)
        self.image_view.add_item(self.tool_item, z=40)
        self.image_view.add_item(self.tool_item.preview, z=41)
        self._build()
        self.tool_item.shapeDrawn.connect(self._shape_drawn)
        self.tool_item.pointPicked.connect(self._panel_clicked)
        window.controller.frameShown.connect(self.set_view)
        self.visibilityChanged.connect(self._visibility)
        self._refresh()

    # --- widgets -----------------------------------------------------------------------------------
    def _build(self) -> None:
        setup_ui(self)


    # --- following the window -----------------------------------------------------------------------
    def _status(self, text: str, timeout_ms: int = 5000) -> None:
        self.window.controller.statusMessage.emit(text, timeout_ms)

    def set_view(self, view) -> None:
        """A new frame on screen: keep the mask (same detector shape) or start a new one."""
        self.view = view
        shape = tuple(view.frame.shape[-2:])
        if self.edit is None or self.edit.shape != shape:
            if self.edit is not None and self.edit.n_masked:
                self._status(f"Mask editor: the frames are {shape[1]}x{shape[0]} now; the drawn mask was "
                                    "for another detector shape and is gone", 10000)
            if self.applied_revision is not None:
                self.worker.set_user_mask(None)
            self.edit = EditableMask(shape)
            self.applied_revision = None
        names = [p.name for p in view.geometry.panels] if view.geometry is not None else ["frame"]
        if [self.panel_combo.itemText(i) for i in range(self.panel_combo.count())] != names:
            self.panel_combo.clear()
            self.panel_combo.addItems(names)
        self._refresh()

    def _visibility(self, visible: bool) -> None:
        if not visible:
            self.tool_buttons[None].setChecked(True)
        self.overlay.setVisible(visible and self.show_box.isChecked())

    def set_tool(self, tool: Optional[str]) -> None:
        self.tool_item.set_tool(tool)
        if not self.tool_buttons[tool].isChecked():
            self.tool_buttons[tool].setChecked(True)
        if tool is not None:
            self.tool_item.setFocus()

    def centres(self) -> PixelCentres:
        """Pixel centres in scene coordinates for the frame on screen (cached per layout)."""
        m = self.view.mapper
        key = (id(m), m.data_shape)
        c = self._centres.get(key)
        if c is None:
            self._centres = {key: PixelCentres(m.data_shape, m.assembler)}
            c = self._centres[key]
        return c

    # --- edits --------------------------------------------------------------------------------------
    @property
    def masking(self) -> bool:
        return self.mode_mask.isChecked()

    def _ready(self, what: str) -> bool:
        if self.view is None or self.edit is None:
            dialogs.show_error(self.window, "Mask editor", f"{what}: open a run first.")
            return False
        return True

    def edit_pixels(self, pixels: np.ndarray, masked: bool, label: str) -> int:
        if not self._ready(label):
            return 0
        n = self.edit.apply(pixels, masked, label)
        self._refresh()
        if n:
            self._status(f"Mask editor: {label}: {n:,} pixels {'masked' if masked else 'unmasked'}", 5000)
        return n

    def _shape_drawn(self, shape, masked: bool) -> None:
        if self.view is None:
            return
        tool = self.tool_item.tool or "shape"
        masked = masked and (self.masking or tool in ("brush",))
        self.edit_pixels(self.centres().select(shape), masked, tool)

    def _panel_clicked(self, x: float, y: float) -> None:
        if self.view is None:
            return
        panel, _, _ = self.view.mapper.scene_to_data(x, y)
        if panel >= 0:
            self.mask_panel(int(panel))

    def mask_panel(self, index: int) -> int:
        if not self._ready("Panel"):
            return 0
        g = self.view.geometry if self.view.mapper.assembler is not None else None
        name = g.panels[index].name if g is not None else "frame"
        return self.edit_pixels(panel_pixels(g, self.edit.shape, [index]), self.masking, f"panel {name}")

    def mask_chosen_panel(self) -> int:
        return self.mask_panel(max(self.panel_combo.currentIndex(), 0)) if self.panel_combo.count() else 0

    def mask_outside_levels(self) -> int:
        if not self._ready("Outside the levels"):
            return 0
        f = self.view.frame
        px = value_range_pixels(f.data, self.image_view.levels, self.view.log_scale, bad=f.bad)
        return self.edit_pixels(px, self.masking, "outside the levels")

    def mask_resolution(self) -> None:
        """Mask the d-spacing range of the spin boxes; the d-spacing map is computed once per
        geometry in the file thread, then the edit follows (``maskChanged``)."""
        if not self._ready("Resolution range"):
            return
        lo, hi = self.d_min.value(), self.d_max.value() or math.inf
        wl = self.view.wavelength_a
        geom, shape, masked = self.view.geometry, self.edit.shape, self.masking
        energy = HC_EV_A / wl if wl else None
        key = (id(geom), geom is not None and geom.clen, energy, shape)
        label = f"d {lo:g}\u2013{hi:g} \u00c5"

        def done(d_map):
            self._d_map = (key, d_map)
            if self.edit is not None and self.edit.shape == shape:
                self.edit_pixels(resolution_pixels(None, shape, lo, hi, d_map=d_map), masked, label)

        if self._d_map is not None and self._d_map[0] == key:
            done(self._d_map[1])
            return
        file_jobs(self.window).submit(self._d_spacing_map, geom, shape, energy, lo, hi,
                                      context=f"Resolution range {lo:g}\u2013{hi:g} \u00c5", on_done=done)

    @staticmethod
    def _d_spacing_map(geom, shape, energy, lo, hi):
        try:
            return d_spacing_map(geom, shape, energy)
        except GeometryError as e:
            raise GeometryError(f"Resolution range {lo:g}\u2013{hi:g} \u00c5: {e}") from e

    def _history(self, fn) -> Optional[str]:
        if self.edit is None:
            return None
        label = fn()
        self._refresh()
        return label

    def undo(self) -> Optional[str]:
        return self._history(lambda: self.edit.undo())

    def redo(self) -> Optional[str]:
        return self._history(lambda: self.edit.redo())

    def clear(self) -> None:
        self._history(lambda: self.edit.clear())

    def invert(self) -> None:
        self._history(lambda: self.edit.invert())

    def apply(self) -> None:
        """Hand the mask to the worker: the analysis uses it from the next frame (the shown one is
        analysed again)."""
        if not self._ready("Apply"):
            return
        self.worker.set_user_mask(self.edit.mask.copy() if self.edit.n_masked else None)
        self.applied_revision = self.edit.revision
        self._refresh()
        self.applied.emit(self.edit.n_masked)

    def _refresh(self) -> None:
        e = self.edit
        have = e is not None
        self.undo_button.setEnabled(have and e.can_undo)
        self.redo_button.setEnabled(have and e.can_redo)
        self.undo_button.setToolTip(f"Undo {e.undo_label} (Ctrl+Z)" if have and e.can_undo else "Undo (Ctrl+Z)")
        self.redo_button.setToolTip(f"Redo {e.redo_label} (Ctrl+Shift+Z)" if have and e.can_redo else "Redo (Ctrl+Shift+Z)")
        n = e.n_masked if have else 0
        applied = have and self.applied_revision == e.revision
        self.apply_button.setEnabled(have and not applied and (n > 0 or self.applied_revision is not None))
        if not have:
            self.count_label.setText("no frame")
        else:
            state = "in the analysis" if applied and n else ("not applied" if n or self.applied_revision is not None else "")
            self.count_label.setText(f"{n:,} pixels ({100.0 * n / max(e.mask.size, 1):.2f} %)" + (f" \u2022 {state}" if state else ""))
        if have and self.view is not None:
            self.overlay.set_display_mask(self.view.mapper.image(e.mask, fill=False) if n else None)
        else:
            self.overlay.set_display_mask(None)
        if have:
            self.maskChanged.emit(n)

    # --- files (the worker's I/O thread) -------------------------------------------------------------
    def _start_dir(self) -> str:
        return self.window.settings.last_dir() or os.getcwd()

    def save_dialog(self) -> None:
        if not self._ready("Save"):
            return
        path, chosen = QtWidgets.QFileDialog.getSaveFileName(self, "Save the static mask",
                                                             os.path.join(self._start_dir(), "mask.h5"), MASK_FILTER)
        if path:
            if not path.lower().endswith((".h5", ".hdf5", ".npy")):
                path += ".npy" if "npy" in chosen else ".h5"
            self.save(path)

    def save(self, path) -> None:
        """Write the mask (``.h5`` + ``.geom`` or ``.npy``) in the file thread (:mod:`.file_jobs`)."""
        if not self._ready("Save"):
            return
        from ..masks.editor_io import save_user_mask

        file_jobs(self.window).submit(save_user_mask, path, self.edit.mask.copy(), self.view.geometry, self.view.frame,
                                      context=f"Saving the mask {path}", on_done=self._saved)

    def _saved(self, res) -> None:
        self._status(f"Mask saved: {res.path}" + (f" and {res.geom_path}" if res.geom_path else ""), 10000)
        self.saved.emit(res)

    def load_dialog(self) -> None:
        if not self._ready("Load"):
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load a mask into the editor", self._start_dir(), LOAD_FILTER)
        if path:
            self.load(path)

    def load(self, path, polarity: Optional[str] = None) -> None:
        """Read a mask file in the file thread; it replaces the edited mask (one undoable edit)."""
        if not self._ready("Load"):
            return
        from ..masks.editor_io import load_user_mask

        shape = self.edit.shape
        file_jobs(self.window).submit(load_user_mask, path, shape, polarity or self.polarity.currentData(),
                                      context=f"Loading the mask {path}",
                                      on_done=lambda mask: self._loaded(mask, str(path)))

    def _loaded(self, mask: np.ndarray, path: str) -> None:
        if self.edit is None or mask.shape != self.edit.shape:
            return  # the run changed meanwhile
        self.edit.replace(mask, f"load {os.path.basename(path)}")
        self._refresh()
        self._status(f"Mask loaded: {path} ({int(mask.sum()):,} pixels)", 8000)
        self.loaded.emit(path)


def install_mask_editor(window) -> MaskEditorDock:
    """Add the (hidden) mask editor dock on the left, tabbed with the auto-mask dock, Tools >
    Mask editor... (Ctrl+Shift+D) and the Undo/Redo shortcuts (while the dock is shown)."""
    dock = MaskEditorDock(window)
    window.add_dock(dock, "left", tabify_with=window.docks.get("mask"))
    dock.hide()
    window.docks["mask_editor"] = dock
    action = QtWidgets.QAction("Mask &editor\u2026", window)
    action.setShortcut("Ctrl+Shift+D")
    action.setStatusTip("Draw a static mask: shapes, brush, value range, resolution ring, panels; save for CrystFEL")
    action.triggered.connect(lambda *_: (dock.show(), dock.raise_()))
    window.addAction(action)
    window.tools_menu.addAction(action)
    window.tools_menu.menuAction().setVisible(True)
    window.actions_by_name["mask_editor"] = action
    for name, keys, slot in (("mask_undo", ["Ctrl+Z"], dock.undo), ("mask_redo", ["Ctrl+Shift+Z", "Ctrl+Y"], dock.redo)):
        a = QtWidgets.QAction(name, dock)
        a.setShortcuts([QtGui.QKeySequence(k) for k in keys])
        a.setShortcutContext(Qt.WindowShortcut)
        a.triggered.connect(lambda *_, s=slot: dock.isVisible() and s())
        window.addAction(a)
        window.actions_by_name[name] = a
    return dock
