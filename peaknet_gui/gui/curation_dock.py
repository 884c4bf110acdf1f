"""The curation dock (Tools > Label curation..., Ctrl+Shift+L): correct the model's labels of the
frame on screen, save curated frames, fine-tune on them (:mod:`.finetune_panel`).

The labels of a frame start from the model's prediction for it (the peak components that became
peaks, the artifact class; :func:`peaknet_gui.curation.labels.labels_from_prediction`), or from
the labels saved before for that frame.  Tools on the image (:mod:`.curation_tools`):

* **Remove peak** -- a click on a false peak: its pixels become background;
* **Add peak** -- a click on a missed spot: its pixels from a local threshold (box median + k
  robust sigmas, connected to the click) are shown in yellow; **Accept** (Enter) adds them,
  **Reject** (Escape) drops them;
* **Paint / Erase artifact** -- a brush (radius in data pixels).

Undo / Redo (buttons) walk the frame's edits.  **Save frame** adds the frame with its labels to
the curation file beside the run (``RUN.curation.cxi``, :mod:`peaknet_gui.curation.store`) in the
window's file thread; when the run's folder is read-only the dock asks for a folder.  Frames
stay edited (unsaved) while the user browses, per frame.
"""

from __future__ import annotations

import dataclasses

import os
from typing import Optional

import numpy as np

from ..curation.labels import LabelEditor, SpotThreshold, labels_from_prediction
from ..curation.store import CuratedFrame, ReadOnlyFolderError, curation_path, save_frames, saved_labels
from ..masks.editor_ops import PixelCentres, Stroke
from . import dialogs
from .curation_tools import ARTIFACT_COLOR, PEAK_COLOR, PREVIEW_COLOR, LabelOverlay, LabelToolItem, color_swatch
from .file_jobs import file_jobs
from .qt import Qt, QtCore, QtWidgets, Signal

TOOL_TEXT = {None: ("Pan", "Pan and zoom the image"),
             "remove": ("Remove peak", "Click a false peak: its pixels become background"),
             "add": ("Add peak", "Click a missed spot: its pixels (local threshold) are shown; Enter / Accept adds them"),
             "paint": ("Paint artifact", "Paint artifact pixels (rings, streaks, shadows) with the brush"),
             "erase": ("Erase artifact", "Artifact pixels under the brush become background")}


def _prediction_labels(frame, result, finder, mask):
    """Labels of ``frame`` from its FrameResult (file thread)."""
    from ..masks.automask import artifact_mask_from_probabilities
    from ..peaks.filters import peak_mask_from_probabilities

    pm = am = None
    if getattr(result, "peak_prob", None) is not None and result.artifact_prob is not None:
        pp, ap = result.peak_prob.astype(np.float32), result.artifact_prob.astype(np.float32)
        pm = peak_mask_from_probabilities(pp, ap, finder.peak_threshold)
        am = artifact_mask_from_probabilities(ap, pp, mask.artifact_threshold)
    peaks = result.peaks
    return labels_from_prediction(frame.data.shape, pm, am, peaks.fs, peaks.ss, bad=frame.bad, data=frame.data)


def _start_labels(frame, result, finder, mask, path):
    saved = None
    if path is not None:
        try:
            saved = saved_labels(path, frame.event.lst_line())
        except Exception:  # an unreadable curation file is reported when saving
            saved = None
    if saved is not None and saved.shape == frame.data.shape:
        return saved, True
    return _prediction_labels(frame, result, finder, mask), False


