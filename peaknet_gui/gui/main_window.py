"""The main window: detector image in the centre, run browser below it, docks around it.

Layout: peak finding and auto-mask docks on the left, frame info on the right (room for
add-on docks below it), the run overview at the bottom.  Other parts of the program add docks with :meth:`MainWindow.add_dock`
(e.g. the calibration dock) and actions to :attr:`MainWindow.tools_menu`; they follow the shown
frame through ``window.controller.frameShown`` (a :class:`~.display.FrameView`: frame, geometry,
display mapping) and draw on the image with ``window.image_view.add_item``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

from .. import __version__
from . import dialogs
from .actions import SHORTCUTS, build_actions
from .controller import RunController
from .curation_dock import install_curation_dock
from .docks.automask import AutoMaskDock
from .docks.calibration import install_calibration_dock
from .docks.frame_info import FrameInfoDock
from .docks.peak_finding import PeakFindingDock
from .docks.run_overview import RunOverviewDock
from .export_dialog import ExportDialog, start_export
from .exports import ExportOptions, write_frame_mask
from .image_view import DetectorImageView
from .mask_editor import install_mask_editor
from .memory import limit_heap_growth
from .navigation import NavigationBar
from .peak_table import install_peak_table
from .qt import Qt, QtCore, QtGui, QtWidgets
from .runs import RunRequest
from .settings import AppSettings
from .state import BrowserState
from .style import app_icon
from .teardown import release_view_dependent_items, silence
from .worker import AnalysisWorker, ModelSettings

log = logging.getLogger(__name__)

DATA_FILTER = ("Detector data (*.h5 *.hdf5 *.cxi *.nxs *.cbf *.cbf.gz *.cbf.bz2 *.img *.mccd *.edf *.tif *.tiff);;"
               "All files (*)")

AREAS = {"left": Qt.LeftDockWidgetArea, "right": Qt.RightDockWidgetArea, "bottom": Qt.BottomDockWidgetArea,
         "top": Qt.TopDockWidgetArea}


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, settings: Optional[AppSettings] = None, model: Optional[ModelSettings] = None,
                 analyzer_factory=None, restore_layout: bool = True):
        super().__init__()
        limit_heap_growth()  # flat memory while browsing long runs (see .memory)
        self.settings = settings or AppSettings()
        s = self.settings
        self.state = BrowserState(finder=s.finder(), mask=s.mask(), display=s.display(), play_fps=s.play_fps())
        if model is None:
            m = s.model()
            model = ModelSettings(weights=m.get("weights"), device=m.get("device") or "auto")
        self.worker = AnalysisWorker(self.state.finder, self.state.mask, model, analyzer_factory=analyzer_factory)
        self.worker.set_display(self.state.display.log_scale, self.state.display.percentiles,
                                level_mode=self.state.display.level_mode)
        self._export_job = None
        self._export_dirs = {}  # run -> the folder its last export went to (per-run state)

        self.setWindowTitle("")  # Qt adds the application name ("PeakNet") itself
        self.setWindowIcon(app_icon())
        self.image_view = DetectorImageView(self.state.display)
        self.nav = NavigationBar()
        self.nav.set_fps(self.state.play_fps)
        self.nav.set_range(0)
        central = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.image_view, 1)
        lay.addWidget(self.nav)
        self.setCentralWidget(central)
        self.setDockOptions(QtWidgets.QMainWindow.AnimatedDocks | QtWidgets.QMainWindow.AllowTabbedDocks)

        self.docks = {
            "peaks": PeakFindingDock(self.state.finder),
            "mask": AutoMaskDock(self.state.mask, self.state.display),
            "info": FrameInfoDock(),
            "overview": RunOverviewDock(),
        }
        self.controller = RunController(self.state, self.worker, self.image_view, self.nav, self.docks, self)
        self.actions_by_name = build_actions(self)
        self.add_dock(self.docks["peaks"], "left")
        self.add_dock(self.docks["mask"], "left")
        self.add_dock(self.docks["info"], "right")
        self.add_dock(self.docks["overview"], "bottom")
        self.resizeDocks([self.docks["peaks"], self.docks["info"]], [330, 330], Qt.Horizontal)
        self.resizeDocks([self.docks["overview"]], [180], Qt.Vertical)
        install_calibration_dock(self)  # hidden; Tools > Calibration... shows it
        install_mask_editor(self)  # hidden; Tools > Mask editor... shows it
        install_peak_table(self)  # right, below the frame info
        install_curation_dock(self)  # hidden; Tools > Label curation... shows it

        self.status_label = QtWidgets.QLabel("")
        self.readout_label = QtWidgets.QLabel("")
        self.readout_label.setMinimumWidth(300)
        self.run_label = QtWidgets.QLabel("no run")
        self.progress_bar = QtWidgets.QProgressBar()  # the demo being generated, the run analysed in the background
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.setMaximumHeight(14)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setVisible(False)
        self._status_timer = QtCore.QTimer(self)
        self._status_timer.setSingleShot(True)
        self._status_timer.timeout.connect(lambda: self.status_label.setText(""))
        sb = self.statusBar()
        sb.addWidget(self.status_label, 1)
        sb.addPermanentWidget(self.readout_label)
        sb.addPermanentWidget(self.progress_bar)
        sb.addPermanentWidget(self.run_label)

        self.controller.statusMessage.connect(self._status)
        self.controller.runOpened.connect(self._run_opened)
        self.image_view.readoutChanged.connect(lambda r: self.readout_label.setText("" if r is None else r.format()))
        self.image_view.displayChanged.connect(self._display_changed)
        self.docks["mask"].visibilityChanged.connect(self._mask_visibility_changed)
        self.docks["mask"].maskFileRequested.connect(self.open_mask_file_dialog)
        self.docks["mask"].exportRequested.connect(self.export_mask_dialog)
        self.docks["peaks"].weightsRequested.connect(self.open_weights_dialog)
        self.worker.summaryReady.connect(self._on_summary)
        self.worker.openProgress.connect(self._show_progress)
        self.controller.backgroundProgress.connect(self._show_progress)
        self._refresh_recent_menu()
        self.resize(1500, 980)
        self._restored = False
        if restore_layout:
            g, st = s.window_geometry(), s.window_state()
            self._restored = st is not None
            if g is not None:
                self.restoreGeometry(g)
            if st is not None:
                self.restoreState(st)

    def showEvent(self, ev) -> None:  # noqa: N802 (Qt naming)
        super().showEvent(ev)
        if not getattr(self, "_laid_out", False):
            self._laid_out = True
            if not self._restored:
                QtCore.QTimer.singleShot(0, self._default_dock_sizes)

    def _default_dock_sizes(self) -> None:
        left = int(max(330, min(400, self.width() * 0.24)))
        right = int(max(280, min(360, self.width() * 0.2)))
        self.resizeDocks([self.docks["peaks"], self.docks["info"]], [left, right], Qt.Horizontal)
        self.resizeDocks([self.docks["overview"]], [180], Qt.Vertical)
        # the peak-finding controls get the room they need at 1600 x 1000; the auto-mask dock scrolls
        self.resizeDocks([self.docks["peaks"], self.docks["mask"]], [470, 230], Qt.Vertical)

    # --- docks for add-ons ------------------------------------------------------------------------
    def add_dock(self, dock: QtWidgets.QDockWidget, area: str = "right", tabify_with: Optional[QtWidgets.QDockWidget] = None):
        """Add a dock (give it an objectName so the layout persists) and its View > Docks toggle."""
        if not dock.objectName():
            dock.setObjectName("dock_" + dock.windowTitle().lower().replace(" ", "_"))
        self.addDockWidget(AREAS.get(area, area), dock)
        if tabify_with is not None:
            self.tabifyDockWidget(tabify_with, dock)
        self.docks_menu.addAction(dock.toggleViewAction())
        return dock

    # --- runs ---------------------------------------------------------------------------------------
    def open_request(self, request: RunRequest) -> None:
        self.controller.open(request)

    def open_paths(self, paths, dataset=None, geometry=None, event: int = 0, mask_file=None,
                   stream_window: Optional[int] = None) -> None:
        self.open_request(RunRequest(inputs=[str(p) for p in paths], dataset=dataset, geometry_path=geometry,
                                     start_index=int(event), mask_file=mask_file, stream_window=stream_window))

    def open_demo(self, event: int = 0, geometry=None) -> None:
        self.open_request(RunRequest(demo=True, start_index=int(event), geometry_path=geometry))

    def _start_dir(self) -> str:
        return self.settings.last_dir() or os.getcwd()

    def open_run_dialog(self) -> None:
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(self, "Open run", self._start_dir(), DATA_FILTER)
        if files:
            self.settings.set_last_dir(os.path.dirname(files[0]))
            self.open_paths(files)

    def open_directory_dialog(self) -> None:
        d = QtWidgets.QFileDialog.getExistingDirectory(self, "Open the run in a directory", self._start_dir())
        if d:
            self.settings.set_last_dir(d)
            self.open_paths([d])

    def open_pattern_dialog(self) -> None:
        text, ok = QtWidgets.QInputDialog.getText(self, "Open by pattern", "Glob pattern (e.g. /data/run12/*.cbf):",
                                                  text=os.path.join(self._start_dir(), "*.h5"))
        if ok and text.strip():
            self.open_paths([text.strip()])

    def open_geometry_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open CrystFEL geometry", self._start_dir(),
                                                        "CrystFEL geometry (*.geom);;All files (*)")
        if path:
            self.worker.set_geometry(path)

    def open_mask_file_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Static mask", self._start_dir(),
                                                        "Masks (*.h5 *.hdf5 *.cxi *.npy *.edf);;All files (*)")
        if path:
            self.worker.set_static_mask_file(path)
            self.docks["mask"].set_mask_file(path)

    def open_weights_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "PeakNet weights", self._start_dir(),
                                                        "Weights (*.safetensors *.pt *.pth);;All files (*)")
        if path:
            ms = ModelSettings(weights=path, device=self.worker._model_settings.device)
            self.worker.set_model(ms)
            self.settings.set_model(path, ms.device)

    def _run_opened(self, info) -> None:
        self.setWindowTitle(info.request.label())
        if not info.request.demo:
            self.settings.add_recent(info.request)
            self._refresh_recent_menu()
        self.settings.set_last_run(info.request, info.request.start_index)
        self._update_run_label()
        self._status(f"{info.description or info.request.label()}: {info.n_frames} frames, geometry {info.geometry_text}", 8000)

    def _refresh_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        runs = self.settings.recent_runs()
        for req in runs:
            a = menu.addAction(req.label())
            a.setToolTip(" ".join(req.inputs))
            a.triggered.connect(lambda _=False, r=req: self.open_request(RunRequest.from_dict(r.as_dict())))
        menu.setEnabled(bool(runs))

    def _on_summary(self, *_):
        self._update_run_label()

    def _show_progress(self, done: int, total: int) -> None:
        bar = self.progress_bar
        bar.setVisible(0 < total and done < total)
        bar.setMaximum(max(total, 1))
        bar.setValue(done)
        bar.setToolTip(f"{done} of {total}")

    def _update_run_label(self) -> None:
        st = self.state
        if self.controller.run is None:
            self.run_label.setText("no run")
            return
        self.run_label.setText(f"{st.n_frames} frames \u2022 analysed {st.n_current}/{st.n_frames} \u2022 {st.n_hits} hits")

    def _status(self, text: str, timeout_ms: int = 0) -> None:
        self.status_label.setText(text)
        self._status_timer.stop()
        if timeout_ms:
            self._status_timer.start(timeout_ms)

    # --- display toggles ------------------------------------------------------------------------------
    def _set_display_flag(self, name: str, on: bool) -> None:
        setattr(self.state.display, name, bool(on))
        self.image_view.apply_visibility()
        self.docks["mask"].sync_display(self.state.display)

    def set_show_peaks(self, on: bool) -> None:
        self._set_display_flag("show_peaks", on)

    def set_show_mask(self, on: bool) -> None:
        self._set_display_flag("show_automask", on)

    def set_show_static(self, on: bool) -> None:
        self._set_display_flag("show_static", on)

    def set_show_rings(self, on: bool) -> None:
        self._set_display_flag("show_rings", on)

    def set_show_beam(self, on: bool) -> None:
        self._set_display_flag("show_beam", on)

    def set_log_scale(self, on: bool) -> None:
        d = self.state.display
        if d.log_scale != bool(on):
            d.log_scale = bool(on)
            self.image_view.set_display_settings(d)
            self._display_changed()

    def set_crystfel_orientation(self, on: bool) -> None:
        """View > CrystFEL orientation: lab +y up as in CrystFEL's viewer (persisted)."""
        self.state.display.orientation = "crystfel" if on else "data"
        self.image_view.apply_orientation()
        a = self.actions_by_name["crystfel_orientation"]
        if a.isChecked() != bool(on):
            a.blockSignals(True)
            a.setChecked(bool(on))
            a.blockSignals(False)

    def _mask_visibility_changed(self) -> None:
        d = self.state.display
        self.image_view.apply_visibility()
        for key, flag in (("mask", d.show_automask), ("static", d.show_static)):
            a = self.actions_by_name[key]
            a.blockSignals(True)
            a.setChecked(flag)
            a.blockSignals(False)

    def _display_changed(self) -> None:
        d = self.state.display
        a = self.actions_by_name["log"]
        a.blockSignals(True)
        a.setChecked(d.log_scale)
        a.blockSignals(False)
        self.worker.set_display(d.log_scale, d.percentiles, self.image_view.manual_levels, d.level_mode)

    # --- exports --------------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        if self.controller.run is None:
            dialogs.show_error(self, "Export", "Open a run first.")
            return
        out = self.export_dir()
        dlg = ExportDialog(out, "all", n_frames=self.state.n_frames, parent=self, n_analysed=len(self.worker.analysed()))
        if dlg.exec_() != QtWidgets.QDialog.Accepted:
            return
        self.start_export(dlg.options())

    def _run_key(self) -> tuple:
        run = self.controller.run
        return ("demo",) if run is not None and run.request.demo else tuple(run.request.inputs) if run else ()

    def export_dir(self) -> str:
        """The folder the export dialog offers: this run's last one, else ``peaknet_<run>`` in the
        last directory (never another run's folder)."""
        known = self._export_dirs.get(self._run_key())
        if known:
            return known
        run = self.controller.run
        label = run.request.label() if run is not None else "out"
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in label.split(" (+")[0]).strip("._") or "out"
        for ext in (".cxi", ".h5", ".hdf5", ".nxs", ".cbf"):
            stem = stem[: -len(ext)] if stem.lower().endswith(ext) else stem
        return os.path.join(self._start_dir(), f"peaknet_{stem}")

    def start_export(self, options: ExportOptions):
        """Run an export (what the Export dialog's button does); returns the job thread."""
        self._export_dirs[self._run_key()] = options.out_dir
        frame = result = None
        if options.scope == "current":
            frame = self.worker.cached_frame(self.state.index)
            result = self.worker.cached_result(self.state.index)
        self._export_job = start_export(self, options, self.worker.export_context(), frame, result,
                                        on_done=self._export_done)
        return self._export_job

    def _export_done(self, outcome, exc) -> None:
        if outcome is not None:
            self._status(outcome.text().splitlines()[0], 10000)
            dialogs.show_info(self, "Export", outcome.text())

    def export_mask_dialog(self) -> None:
        if self.controller.current_view is None:
            dialogs.show_error(self, "Export mask", "Open a run first.")
            return
        default = os.path.join(self.export_dir(), f"mask_{self.state.index}.h5")  # 0-based, as //N
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export auto-mask for CrystFEL", default, "HDF5 mask (*.h5)")
        if path:
            self.export_mask(path)

    def export_mask(self, path) -> None:
        """Write the current frame's auto-mask (``path``) and ``path.geom`` in the worker's thread."""
        index = self.state.index
        frame = self.worker.cached_frame(index)
        result = self.worker.cached_result(index)
        view = self.controller.current_view
        geom = view.geometry if view is not None and view.index == index else None
        if frame is None:
            dialogs.show_error(self, "Export mask", "The frame is not loaded yet.")
            return

        def job(_job):
            h5, g = write_frame_mask(path, frame, result, geom)
            self.worker.status.emit(f"Mask written: {h5} and {g}")

        self.worker.post.submit("io", job, context=f"Writing the mask {path}")

    def screenshot_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save screenshot", os.path.join(self._start_dir(),
                                                        f"peaknet_{self.state.index}.png"), "PNG (*.png)")
        if path:
            self.save_screenshot(path)

    def save_screenshot(self, path, what: str = "window") -> Path:
        """Save the window (or ``what="view"``: only the image) as PNG."""
        widget = self.image_view if what == "view" else self
        path = Path(path)
        pm = widget.grab()
        if not pm.save(str(path), "PNG"):
            dialogs.show_error(self, "Screenshot", f"{path}: cannot write the PNG file")
        return path

    # --- help ---------------------------------------------------------------------------------------
    def about(self) -> None:
        dialogs.show_info(self, "About PeakNet",
                          f"peaknet_gui {__version__}\n\nLive serial-crystallography run browser: PeakNet peak finding "
                          "(Wang et al. 2023) and auto-masking, with export to CrystFEL.")

    def show_shortcuts(self) -> None:
        dialogs.show_info(self, "Keyboard shortcuts", "\n".join(f"{k:<26} {v}" for k, v in SHORTCUTS))

    # --- closing --------------------------------------------------------------------------------------
    def save_settings(self) -> None:
        s = self.settings
        s.set_finder(self.state.finder)
        s.set_mask(self.state.mask)
        s.set_display(self.state.display)
        s.set_play_fps(self.state.play_fps)
        run = self.controller.run
        if run is not None:
            s.set_last_run(run.request, self.state.index)
        s.set_window(self.saveGeometry(), self.saveState())
        s.sync()

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        self.controller.set_playing(False)
        self.controller.follow_timer.stop()
        try:
            self.save_settings()
        except Exception as e:  # never block closing
            log.warning("could not save settings: %s", e)
        if self._export_job is not None:
            try:
                self._export_job.cancel_event.set()
                self._export_job.wait(5000)
            except RuntimeError:
                pass
        self.worker.shutdown()
        release_view_dependent_items(self)  # before Qt deletes the ViewBoxes (see .teardown)
        super().closeEvent(ev)
        if ev.isAccepted():
            silence(self)  # no slot may run on widgets being destroyed (see .teardown)
