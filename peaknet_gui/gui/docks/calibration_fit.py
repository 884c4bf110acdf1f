"""The calibration dock's fit, apply and save (a mixin of :class:`.calibration.CalibrationDock`).

"Fit geometry" runs :func:`peaknet_gui.calib.refine.calibrate` in the dock's background thread
(slot ``fit``); a fit cannot be interrupted inside pyFAI, so Cancel returns the dock to idle at
once and the fit's result is discarded when it ends (a token tells stale results apart).  The
before/after table (direct-beam centre, distance, tilt and its direction with 1-sigma errors,
PONI), the residuals per ring (and per panel), a status line saying whether the tilt was
determined, "Apply to run" (the worker re-analyses with the refined geometry) and
"Save geometry\u2026" (CrystFEL ``.geom`` + pyFAI ``.poni``, written in the background) follow.

The dock provides the signals (``fitFinished``, ``fitFailed``, ``saved``, ``_fitDone``,
``_saveDone``), the panel's widgets as attributes, ``thread`` (a JobThread), ``view``,
``window_`` and ``_set_status``.
"""

from __future__ import annotations

import logging
import os
import time

from ...errors import PeakNetError
from .. import dialogs
from ..calibration_jobs import applied_geometry, run_fit, save_result
from ..calibration_report import (comparison_rows, fit_quality_warning, panel_rows, ring_rows, rings_used_text,
                                  tilt_note)
from ..qt import QtWidgets

log = logging.getLogger(__name__)