class CurationDock(QtWidgets.QDockWidget):
    """See the module docstring.  Signals: ``labelsChanged(source)`` after every edit or when a
    frame's labels are ready, ``saved(SaveOutcome)``."""

    labelsChanged = Signal(str)
    saved = Signal(object)

    def __init__(self, window):
        super().__init__("Label curation", window)
        self.setObjectName("dock_curation")
        self.window = window
        self.image_view = window.image_view
        self.view = None  # FrameView on screen
        self.editors: dict = {}  # source -> LabelEditor (frames being curated)
        self.saved_revision: dict = {}  # source -> len(undo stack) when saved
        self.preview: Optional[np.ndarray] = None
        self.folder: Optional[str] = None  # the user's folder for the curation file
        self.curation_file: Optional[str] = None  # the file last written / found
        self._pending: set = set()  # sources whose start labels are being prepared
        self._centres = None
        self.ask_folder = self._ask_folder  # tests replace it
        self.overlay = LabelOverlay()
        self.tool_item = LabelToolItem()
        self.image_view.add_item(self.overlay, z=14)
        self.image_view.add_item(self.tool_item, z=42)
        self._build()
        self.tool_item.clicked.connect(self._clicked)
        self.tool_item.stroked.connect(self._stroked)
        self.tool_item.keyAction.connect(lambda a: self.accept_preview() if a == "accept" else self.reject_preview())
        window.controller.frameShown.connect(self.set_view)
        window.controller.runOpened.connect(self._run_opened)
        self.image_view.overlayDrawn.connect(self._overlay_drawn)
        self.visibilityChanged.connect(self._visibility)

    # --- widgets --------------------------------------------------------------------------------------
    def _build(self) -> None:
        from .finetune_panel import FineTunePanel

        w = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(w)
        lay.setContentsMargins(6, 6, 6, 6)
        tools = QtWidgets.QGridLayout()
        self.tool_group = QtWidgets.QButtonGroup(self)
        self.tool_buttons = {}
        for k, tool in enumerate((None, "remove", "add", "paint", "erase")):
            text, tip = TOOL_TEXT[tool]
            b = QtWidgets.QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setCheckable(True)
            b.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
            if tool in ("remove", "add"):
                b.setIcon(color_swatch(PEAK_COLOR if tool == "add" else (200, 200, 200)))
            elif tool is not None:
                b.setIcon(color_swatch(ARTIFACT_COLOR))
            b.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)
            self.tool_group.addButton(b)
            self.tool_buttons[tool] = b
            b.toggled.connect(lambda on, t=tool: on and self.set_tool(t))
            tools.addWidget(b, (k + 1) // 2, (k + 1) % 2 if k else 0, 1, 1 if k else 2)
        self.tool_buttons[None].setChecked(True)
        lay.addLayout(tools)

        form = QtWidgets.QFormLayout()
        self.k_sigma = QtWidgets.QDoubleSpinBox()
        self.k_sigma.setRange(1.0, 20.0)
        self.k_sigma.setSingleStep(0.5)
        self.k_sigma.setValue(3.0)
        self.k_sigma.setToolTip("Add peak: pixels above the box's median + k robust sigmas (MAD)")
        self.box = QtWidgets.QSpinBox()
        self.box.setRange(3, 30)
        self.box.setValue(7)
        self.box.setToolTip("Add peak: half-size of the box around the click (pixels)")
        self.radius = QtWidgets.QDoubleSpinBox()
        self.radius.setRange(0.5, 50.0)
        self.radius.setValue(3.0)
        self.radius.setToolTip("Brush radius (display pixels)")
        self.radius.valueChanged.connect(lambda v: setattr(self.tool_item, "brush_radius", float(v)))
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.k_sigma)
        row.addWidget(QtWidgets.QLabel("box"))
        row.addWidget(self.box)
        form.addRow("Spot k\u03c3", row)
        form.addRow("Brush radius", self.radius)
        lay.addLayout(form)

        buttons = QtWidgets.QHBoxLayout()
        self.accept_button = self._button("Accept", "Add the previewed (yellow) spot as a peak (Enter)", self.accept_preview)
        self.reject_button = self._button("Reject", "Drop the previewed spot (Escape)", self.reject_preview)
        self.undo_button = self._button("Undo", "Undo the last label edit of this frame", self.undo)
        self.redo_button = self._button("Redo", "Redo", self.redo)
        for b in (self.accept_button, self.reject_button, self.undo_button, self.redo_button):
            buttons.addWidget(b)
        lay.addLayout(buttons)
        buttons = QtWidgets.QHBoxLayout()
        self.reset_button = self._button("From prediction", "Start this frame's labels again from the model's prediction",
                                         self.reset_to_prediction)
        self.save_button = self._button("Save frame", "Add this frame and its labels to the curation file beside the run",
                                        self.save_frame)
        self.folder_button = self._button("Folder\u2026", "Choose the folder of the curation file", self.choose_folder)
        for b in (self.reset_button, self.save_button, self.folder_button):
            buttons.addWidget(b)
        lay.addLayout(buttons)
        self.show_box = QtWidgets.QCheckBox("Show labels")
        self.show_box.setChecked(True)
        self.show_box.toggled.connect(lambda on: self.overlay.setVisible(on and self.isVisible()))
        lay.addWidget(self.show_box)
        self.info = QtWidgets.QLabel("")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.info)
        self.file_label = QtWidgets.QLabel("")
        self.file_label.setWordWrap(True)
        self.file_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.file_label)
        self.finetune = FineTunePanel(self)
        lay.addWidget(self.finetune)
        lay.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(w)
        self.setWidget(scroll)
        self.setMinimumWidth(300)
        self._refresh()

    def _button(self, text: str, tip: str, slot) -> QtWidgets.QPushButton:
        b = QtWidgets.QPushButton(text)
        b.setToolTip(tip)
        b.clicked.connect(lambda *_: slot())
        return b

    def _status(self, text: str, timeout_ms: int = 5000) -> None:
        self.window.controller.statusMessage.emit(text, timeout_ms)

    # --- following the window ---------------------------------------------------------------------
    @property
    def source(self) -> Optional[str]:
        return None if self.view is None else self.view.frame.event.lst_line()

    @property
    def editor(self) -> Optional[LabelEditor]:
        return None if self.view is None else self.editors.get(self.source)

    def _run_opened(self, info) -> None:
        self.editors.clear()
        self.saved_revision.clear()
        self.preview = None
        self.curation_file = None
        self._centres = None

    def set_view(self, view) -> None:
        self.view = view
        self.preview = None
        self._refresh()

    def _visibility(self, visible: bool) -> None:
        if not visible:
            self.tool_buttons[None].setChecked(True)
        self.overlay.setVisible(visible and self.show_box.isChecked())
        if visible:
            self._overlay_drawn(self.view.index if self.view is not None else -1)

    def set_tool(self, tool: Optional[str]) -> None:
        if not self.tool_buttons[tool].isChecked():
            self.tool_buttons[tool].setChecked(True)
        self.tool_item.set_tool(tool)
        if tool is not None and self.editor is None:
            self._overlay_drawn(self.view.index if self.view is not None else -1)

    def run_path(self) -> Optional[str]:
        run = self.window.controller.run
        if run is None:
            return None
        inputs = list(run.inputs or []) or list(run.request.inputs or [])
        return str(inputs[0]) if inputs else None

    def target_path(self):
        """Where the curation file goes (raises ReadOnlyFolderError without a folder)."""
        return curation_path(self.run_path(), self.folder)

    def _overlay_drawn(self, index: int) -> None:
        """The shown frame's result is there: prepare its start labels (file thread)."""
        ov = self.image_view.overlay
        if (not self.isVisible() or self.view is None or ov is None or ov.index != self.view.index
                or index != self.view.index or self.source in self.editors or self.source in self._pending):
            return
        self._prepare(ov.result)

    def _prepare(self, result, from_prediction_only: bool = False) -> None:
        frame, source = self.view.frame, self.source
        st = self.window.state
        try:
            path = None if from_prediction_only else str(self.target_path())
        except ReadOnlyFolderError:
            path = None
        self._pending.add(source)

        def done(res):
            self._pending.discard(source)
            labels, was_saved = res
            self.editors[source] = LabelEditor(frame.data, labels, frame.bad)
            self.saved_revision[source] = 0 if was_saved else -1
            if self.source == source:
                self._refresh()
                self._status(f"Curation: labels of {source} {'as saved' if was_saved else 'from the prediction'}", 4000)
            self.labelsChanged.emit(source)

        finder = st.finder
        analyzer = self.window.worker.analyzer
        if finder.peak_threshold is None and analyzer is not None and hasattr(analyzer, "peak_threshold"):
            finder = dataclasses.replace(finder, peak_threshold=analyzer.peak_threshold(finder))  # the weights' point
        file_jobs(self.window).submit(_start_labels, frame, result, finder, st.mask, path,
                                      context=f"Labels of {source}", on_done=done)

    def reset_to_prediction(self) -> None:
        ov = self.image_view.overlay
        if self.view is None or ov is None or ov.index != self.view.index:
            dialogs.show_error(self.window, "Label curation", "From prediction: the frame is not analysed yet.")
            return
        self.editors.pop(self.source, None)
        self.preview = None
        self._prepare(ov.result, from_prediction_only=True)

    # --- edits -------------------------------------------------------------------------------------
    def _ready(self) -> bool:
        if self.editor is None:
            self._status("Curation: the frame's labels are not ready yet (the frame is being analysed)", 4000)
            return False
        return True

    def _to_data(self, x: float, y: float):
        panel, fs, ss = self.view.mapper.scene_to_data(x, y)
        if panel < 0 or not np.isfinite(fs):
            return None
        geom = self.view.geometry if self.view.mapper.assembler is not None else None
        limit = geom.panels[int(panel)].slices() if geom is not None and len(geom.panels) > 1 else None
        return float(fs), float(ss), limit

    def _clicked(self, x: float, y: float) -> None:
        if self.view is None or not self._ready():
            return
        pos = self._to_data(x, y)
        if pos is None:
            return
        fs, ss, limit = pos
        if self.tool_item.tool == "remove":
            n = self.editor.remove_peak(fs, ss)
            self._edited("Removed a peak" if n else "No peak at the click", n)
        elif self.tool_item.tool == "add":
            self.preview_spot(fs, ss, limit)

    def preview_spot(self, fs: float, ss: float, limit=None) -> int:
        """Show the spot's pixels at (fs, ss) for :meth:`accept_preview`; the pixel count."""
        if not self._ready():
            return 0
        px = self.editor.spot_at(fs, ss, SpotThreshold(half_box=self.box.value(), k=self.k_sigma.value()), limit)
        self.preview = px if px.any() else None
        n = int(px.sum())
        self._status(f"Curation: spot of {n} pixels \u2014 Enter / Accept adds it, Escape drops it" if n else
                     f"Curation: nothing above the local threshold at ({fs:.0f}, {ss:.0f})", 6000)
        self._refresh()
        return n

    def accept_preview(self) -> int:
        if self.preview is None or not self._ready():
            return 0
        n = self.editor.add_peak(self.preview)
        self.preview = None
        self._edited("Added a peak", n)
        return n

    def reject_preview(self) -> None:
        self.preview = None
        self._refresh()

    def _stroked(self, points, radius: float) -> None:
        if self.view is None or not self._ready():
            return
        m = self.view.mapper
        if self._centres is None or self._centres[0] is not m:
            self._centres = (m, PixelCentres(m.data_shape, m.assembler))
        px = self._centres[1].select(Stroke(tuple(points), float(radius)))
        if self.tool_item.tool == "paint":
            self._edited("Painted artifact", self.editor.paint_artifact(px))
        elif self.tool_item.tool == "erase":
            self._edited("Erased artifact", self.editor.erase_artifact(px))

    def _edited(self, what: str, n: int) -> None:
        if n:
            self._status(f"Curation: {what.lower()} ({n} pixels)", 4000)
        else:
            self._status(f"Curation: {what.lower()}", 4000)
        self._refresh()
        if n:
            self.labelsChanged.emit(self.source)

    def undo(self) -> None:
        if self.editor is not None and self.editor.undo():
            self._refresh()

    def redo(self) -> None:
        if self.editor is not None and self.editor.redo():
            self._refresh()

    # --- saving ------------------------------------------------------------------------------------
    def _ask_folder(self, message: str) -> Optional[str]:
        dialogs.show_warning(self.window, "Curation file", message)
        d = QtWidgets.QFileDialog.getExistingDirectory(self.window, "Folder for the curation file",
                                                       self.window.settings.last_dir() or os.getcwd())
        return d or None

    def choose_folder(self) -> None:
        d = self.ask_folder("Choose the folder of the curation file (the run's own folder is the default).")
        if d:
            self.folder = d
            self._refresh()

    def save_frame(self) -> None:
        """Add the frame on screen with its labels to the curation file (file thread)."""
        ed, view = self.editor, self.view
        if view is None or ed is None:
            dialogs.show_error(self.window, "Save frame", "No curated frame: open a run and let the frame be analysed.")
            return
        try:
            path = self.target_path()
        except ReadOnlyFolderError as e:
            self._read_only(str(e))
            return
        source, rev = self.source, len(ed.undo_stack)
        cf = CuratedFrame(source=source, event=int(view.index), data=ed.data, labels=ed.labels.copy(), bad=ed.bad)
        geom = view.geometry

        def job():
            try:
                return save_frames(path, [cf], geom)
            except ReadOnlyFolderError as e:
                return e

        def done(res):
            if isinstance(res, ReadOnlyFolderError):
                self._read_only(str(res))
                return
            self.curation_file = res.path
            self.saved_revision[source] = rev
            self.file_label.setText(res.text())
            self._status(f"Curation: saved {source} \u2192 {res.path}", 8000)
            self._refresh()
            self.saved.emit(res)

        file_jobs(self.window).submit(job, context=f"Saving the curation file {path}", on_done=done)

    def _read_only(self, message: str) -> None:
        d = self.ask_folder(message + "\n\nChoose a folder for the curation file.")
        if d:
            self.folder = d
            self.save_frame()

    # --- display -----------------------------------------------------------------------------------
    def _refresh(self) -> None:
        ed = self.editor
        has = ed is not None
        self.accept_button.setEnabled(self.preview is not None)
        self.reject_button.setEnabled(self.preview is not None)
        self.undo_button.setEnabled(has and bool(ed.undo_stack))
        self.redo_button.setEnabled(has and bool(ed.redo_stack))
        self.save_button.setEnabled(has)
        self.reset_button.setEnabled(self.view is not None)
        if self.view is None or not has:
            self.overlay.set_labels(None, None)
            self.info.setText("Open a run; the labels of the frame on screen start from the model's prediction."
                              if self.view is None else "Frame %d: labels not prepared yet." % self.view.index)
            return
        self.overlay.set_labels(self.view.mapper, ed.labels, self.preview)
        c = ed.counts()
        saved = self.saved_revision.get(self.source, -1)
        state = "saved" if saved == len(ed.undo_stack) else "not saved" if saved < 0 else "edited since saved"
        self.info.setText(f"Frame {self.view.index}: {c['peaks']} peaks ({c['peak_pixels']} px), "
                          f"{c['artifact_pixels']} artifact px \u2022 {state}")
        if not self.file_label.text():
            try:
                self.file_label.setText(f"Curation file: {self.target_path()}")
            except ReadOnlyFolderError as e:
                self.file_label.setText(str(e))


def install_curation_dock(window) -> CurationDock:
    """Add the (hidden) curation dock on the right and Tools > Label curation... (Ctrl+Shift+L)."""
    dock = CurationDock(window)
    window.add_dock(dock, "right")
    dock.hide()
    window.docks["curation"] = dock
    action = QtWidgets.QAction("&Label curation\u2026", window)
    action.setShortcut("Ctrl+Shift+L")
    action.setStatusTip("Correct the model's labels (remove / add peaks, paint artifacts), save curated frames, fine-tune")
    action.triggered.connect(lambda *_: (dock.show(), dock.raise_()))
    window.addAction(action)
    window.tools_menu.addAction(action)
    window.tools_menu.menuAction().setVisible(True)
    window.actions_by_name["curation"] = action
    return dock
