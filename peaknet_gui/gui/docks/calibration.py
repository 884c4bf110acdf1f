"""Calibration dock: calibrant rings, radial profile, beam centre / distance / tilt fit, apply and save.

Tools \u25b8 Calibration\u2026 shows it (hidden by default).  It follows the frame on screen: the fields
(calibrant, energy, rough distance and beam centre) start from the frame's metadata and
geometry, the radial profile and the expected rings (on the profile and on the image) follow
the fields.  Fit, apply and save: :mod:`.calibration_fit`; widgets and fields:
:mod:`.calibration_panel`; the plot: :mod:`.calibration_plot`; rings on the image:
:mod:`..calibration_overlay`; the Qt-free work: :mod:`..calibration_jobs`.

Nothing heavy runs in the GUI thread: integration, ring overlays, the fit and the writes run
in a :class:`~..jobs.JobThread` (latest-wins per slot, the fit first).
"""

from __future__ import annotations

import logging

from ...errors import PeakNetError
from .. import dialogs
from ..calibration_jobs import Prefill, compute_profiles, prefill_from_view, start_geometry
from ..calibration_overlay import CalibrantRingsOverlay
from ..jobs import JobThread
from ..qt import Qt, QtCore, QtWidgets, Signal
from .calibration_fit import CalibrationFitMixin
from .calibration_panel import CalibrationPanel

log = logging.getLogger(__name__)


class CalibrationDock(CalibrationFitMixin, QtWidgets.QDockWidget):
    """See the module docstring.  Signals for tests and other parts: ``profileShown(ProfileResult)``,
    ``fitFinished(CalibrationResult)``, ``fitFailed(str)``, ``saved(geom path, poni path)``."""

    profileShown = Signal(object)
    fitFinished = Signal(object)
    fitFailed = Signal(str)
    saved = Signal(object, object)
    _profileDone = Signal(object, object)  # key, ProfileResult or exception
    _fitDone = Signal(int, object, object)  # token, CalibrationResult, exception
    _saveDone = Signal(object, object)  # (geom, poni) or None, exception
    _namesDone = Signal(object)

    def __init__(self, window):
        super().__init__("Calibration", window)
        self.setObjectName("dock_calibration")
        self.window_ = window
        self.view = None  # FrameView on screen
        self._prefill_key = None
        self._profile_key = None
        self._names_loaded = False
        self.thread = JobThread("peaknet-calibration", ("save", "fit", "names", "profile"), nice=4)
        self.thread.failed.connect(self._job_failed)
        self.thread.start()
        self._build()
        self.overlay = CalibrantRingsOverlay(window.image_view)
        self.overlay.set_visible(False, False)

        self._debounce = QtCore.QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(350)
        self._debounce.timeout.connect(self.request_profile)
        self._tick = QtCore.QTimer(self)
        self._tick.setInterval(250)
        self._tick.timeout.connect(self._update_busy_text)

        window.controller.frameShown.connect(self.on_frame)
        window.controller.runOpened.connect(self._on_run_opened)
        self._profileDone.connect(self._on_profile)
        self._fitDone.connect(self._on_fit_done)
        self._saveDone.connect(self._on_saved)
        self._namesDone.connect(self._on_names)
        self.visibilityChanged.connect(self._visibility_changed)
        window.installEventFilter(self)

    # --- widgets -----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.panel = CalibrationPanel()
        self.setWidget(self.panel)
        for name in CalibrationPanel.WIDGETS:  # the dock's own handles on the panel's widgets
            setattr(self, name, getattr(self.panel, name))
        self.dockLocationChanged.connect(self._relayout)
        self.topLevelChanged.connect(self._relayout)

        self.panel.fieldsChanged.connect(self._debounce_start)
        self.reset_button.clicked.connect(lambda: self.prefill(force=True))
        self.fit_button.clicked.connect(self.fit)
        self.cancel_button.clicked.connect(self.cancel_fit)
        self.apply_button.clicked.connect(self.apply_to_run)
        self.save_button.clicked.connect(self.save_dialog)
        self.show_expected.toggled.connect(self._overlay_visibility)
        self.show_refined.toggled.connect(self._overlay_visibility)

    def _relayout(self, *_):
        """Side by side when docked at the bottom or top (wide and short), stacked otherwise."""
        window = self.window_
        wide = not self.isFloating() and window.dockWidgetArea(self) in (Qt.BottomDockWidgetArea, Qt.TopDockWidgetArea)
        self.panel.set_side_by_side(wide)

    # --- fields ------------------------------------------------------------------------------------
    def _debounce_start(self) -> None:
        self._debounce.start()

    def prefill(self, force: bool = False) -> None:
        """Fields from the frame on screen (when its geometry/energy changed, or ``force``)."""
        if self.view is None:
            return
        p: Prefill = prefill_from_view(self.view)
        if not force and p.key == self._prefill_key:
            return
        self._prefill_key = p.key
        self.panel.apply_prefill(p)
        if force:
            self.request_profile()

    def _start(self):
        """(CalibrationInputs, start Geometry) from the fields and the shown frame's geometry."""
        inputs = self.panel.inputs()
        return inputs, start_geometry(self.view.geometry, self.view.frame.shape, inputs)

    # --- frames and profiles -------------------------------------------------------------------------
    def on_frame(self, view) -> None:
        self.view = view
        self.prefill()
        if self.isVisible():
            self.request_profile()

    def _on_run_opened(self, info) -> None:
        # calibration belongs to a run: a new run (or the first after a restart) starts without
        # the last calibrant's rings over its frames; Tools > Calibration... shows the dock again
        if self.isVisible():
            self.hide()
        self.view = None
        self._prefill_key = None
        self._profile_key = None
        self.forget_fit()
        self.plot.clear()
        self.overlay.clear()
        self._set_status("")

    def _visibility_changed(self, visible: bool) -> None:
        if visible:
            if not self._names_loaded:
                self._names_loaded = True
                self.thread.submit("names", self._job_names, context="Listing the calibrants")
            self.request_profile()
        self._overlay_visibility()

    def _overlay_visibility(self, *_):
        on = self.isVisible()
        self.overlay.set_visible(on and self.show_expected.isChecked(), on and self.show_refined.isChecked())

    def request_profile(self) -> None:
        """Integrate the shown frame at the fields' geometry (and the refined one) in the background."""
        self._debounce.stop()
        if self.view is None or not self.isVisible():
            return
        view = self.view
        try:
            inputs, start = self._start()
        except PeakNetError as e:
            self._set_status(str(e), warn=True)
            self.plot.clear()
            self.overlay.set_expected(None)
            return
        refined = self.result.geometry if self.result is not None else None
        used = list(self.result.rings_used) if self.result is not None else None
        key = (view.index, id(view.frame), id(view.mapper), inputs, id(refined))
        if key == self._profile_key:
            return
        self._profile_key = key
        self.thread.submit("profile", self._job_profile, key, view, start, inputs, refined, used,
                           context=f"Radial profile of frame {view.index}")

    def _job_profile(self, job, key, view, start, inputs, refined, used) -> None:
        try:
            res = compute_profiles(key, view.index, view.frame, start, inputs.calibrant, inputs.wavelength_a,
                                   view.mapper, refined, used)
        except PeakNetError as e:
            res = e
        if not job.cancelled:
            self._profileDone.emit(key, res)

    def _on_profile(self, key, res) -> None:
        if key != self._profile_key:
            return  # the fields or the frame changed meanwhile
        if isinstance(res, Exception):
            self._profile_key = None
            self._set_status(str(res), warn=True)
            self.plot.clear()
            self.overlay.set_expected(None)
            return
        self.plot.set_result(res)
        self.overlay.set_expected(res.expected)
        self.overlay.set_refined(res.refined_paths)
        self._overlay_visibility()
        if not self.thread.running_job or self.thread.running_job.slot != "fit":
            n = len(res.expected.rings)
            note = "; ".join(res.notes) if res.notes else (
                f"{n} {res.calibrant} ring{'s' if n != 1 else ''} on the detector at {res.wavelength_a:.5f} \u00c5")
            if self.result is None or self._status_is_info:
                self._set_status(note, warn=bool(res.notes))
        self.profileShown.emit(res)

    def _job_names(self, job) -> None:
        from ...calib.calibrants import calibrant_names

        self._namesDone.emit(calibrant_names())

    def _on_names(self, names) -> None:
        self.panel.set_calibrants(names)

    # --- misc ------------------------------------------------------------------------------------------
    _status_is_info = True

    def _set_status(self, text: str, warn: bool = False, info: bool = True) -> None:
        self._status_is_info = info
        self.status.setText(text)
        self.status.setStyleSheet("color: #ffaa28;" if warn else "")

    def _job_failed(self, context: str, exc, tb: str) -> None:
        log.error("%s failed:\n%s", context, tb)
        title, text = dialogs.describe(context, exc)
        dialogs.show_error(self.window_, title, text)

    def shutdown(self) -> None:
        self.thread.stop(60000)

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 (Qt naming)
        if obj is self.window_ and ev.type() == QtCore.QEvent.Close:
            self.shutdown()
        return False


