"""Export dialog and the thread that runs an export with a progress dialog and Cancel."""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Optional

from . import dialogs
from .exports import FORMATS, ExportOptions, export_current, export_run
from .qt import Qt, QtCore, QtWidgets, Signal

log = logging.getLogger(__name__)

FORMAT_TEXT = {
    "stream": "peaks.stream (CrystFEL stream, every frame)",
    "lst": "hits.lst (event list of the hits)",
    "cxi": "hits.cxi + peaks.geom (hit frames, masks, peaks for indexamajig --peaks=cxi)",
    "mask": "mask.h5 + mask.geom (run mask)",
}
SCOPE_TEXT = (("current", "Current frame"), ("all", "All frames"), ("hits", "Hits only"))


class ExportDialog(QtWidgets.QDialog):
    def __init__(self, out_dir: str, scope: str = "all", formats=FORMATS, n_frames: int = 0, parent=None,
                 n_analysed: int = 0):
        super().__init__(parent)
        self.setWindowTitle("Export peaks for CrystFEL")
        form = QtWidgets.QFormLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.out_dir = QtWidgets.QLineEdit(out_dir)
        browse = QtWidgets.QToolButton()
        browse.setText("\u2026")
        browse.clicked.connect(self._browse)
        row.addWidget(self.out_dir, 1)
        row.addWidget(browse)
        form.addRow("Output directory", row)
        self.scope_buttons = {}
        box = QtWidgets.QVBoxLayout()
        for key, text in SCOPE_TEXT:
            label = text + (f" ({n_frames})" if key == "all" and n_frames else "")
            b = QtWidgets.QRadioButton(label)
            b.setChecked(key == scope)
            self.scope_buttons[key] = b
            box.addWidget(b)
        rng = QtWidgets.QHBoxLayout()
        self.first = QtWidgets.QSpinBox()
        self.last = QtWidgets.QSpinBox()
        for sb, v in ((self.first, 0), (self.last, max(n_frames - 1, 0))):
            sb.setRange(0, max(n_frames - 1, 0))
            sb.setValue(v)
        rng.addWidget(QtWidgets.QLabel("from"))
        rng.addWidget(self.first)
        rng.addWidget(QtWidgets.QLabel("to"))
        rng.addWidget(self.last)
        rng.addStretch(1)
        box.addLayout(rng)
        self._n_frames = n_frames
        form.addRow("Frames", box)
        self.format_boxes = {}
        fbox = QtWidgets.QVBoxLayout()
        for key in FORMATS:
            c = QtWidgets.QCheckBox(FORMAT_TEXT[key])
            c.setChecked(key in formats)
            self.format_boxes[key] = c
            fbox.addWidget(c)
        form.addRow("Files", fbox)
        done = (f"{n_analysed} of {n_frames} frames are analysed with the current settings already: they are\n"
                "written as drawn, without a new model run; " if n_analysed else "")
        note = QtWidgets.QLabel(done + ("the other frames" if n_analysed else "The frames")
                                + " are analysed in the background with the current settings;\n"
                                "frame numbers are 0-based, as CrystFEL's //N; summary.json is always written.")
        note.setStyleSheet("color: grey;")
        form.addRow(note)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.Ok | QtWidgets.QDialogButtonBox.Cancel)
        buttons.button(QtWidgets.QDialogButtonBox.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        d = QtWidgets.QFileDialog.getExistingDirectory(self, "Output directory", self.out_dir.text())
        if d:
            self.out_dir.setText(d)

    def options(self) -> ExportOptions:
        scope = next(k for k, b in self.scope_buttons.items() if b.isChecked())
        first, last = self.first.value(), self.last.value()
        return ExportOptions(out_dir=self.out_dir.text().strip(), scope=scope,
                             formats={k for k, c in self.format_boxes.items() if c.isChecked()},
                             first=first if first > 0 else None,
                             last=last if last < self._n_frames - 1 else None)


class ExportJob(QtCore.QThread):
    """Runs :func:`export_run` / :func:`export_current`; ``progress(done, total, hits)``,
    ``succeeded(ExportOutcome)``, ``failed(exception)``."""

    progress = Signal(int, int, int)
    succeeded = Signal(object)
    failed = Signal(object)

    def __init__(self, options: ExportOptions, ctx: dict, frame=None, result=None, parent=None):
        super().__init__(parent)
        self.options = options
        self.ctx = ctx
        self.frame = frame
        self.result = result
        self.cancel_event = threading.Event()
        self.outcome = None
        self.error = None

    def run(self) -> None:
        try:
            if self.options.scope == "current":
                out = export_current(self.options, self.ctx, self.frame, self.result)
            else:
                out = export_run(self.options, self.ctx, progress=lambda p: self.progress.emit(p.done, p.total, p.hits),
                                 cancel=self.cancel_event)
            self.outcome = out
            self.succeeded.emit(out)
        except Exception as e:  # shown as a dialog by the window
            log.debug("export failed:\n%s", traceback.format_exc())
            self.error = e
            self.failed.emit(e)


def start_export(parent: QtWidgets.QWidget, options: ExportOptions, ctx: dict, frame=None, result=None,
                 on_done=None) -> Optional[ExportJob]:
    """Start an export thread with a progress dialog (Cancel stops between frames)."""
    try:
        options.check()
    except Exception as e:
        title, text = dialogs.describe("Export", e)
        dialogs.show_error(parent, title, text)
        return None
    job = ExportJob(options, ctx, frame, result, parent)
    n = ctx["run"].n_frames if ctx.get("run") else 0
    total = 1 if options.scope == "current" else max(len(options.indices(n)), 1)
    dlg = QtWidgets.QProgressDialog("Analysing and writing frames\u2026", "Cancel", 0, total, parent)
    dlg.setWindowTitle("Export")
    dlg.setWindowModality(Qt.WindowModal)
    dlg.setMinimumDuration(300)
    dlg.setAutoClose(False)
    dlg.setAutoReset(False)
    dlg.setValue(0)

    def on_progress(done, tot, hits):
        dlg.setMaximum(max(tot, 1))
        dlg.setValue(done)
        dlg.setLabelText(f"Frame {done} of {tot} \u2022 {hits} hits")

    def finish():
        dlg.reset()
        dlg.close()

    def on_ok(outcome):
        finish()
        if on_done is not None:
            on_done(outcome, None)

    def on_fail(exc):
        finish()
        title, text = dialogs.describe("Export", exc)
        dialogs.show_error(parent, title, text)
        if on_done is not None:
            on_done(None, exc)

    job.progress.connect(on_progress)
    job.succeeded.connect(on_ok)
    job.failed.connect(on_fail)
    dlg.canceled.connect(job.cancel_event.set)
    job.finished.connect(job.deleteLater)
    job.start()
    return job
