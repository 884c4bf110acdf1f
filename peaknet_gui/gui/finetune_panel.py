"""The fine-tune panel of the curation dock: fine-tune the window's weights on the curated frames,
compare, switch.

**Fine-tune** starts a :class:`peaknet_gui.curation.finetune.FineTuneJob` (its own thread; the
training is a ``peaknet train --init <the window's weights>`` child process) on the curation
file; the panel shows its stage, a progress bar and the loss curve as ``train_log.jsonl`` grows.
**Cancel** stops the child process (SIGTERM, then SIGKILL).  When done, the before/after peak
precision / recall / F1 on the held-out curated frames are shown and **Use new weights** switches
the window's analysis to the new weights (the worker loads them, :meth:`AnalysisWorker.set_model`);
the same button switches back.  A failed step is a dialog with the error's last lines.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Optional

from ..curation.store import ReadOnlyFolderError
from ..curation.finetune import FineTuneJob, FineTuneSettings, default_out_dir
from . import dialogs
from .qt import QtCore, QtWidgets, Signal, pg
from .worker import ModelSettings


class _Bridge(QtCore.QObject):
    """Carries the job's events (its thread) into the GUI thread."""

    event = Signal(str, object)


class FineTunePanel(QtWidgets.QGroupBox):
    """See the module docstring.  Signals: ``finished(result dict)``, ``weightsSwitched(path)``."""

    finished = Signal(object)
    weightsSwitched = Signal(str)

    def __init__(self, dock):
        super().__init__("Fine-tune on the curated frames")
        self.dock = dock
        self.window = dock.window
        self.job: Optional[FineTuneJob] = None
        self.result: Optional[dict] = None
        self.previous: Optional[ModelSettings] = None  # the weights before "Use new weights"
        self.losses: list = []
        self.progress_value = (0, 0)
        # what the job gets beyond the visible controls (tests make them tiny)
        self.options = dict(crop=128, batch_size=4, lr=3e-4, device="auto", threads=2, replay_frames=8,
                            replay_crop=256, replay_cache=None, out=None)
        self._bridge = _Bridge()
        self._bridge.event.connect(self._on_event)
        self._build()
        self.window.installEventFilter(self)

    def _build(self) -> None:
        lay = QtWidgets.QVBoxLayout(self)
        form = QtWidgets.QFormLayout()
        self.steps = QtWidgets.QSpinBox()
        self.steps.setRange(1, 100000)
        self.steps.setValue(200)
        self.steps.setToolTip("Optimiser steps of the fine-tune")
        form.addRow("Steps", self.steps)
        self.replay = QtWidgets.QLineEdit()
        self.replay.setPlaceholderText("simulated frames (made once, cached)")
        self.replay.setToolTip("Labelled runs trained on beside the curated frames so the model does not forget "
                               "(paths separated by ';'); empty: a small simulated run")
        form.addRow("Replay runs", self.replay)
        lay.addLayout(form)
        row = QtWidgets.QHBoxLayout()
        self.start_button = QtWidgets.QPushButton("Fine-tune")
        self.start_button.setToolTip("peaknet train --init <the window's weights> on the saved curated frames")
        self.start_button.clicked.connect(lambda *_: self.start())
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda *_: self.cancel())
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        self.stage = QtWidgets.QLabel("")
        self.stage.setWordWrap(True)
        lay.addWidget(self.stage)
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(0, 100)
        self.bar.setValue(0)
        lay.addWidget(self.bar)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(110)
        self.plot.setMaximumHeight(150)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.setLogMode(y=True)
        self.curve = self.plot.plot([], [], pen=pg.mkPen((90, 180, 255), width=1.5), symbol="o", symbolSize=4)
        lay.addWidget(self.plot)
        self.figures = QtWidgets.QLabel("")
        self.figures.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.figures.setStyleSheet("font-family: monospace")
        lay.addWidget(self.figures)
        self.switch_button = QtWidgets.QPushButton("Use new weights")
        self.switch_button.setEnabled(False)
        self.switch_button.setToolTip("Analyse with the fine-tuned weights (click again to go back)")
        self.switch_button.clicked.connect(lambda *_: self.toggle_weights())
        lay.addWidget(self.switch_button)

    # --- the job --------------------------------------------------------------------------------
    def current_model(self) -> ModelSettings:
        return copy.deepcopy(self.window.worker._model_settings)

    def settings(self) -> FineTuneSettings:
        o = self.options
        curation = self.dock.curation_file
        replay = [p.strip() for p in self.replay.text().split(";") if p.strip()]
        return FineTuneSettings(
            curation=curation, out=o["out"] or str(default_out_dir(curation)), init=self.current_model().weights,
            replay=replay, replay_cache=o["replay_cache"], replay_frames=o["replay_frames"], replay_crop=o["replay_crop"],
            steps=self.steps.value(), crop=o["crop"], batch_size=o["batch_size"], lr=o["lr"], device=o["device"],
            threads=o["threads"])

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def start(self) -> Optional[FineTuneJob]:
        if self.running:
            return self.job
        if not self.dock.curation_file:
            try:
                self.dock.curation_file = str(self.dock.target_path())
            except ReadOnlyFolderError:
                pass
        if not self.dock.curation_file:
            dialogs.show_error(self.window, "Fine-tune", "Save curated frames first (Save frame): the fine-tune trains "
                               "on the curation file's frames and scores on its held-out ones.")
            return None
        s = self.settings()
        self.losses = []
        self.curve.setData([], [])
        self.figures.setText("")
        self.result = None
        self.bar.setRange(0, s.steps)
        self.bar.setValue(0)
        self.progress_value = (0, s.steps)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.stage.setText("Starting\u2026")
        bridge = self._bridge
        self.job = FineTuneJob(s, lambda kind, payload: bridge.event.emit(kind, payload)).start()
        return self.job

    def cancel(self) -> None:
        if self.running:
            self.stage.setText("Cancelling\u2026")
            self.job.cancel()

    def _on_event(self, kind: str, payload: dict) -> None:
        if kind == "stage":
            self.stage.setText(payload["text"])
        elif kind == "progress":
            steps = max(1, int(payload["steps"]))
            self.bar.setRange(0, steps)
            self.bar.setValue(min(int(payload["step"]), steps))
            self.progress_value = (int(payload["step"]), steps)
        elif kind == "loss":
            self.losses.append((int(payload["step"]), max(float(payload["loss"]), 1e-8)))
            xs, ys = zip(*self.losses)
            self.curve.setData(list(xs), list(ys))
        elif kind == "done":
            self._ended()
            self.result = payload
            self.stage.setText(f"Done: {payload['weights']}")
            self.figures.setText(payload["text"])
            self.switch_button.setEnabled(True)
            self.switch_button.setText("Use new weights")
            self.previous = None
            self.finished.emit(payload)
        elif kind == "failed":
            self._ended()
            self.stage.setText("Failed")
            dialogs.show_error(self.window, payload["title"], payload["text"])
        elif kind == "cancelled":
            self._ended()
            self.stage.setText("Cancelled")

    def _ended(self) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    # --- switching weights --------------------------------------------------------------------------
    @property
    def using_new(self) -> bool:
        return self.previous is not None

    def toggle_weights(self) -> None:
        """Use the fine-tuned weights, or go back to the ones before (one click each way)."""
        if self.result is None:
            return
        worker = self.window.worker
        if self.previous is None:
            self.previous = self.current_model()
            ms = copy.deepcopy(self.previous)
            ms.weights = self.result["weights"]
            worker.set_model(ms)
            self.switch_button.setText("Back to previous weights")
            name = Path(ms.weights).parent.parent.name + "/" + Path(ms.weights).name
        else:
            ms, self.previous = self.previous, None
            worker.set_model(ms)
            self.switch_button.setText("Use new weights")
            name = os.path.basename(ms.weights) if ms.weights else "the shipped weights"
        self.dock._status(f"Analysing with {name}", 6000)
        self.weightsSwitched.emit(ms.weights or "")

    # --- closing ------------------------------------------------------------------------------------
    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 (Qt naming)
        if obj is self.window and ev.type() == QtCore.QEvent.Close:
            self.cancel()
        return False