def install_calibration_dock(window) -> CalibrationDock:
    """Add the (hidden) calibration dock -- at the bottom, tabbed with the run overview -- and
    Tools \u25b8 Calibration\u2026 (Ctrl+Shift+C) that shows it."""
    dock = CalibrationDock(window)
    window.add_dock(dock, "bottom", tabify_with=window.docks.get("overview"))
    dock._relayout()
    dock.hide()
    window.docks["calibration"] = dock
    action = QtWidgets.QAction("&Calibration\u2026", window)
    action.setShortcut("Ctrl+Shift+C")
    action.setStatusTip("Calibrant rings: radial profile, fit of beam centre, distance and tilt, save geometry")
    action.triggered.connect(lambda *_: show_calibration(window))
    window.addAction(action)
    window.tools_menu.addAction(action)
    window.tools_menu.menuAction().setVisible(True)
    window.actions_by_name["calibration"] = action
    return dock


#: height the calibration dock asks for when it is shown side by side at the bottom
DOCK_HEIGHT = 300


def show_calibration(window) -> None:
    """Show and raise the calibration dock (with room for its plot)."""
    dock = window.docks["calibration"]
    dock.show()
    dock.raise_()

    def make_room():
        if not dock.isVisible() or dock.isFloating():
            return
        if dock.panel.side_by_side and dock.height() < DOCK_HEIGHT:
            window.resizeDocks([dock], [min(DOCK_HEIGHT, window.height() // 3)], Qt.Vertical)
        elif not dock.panel.side_by_side and dock.width() < 420:
            window.resizeDocks([dock], [430 if window.width() >= 1300 else 400], Qt.Horizontal)

    QtCore.QTimer.singleShot(0, make_room)
