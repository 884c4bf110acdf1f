"""The glue between the worker, the browser state and the widgets (navigation, play, follow).

Signals for the window, tests and add-on docks:

* ``runOpened(RunInfo)``;
* ``frameShown(FrameView)`` -- a new image is on screen (add-on docks read the frame and its
  geometry from it);
* ``frameComplete(index)`` -- the frame's peaks and masks are drawn too;
* ``errorShown(title, text)``;
* ``backgroundProgress(done, total)`` -- frames of the run analysed with the current settings.

Per-run state: when a run opens, everything that belonged to the previous one -- image,
circles, Frame info, hover read-out, the last error -- is reset before the new run's first frame
is drawn (add-on docks reset theirs on ``runOpened``).  A run that fails to open changes
nothing: the error is a dialog, the frame on screen and its circles stay as they were.
"""

from __future__ import annotations

import logging
import time
from typing import Optional

from . import dialogs
from .qt import Qt, QtCore, QtWidgets, Signal
from .runs import RunInfo, RunRequest
from .state import BrowserState

log = logging.getLogger(__name__)


class RunController(QtCore.QObject):
    runOpened = Signal(object)
    frameShown = Signal(object)
    frameComplete = Signal(int)
    errorShown = Signal(str, str)
    statusMessage = Signal(str, int)
    backgroundProgress = Signal(int, int)

    def __init__(self, state: BrowserState, worker, view, nav, docks: dict, parent_widget=None):
        super().__init__(parent_widget)
        self.state = state
        self.worker = worker
        self.view = view
        self.nav = nav
        self.docks = docks
        self.parent_widget = parent_widget
        self.run: Optional[RunInfo] = None
        self.current_view = None
        self.current_overlay = None
        self._current_done = False
        self._gain_warning_shown = ""
        self._tick_due = False
        self._last_error = ("", 0.0)
        self._frame_requested_at = 0.0
        self.last_latency_ms = 0.0  # frame request -> image on screen
        self.play_timer = QtCore.QTimer(self)
        self.play_timer.setSingleShot(True)
        self.play_timer.timeout.connect(self._play_tick)
        self.follow_timer = QtCore.QTimer(self)
        self.follow_timer.setInterval(1000)
        self.follow_timer.timeout.connect(self._poll_run)
        self.overview_timer = QtCore.QTimer(self)
        self.overview_timer.setSingleShot(True)
        self.overview_timer.setInterval(150)
        self.overview_timer.timeout.connect(self._update_overview)

        w = worker
        w.runOpened.connect(self._on_run_opened)
        w.datasetNeeded.connect(self._on_dataset_needed)
        w.frameReady.connect(self._on_frame)
        w.overlayReady.connect(self._on_overlay)
        w.summaryReady.connect(self._on_summary)
        w.runGrew.connect(self._on_run_grew)
        w.hitFound.connect(self._on_hit_found)
        w.modelReady.connect(self._on_model_ready)
        w.geometryChanged.connect(self._on_geometry_changed)
        w.failed.connect(self._on_failed)
        w.warning.connect(self._on_warning)
        w.status.connect(self._on_worker_status)
        w.backgroundProgress.connect(self._on_background_progress)

        nav.indexRequested.connect(self.go)
        nav.stepRequested.connect(self.step)
        nav.hitRequested.connect(self.goto_hit)
        nav.playToggled.connect(self.set_playing)
        nav.fpsChanged.connect(self.set_fps)
        nav.followToggled.connect(self.set_follow)
        docks["overview"].frameClicked.connect(self.go)
        docks["peaks"].settingsChanged.connect(self._finder_changed)
        docks["mask"].settingsChanged.connect(self._mask_changed)
        view.readoutChanged.connect(docks["info"].set_readout)
        app = QtWidgets.QApplication.instance()
        if app is not None:  # Space plays/pauses even from a spin box (see eventFilter)
            app.focusChanged.connect(self._focus_changed)

    def _focus_changed(self, old, new) -> None:
        if isinstance(new, QtWidgets.QAbstractSpinBox) and new.window() is self.parent_widget:
            new.installEventFilter(self)  # installing twice keeps one filter

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 (Qt naming)
        """A spin box with the focus (e.g. the fps box just set) would take Space as text and the
        play/pause shortcut would not fire: let the shortcut have it."""
        if (ev.type() == QtCore.QEvent.ShortcutOverride and ev.key() == Qt.Key_Space
                and not (ev.modifiers() & ~Qt.KeypadModifier) and isinstance(obj, QtWidgets.QAbstractSpinBox)
                and self.parent_widget is not None and obj.window() is self.parent_widget):
            ev.ignore()
            return True
        return False

    # (bound methods, not lambdas: Qt drops their connections when the window goes away)
    def _poll_run(self) -> None:
        self.worker.refresh(analyse_new=True)

    def _update_overview(self) -> None:
        self.docks["overview"].update_from(self.state)

    def _on_worker_status(self, text: str) -> None:
        self.statusMessage.emit(text, 0)

    # --- runs --------------------------------------------------------------------------------------
    def open(self, request: RunRequest) -> None:
        self.set_playing(False)
        self.worker.open_run(request)

    def _on_run_opened(self, info: RunInfo) -> None:
        self.run = info
        self.current_view = None
        self.current_overlay = None
        self._current_done = False
        self._gain_warning_shown = ""  # a new run says it again
        self._last_error = ("", 0.0)
        self.view.clear()
        self.view.readoutChanged.emit(None)  # no panel name or value of the old run under the cursor
        self.docks["info"].clear()
        start = info.request.start_index
        self.state.set_run(info.n_frames, start)
        self.nav.set_range(info.n_frames)
        self.docks["overview"].update_from(self.state)
        self.docks["mask"].set_mask_file(info.request.mask_file)
        self.runOpened.emit(info)
        self.go(self.state.clamp(start), force=True)

    def _on_dataset_needed(self, request: RunRequest, candidates: list) -> None:
        chosen = dialogs.choose_dataset(self.parent_widget, request.label(), candidates)
        if chosen:
            request.dataset = chosen
            self.worker.open_run(request)
        else:
            self.statusMessage.emit("Opening cancelled: no dataset chosen", 5000)

    def _on_geometry_changed(self, geom) -> None:
        if self.run is not None:
            self.run = self.worker.run_info
        self.statusMessage.emit("Geometry: " + (self.run.geometry_text if self.run else "none"), 5000)

    # --- navigation ----------------------------------------------------------------------------------
    def go(self, index: int, force: bool = False) -> None:
        if self.run is None:
            return
        i = self.state.clamp(index)
        if i == self.state.index and not force and self.current_view is not None and self.current_view.index == i:
            self.nav.set_index(i)
            return
        prev = self.state.index
        self.state.go(i)
        self.nav.set_index(i)
        self.docks["overview"].set_current(i)
        self._current_done = False
        self._frame_requested_at = time.perf_counter()
        self.worker.prefetch_step = 1 if (self.state.playing or i == prev + 1) else 0
        self.worker.show(i)

    def step(self, delta: int) -> None:
        self.go(self.state.index + int(delta))

    def first(self) -> None:
        self.go(0)

    def last(self) -> None:
        self.go(self.state.n_frames - 1)

    def goto_hit(self, direction: int) -> None:
        if self.run is None:
            return
        known = self.state.next_hit() if direction > 0 else self.state.prev_hit()
        if known is not None:
            self.go(known)
            return
        start = self.state.index + (1 if direction > 0 else -1)
        if not 0 <= start < self.state.n_frames:
            self.statusMessage.emit("No hit " + ("after" if direction > 0 else "before") + " this frame", 4000)
            return
        self.statusMessage.emit("Searching for the " + ("next" if direction > 0 else "previous") + " hit\u2026", 0)
        self.worker.search_hit(start, direction)

    def _on_hit_found(self, index: int) -> None:
        if index >= 0:
            self.go(index)
            self.statusMessage.emit(f"Hit at frame {index}", 4000)
        else:
            self.statusMessage.emit("No hit found", 4000)

    def cancel(self) -> None:
        self.set_playing(False)
        self.worker.cancel()

    # --- play and follow -------------------------------------------------------------------------------
    def set_playing(self, on: bool) -> None:
        on = bool(on) and self.run is not None
        self.state.playing = on
        self.nav.set_playing(on)
        self.worker.prefetch_step = 1 if on else 0
        if on:
            if self.state.at_end and not self.state.follow_live:
                self.go(0)
            self._tick_due = False
            self.play_timer.start(self._interval_ms())
        else:
            self.play_timer.stop()
            self._tick_due = False

    def toggle_play(self) -> None:
        self.set_playing(not self.state.playing)

    def set_fps(self, fps: float) -> None:
        self.state.play_fps = max(0.1, float(fps))

    def _interval_ms(self) -> int:
        return int(round(1000.0 / max(self.state.play_fps, 0.1)))

    def _play_tick(self) -> None:
        self._tick_due = True
        self._maybe_advance()

    def _maybe_advance(self) -> None:
        """Play waits for the shown frame's peaks before moving on (so none is skipped)."""
        if not self.state.playing or not self._tick_due or not self._current_done:
            return
        nxt = self.state.next_play_index()
        if nxt is None:
            if not self.state.follow_live:
                self.set_playing(False)
            return  # following: wait for new frames
        self._tick_due = False
        self.go(nxt)
        self.play_timer.start(self._interval_ms())

    def set_follow(self, on: bool) -> None:
        self.state.follow_live = bool(on)
        self.nav.set_follow(on)
        if on and self.run is not None:
            self.follow_timer.start()
            self.worker.refresh(analyse_new=True)
        else:
            self.follow_timer.stop()

    def _on_run_grew(self, n: int) -> None:
        at_end = self.state.at_end
        if not self.state.grow(n):
            return
        if self.run is not None:
            self.run.n_frames = self.state.n_frames
        self.nav.set_range(self.state.n_frames)
        self.nav.set_index(self.state.index)
        self.overview_timer.start()
        self.statusMessage.emit(f"{n} frames", 3000)
        if self.state.follow_live and not self.state.playing and at_end:
            self.go(self.state.n_frames - 1)
        elif self.state.playing:
            self._maybe_advance()

    # --- worker messages ---------------------------------------------------------------------------------
    def _on_frame(self, view) -> None:
        if view.index != self.state.index:
            return
        self.current_view = view
        self.view.show_frame(view)
        self.last_latency_ms = 1e3 * (time.perf_counter() - self._frame_requested_at)
        geometry_text = self.run.geometry_text if self.run else ""
        self.docks["info"].set_frame(view, self.state.n_frames, geometry_text)
        if view.geometry_error:
            self.statusMessage.emit(f"Geometry not used: {view.geometry_error}", 8000)
        self.frameShown.emit(view)

    def _on_overlay(self, ov) -> None:
        if ov.index != self.state.index or self.current_view is None or self.current_view.index != ov.index:
            return
        self.current_overlay = ov
        self.view.show_overlay(ov)
        self.docks["info"].set_result(ov.result)
        self.docks["mask"].set_stats(ov.mask_code)
        warning = getattr(ov.result, "gain_warning", "")
        if warning and warning != self._gain_warning_shown:  # once per run and geometry, not per frame
            self._gain_warning_shown = warning
            self.statusMessage.emit(warning, 20000)
        self._current_done = True
        self.frameComplete.emit(ov.index)
        self._maybe_advance()

    def _on_summary(self, index: int, n_peaks: int, hit: bool, ms: float, fingerprint) -> None:
        if self.run is None or not 0 <= index < self.state.n_frames:
            return
        self.state.record(index, n_peaks, hit, ms, fingerprint)
        if not self.overview_timer.isActive():
            self.overview_timer.start()

    def _on_background_progress(self, done: int, total: int) -> None:
        self.backgroundProgress.emit(done, total)
        if done >= total and not self.overview_timer.isActive():
            self.overview_timer.start()

    def _on_model_ready(self, device: str, info) -> None:
        self.docks["peaks"].set_model_info(device, info or {})
        self.docks["info"].set_device(device)

    def _on_failed(self, context: str, exc) -> None:
        self.set_playing(False)
        about_frame = context.startswith(("Frame ", "Analysing frame", "Reading frame"))
        if about_frame and self.current_view is not None and self.current_view.index == self.state.index:
            self._current_done = True
        if about_frame and context.endswith(f" {self.state.index}"):
            # the frame on screen has no result; a failed open or geometry leaves the pane alone
            self.docks["info"].set_no_result(type(exc).__name__)
        title, text = dialogs.describe(context, exc)
        now = time.monotonic()
        if (text, ) == (self._last_error[0], ) and now - self._last_error[1] < 3.0:
            return  # the same message again (e.g. several frames of a broken file): once is enough
        self._last_error = (text, now)
        self.errorShown.emit(title, text)
        dialogs.show_error(self.parent_widget, title, text)

    def _on_warning(self, text: str) -> None:
        self.statusMessage.emit(text, 10000)
        dialogs.show_warning(self.parent_widget, "Warning", text)

    # --- settings --------------------------------------------------------------------------------------
    def _finder_changed(self, finder) -> None:
        if self.state.set_finder(finder):
            self.worker.set_settings(self.state.finder, self.state.mask)
            self.overview_timer.start()

    def _mask_changed(self, mask) -> None:
        if self.state.set_mask(mask):
            self.worker.set_settings(self.state.finder, self.state.mask)