class CalibrationFitMixin:
    """Fit / cancel / apply / save of the calibration dock (see the module docstring)."""

    result = None  # CalibrationResult of the last fit
    _fit_base = None  # the run's geometry the fit started from (lends comments to the saved file)
    _fit_index = -1
    _fit_token = 0
    _fit_started = 0.0

    @property
    def fitting(self) -> bool:
        return self.cancel_button.isEnabled()

    def fit(self) -> None:
        """Start the fit on the shown frame (results arrive through ``fitFinished``/``fitFailed``)."""
        if self.fitting:
            return
        if self.view is None:
            self._fit_error("Open a run and show a calibrant frame first.")
            return
        try:
            inputs, start = self._start()
        except PeakNetError as e:
            self._fit_error(str(e))
            return
        self._fit_token += 1
        self._fit_base = self.view.geometry
        self._fit_index = self.view.index
        self._fit_started = time.monotonic()
        self._set_busy(True)
        self.thread.submit("fit", self._job_fit, self._fit_token, self.view.frame, start, inputs,
                           context=f"Calibration fit on frame {self.view.index}")

    def _job_fit(self, job, token, frame, start, inputs) -> None:
        try:
            res, exc = run_fit(frame, start, inputs), None
        except Exception as e:  # reported in the GUI thread (PeakNetError: the user's; others: bugs)
            if not isinstance(e, PeakNetError):
                log.exception("calibration fit failed")
            res, exc = None, e
        self._fitDone.emit(token, res, exc)

    def cancel_fit(self, quiet: bool = False) -> None:
        if not self.fitting:
            return
        self._fit_token += 1  # the running fit's result will be ignored
        self.thread.cancel("fit")
        self._set_busy(False)
        if not quiet:
            self._set_status("Fit cancelled.")

    def _on_fit_done(self, token: int, result, exc) -> None:
        if token != self._fit_token:
            return
        self._set_busy(False)
        if exc is not None:
            text = str(exc) if isinstance(exc, PeakNetError) else dialogs.describe("Calibration fit", exc)[1]
            self._fit_error(text)
            return
        self.result = result
        warning = fit_quality_warning(result)
        tilt, tilt_warn = tilt_note(result)
        rows = comparison_rows(result)
        names = [r[0] for r in rows]
        highlight = {len(rows) - 2, len(rows) - 1} if warning else set()
        if tilt_warn:
            highlight |= {i for i, n in enumerate(names) if n.startswith("Tilt")}
        self.table.set_rows(rows, highlight=highlight)
        self.ring_table.set_rows(ring_rows(result))
        self.ring_table.setToolTip("Rings used: " + rings_used_text(result))
        prows = panel_rows(result)
        self.panel_table.set_rows(prows, highlight={i for i, r in enumerate(prows) if r[-1]})
        for b in (self.apply_button, self.save_button):
            b.setEnabled(True)
        dt = time.monotonic() - self._fit_started
        done = (f"Fitted on frame {self._fit_index} in {dt:.1f} s: {len(result.rings_used)} rings, "
                f"{result.n_control_points} points, residual {result.residual_px:.3f} px. {tilt}")
        self._set_status(f"{warning} {tilt}" if warning else done, warn=bool(warning) or tilt_warn, info=False)
        self._profile_key = None
        self.request_profile()  # the refined profile and rings
        self.fitFinished.emit(result)

    def _fit_error(self, text: str) -> None:
        self._set_status("Fit failed: " + text.splitlines()[0], warn=True, info=False)
        self.fitFailed.emit(text)
        dialogs.show_error(self.window_, "Calibration", text)

    def _set_busy(self, on: bool) -> None:
        self.fit_button.setEnabled(not on)
        self.cancel_button.setEnabled(on)
        self.busy.setVisible(on)
        if on:
            self._tick.start()
            self._update_busy_text()
        else:
            self._tick.stop()

    def _update_busy_text(self) -> None:
        self._set_status(f"Fitting on frame {self._fit_index}\u2026 {time.monotonic() - self._fit_started:.0f} s",
                         info=False)

    def forget_fit(self) -> None:
        """A new run: no fit result, an empty table, nothing to apply or save."""
        self.cancel_fit(quiet=True)
        self.result = None
        self._fit_base = None
        self.table.set_rows([])
        self.ring_table.set_rows([])
        self.panel_table.set_rows([])
        for b in (self.apply_button, self.save_button):
            b.setEnabled(False)

    # --- apply and save --------------------------------------------------------------------------------
    def apply_to_run(self) -> None:
        """Give the refined geometry to the worker (checked, re-assembled and re-analysed there)."""
        if self.result is None:
            return
        self.window_.worker.set_geometry(applied_geometry(self.result, self._fit_base))
        self.window_.controller.statusMessage.emit("Refined geometry applied to the run", 6000)
        self._set_status("Refined geometry applied to the run.", info=False)

    def save_dialog(self) -> None:
        if self.result is None:
            return
        start = self.window_.settings.last_dir() or os.getcwd()
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save the refined geometry",
                                                        os.path.join(start, "calibrated.geom"),
                                                        "CrystFEL geometry (*.geom);;All files (*)")
        if path:
            self.save_geometry(path)

    def save_geometry(self, path) -> None:
        """Write ``path`` (.geom) and the .poni beside it in the background (``saved`` when done)."""
        if self.result is None:
            dialogs.show_error(self.window_, "Save geometry", "Fit the geometry first.")
            return
        self.thread.submit("save", self._job_save, self.result, path, self._fit_base, context=f"Saving {path}")

    def _job_save(self, job, result, path, base) -> None:
        try:
            self._saveDone.emit(save_result(result, path, base), None)
        except Exception as e:  # reported in the GUI thread
            if not isinstance(e, PeakNetError):
                log.exception("saving the calibrated geometry failed")
            self._saveDone.emit(None, e)

    def _on_saved(self, paths, exc) -> None:
        if exc is not None:
            if isinstance(exc, PeakNetError):
                title, text = "Save geometry", str(exc)
            else:
                title, text = dialogs.describe("Save geometry", exc)
            self._set_status("Save failed: " + text.splitlines()[0], warn=True, info=False)
            dialogs.show_error(self.window_, title, text)
            return
        geom, poni = paths
        self._set_status(f"Saved {geom} and {poni.name}.", info=False)
        self.window_.controller.statusMessage.emit(f"Geometry written: {geom} and {poni}", 8000)
        self.saved.emit(geom, poni)
