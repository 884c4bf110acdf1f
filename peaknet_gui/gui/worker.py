"""The analysis worker: reads frames, runs the analyzer and prepares drawings off the GUI thread.

Three :class:`~.jobs.JobThread` s, each latest-wins per slot:

* **reader** (``open``, ``show``, ``refresh``, ``prefetch``, ``ahead``): opens runs and geometries,
  reads frames (bounded LRU cache), builds the display image (:func:`.display.build_frame_view`)
  and reads the next frame in the browsing direction ahead;
* **model** (``current``, ``prefetch``, ``search``, ``backlog``, ``background``):
  :meth:`FrameAnalyzer.analyze` -- the only thread that runs the model; the displayed frame
  first, then the next frame while playing, then a hit search, then frames appended in
  follow-live mode, then -- one frame per job, so anything the user asks for comes first -- the
  rest of the run in read-ahead order from the frame on screen (:mod:`.background`);
* **post** (``rethreshold``, ``io``): :meth:`FrameAnalyzer.rethreshold` from the cached
  probabilities when a slider moves (no model run), and small file writes.

Every message carries its frame index; the GUI side keeps only what belongs to the frame it
shows (``index == wanted``), so stale results are dropped.  Results are cached per frame
together with the settings version that made them; a frame analysed with older thresholds is
re-thresholded, never re-run.  Every analysed frame also goes to a compact store
(:class:`~.background.ResultStore`: peaks, hit, packed mask) kept for the whole run, which
shows analysed frames at once, feeds the run overview and is reused by exports.  Problems come
back through :attr:`AnalysisWorker.failed` (the background skips unreadable frames quietly).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Optional

from ..errors import InputError, PeakNetError
from ..pipeline.settings import FinderSettings, MaskSettings
from .background import BackgroundPlan, ResultStore, analysis_fingerprint, result_of
from .display import build_frame_view, build_overlay
from .jobs import JobThread
from .worker_jobs import WorkerJobs
from .qt import QtCore, Signal
from .runs import RunInfo, RunRequest

log = logging.getLogger(__name__)

FRAME_CACHE = 6
VIEW_CACHE = 3
RESULT_CACHE = 8


class StaleRead(Exception):
    """A frame read for a run that another run replaced meanwhile (see
    :meth:`AnalysisWorker._frame`): the job that asked for it ends without a word."""


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key, value):
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)

    def fetch(self, key):
        v = self.get(key)
        if v is not None:
            self.move_to_end(key)
        return v


@dataclass
class ModelSettings:
    weights: Optional[str] = None
    device: str = "auto"
    backend: str = "auto"


@dataclass
class WorkerStats:
    """Counters the tests and the benchmark read."""

    analyses: int = 0  # frames run through FrameAnalyzer.analyze
    rethresholds: int = 0
    reads: int = 0
    dropped_stale: int = 0
    extra: dict = field(default_factory=dict)


class AnalysisWorker(QtCore.QObject, WorkerJobs):
    """See the module docstring.  Create in the GUI thread; call :meth:`shutdown` at exit."""

    runOpened = Signal(object)  # RunInfo
    datasetNeeded = Signal(object, object)  # RunRequest, list[DatasetInfo]
    frameReady = Signal(object)  # FrameView
    overlayReady = Signal(object)  # OverlayView
    summaryReady = Signal(int, int, bool, float, object)  # index, peaks, hit, ms, settings fingerprint
    openProgress = Signal(int, int)  # a run being prepared (the demo generated): done, total
    backgroundProgress = Signal(int, int)  # frames analysed with the current settings, frames in the run
    runGrew = Signal(int)  # frames in the run now
    hitFound = Signal(int)  # hit search: frame index, -1 when none was found
    modelReady = Signal(str, object)  # device name, model info dict
    geometryChanged = Signal(object)  # Geometry or None
    failed = Signal(str, object)  # context, exception
    warning = Signal(str)
    status = Signal(str)  # what the worker is doing ("" when idle)

    def __init__(self, finder: Optional[FinderSettings] = None, mask: Optional[MaskSettings] = None,
                 model: Optional[ModelSettings] = None, analyzer_factory=None, background: bool = True, parent=None):
        super().__init__(parent)
        self._lock = threading.RLock()
        self._source_lock = threading.Lock()  # one thread at a time reads from (or refreshes) the run
        self._finder = copy.deepcopy(finder) if finder is not None else FinderSettings()
        self._mask = copy.deepcopy(mask) if mask is not None else MaskSettings()
        self._version = 0
        self._model_settings = model or ModelSettings()
        self._analyzer_factory = analyzer_factory  # tests: a slow analyzer; default FrameAnalyzer
        self._analyzer = None
        self._generation = 0
        self._model_error: Optional[str] = None
        self._reported_device = False
        self._warned_predictor = None
        self._warnings_seen = 0
        self._source = None
        self._run: Optional[RunInfo] = None
        self._static = None
        self._user_mask = None  # the mask editor's pixels (True = masked), added to ``_static``
        self._frames = _LRU(FRAME_CACHE)
        self._views = _LRU(VIEW_CACHE)
        self._results = _LRU(RESULT_CACHE)
        self._store = ResultStore()  # compact results of every analysed frame of the run
        self._plan = BackgroundPlan()
        self.background_enabled = bool(background)
        self._wanted = -1
        self._direction = 1  # of the last single step: the frame read ahead
        self._request = 0
        self._in_flight: Optional[tuple] = None
        self._display = (True, (1.0, 99.7), "spots")
        self._manual_levels: Optional[tuple] = None
        self._backlog: deque = deque()
        self.prefetch_step = 0  # +1 while playing forward: analyse the next frame ahead
        self.stats = WorkerStats()
        self.reader = JobThread("peaknet-reader", ("open", "show", "refresh", "prefetch", "ahead"))
        # the model runs at a lower priority than reading and drawing: frames stay quick to show
        self.model = JobThread("peaknet-model", ("current", "prefetch", "search", "backlog", "background"), nice=8)
        self.post = JobThread("peaknet-post", ("rethreshold", "io"), nice=2)
        for t in (self.reader, self.model, self.post):
            t.failed.connect(self._on_job_failed)
            t.start()

    # --- lifecycle --------------------------------------------------------------------------------
    def shutdown(self) -> None:
        for t in (self.reader, self.model, self.post):
            t.stop()
        with self._lock:
            if self._source is not None:
                try:
                    self._source.close()
                except Exception:  # closing must never fail the exit
                    pass
            self._source = None

    def _on_job_failed(self, context: str, exc: object, tb: str) -> None:
        if isinstance(exc, StaleRead):  # a job of the last run: nothing to tell about the new one
            log.debug("%s dropped: %s", context, exc)
            return
        if not isinstance(exc, PeakNetError):
            log.error("%s failed:\n%s", context, tb)
        self.status.emit("")
        self.failed.emit(context, exc)

    # --- what the GUI reads --------------------------------------------------------------------------
    @property
    def run_info(self) -> Optional[RunInfo]:
        return self._run

    @property
    def analyzer(self):
        return self._analyzer

    @property
    def settings_version(self) -> int:
        return self._version

    @property
    def wanted(self) -> int:
        return self._wanted

    def cached_result(self, index: int):
        """The result of ``index`` with the current settings (full, else from the compact
        store: peaks, hit and mask, no probabilities), None when not analysed with them."""
        with self._lock:
            c = self._results.get(index)
            if c is not None and c.key == self._result_key() and c.version == self._version:
                return c.result
            stored = self._store.get(index, self._result_key(), self._fingerprint())
            hit_min = self._finder.min_peaks_for_hit
        return None if stored is None else result_of(stored, hit_min)

    def analysed(self) -> set:
        """Frames analysed with the current run, model and settings."""
        with self._lock:
            key, fp = self._result_key(), self._fingerprint()
        return self._store.done(key, fp)

    @property
    def store(self) -> ResultStore:
        return self._store

    def cached_frame(self, index: int):
        with self._lock:
            return self._frames.get(index)

    def export_context(self) -> dict:
        """What an export needs to analyse the run again in its own thread."""
        with self._lock:
            pred = getattr(self._analyzer, "_predictor", None)
            hot = getattr(self._analyzer, "hot_pixels", None)
            return {
                "hot_pixels": hot.snapshot() if hot is not None else None,
                "run": self._run,
                "source": self._source,  # the open run (a live stream's export reads the window's frames)
                "finder": copy.deepcopy(self._finder),
                "mask": copy.deepcopy(self._mask),
                "static_mask": self._effective_static(),
                "predictor": pred,
                "model": copy.deepcopy(self._model_settings),
                "analyzer_factory": self._analyzer_factory,
                # frames analysed with these very settings: the export writes them without the model
                "cached": self._store.snapshot(self._result_key(), self._fingerprint()),
            }

    def busy(self) -> bool:
        return not (self.reader.idle and self.model.idle and self.post.idle)

    # --- requests from the GUI ---------------------------------------------------------------------
    def open_run(self, request: RunRequest) -> None:
        self.model.cancel()
        self.post.cancel()
        self.reader.cancel()
        self.status.emit(f"Opening {request.label()}\u2026")
        self.reader.submit("open", self._job_open, request, context=f"Opening {request.label()}")

    def set_geometry(self, path) -> None:
        """Use the CrystFEL geometry at ``path``, or a Geometry object (e.g. a fitted one), or
        None: the one the run's files imply."""
        where = getattr(path, "source", None) or ("(set by the program)" if path is not None and not isinstance(path, str)
                                                  else path or "(from the files)")
        self.reader.submit("open", self._job_geometry, path, context=f"Geometry {where}")

    def set_static_mask_file(self, path: Optional[str]) -> None:
        self.reader.submit("open", self._job_mask_file, path, context=f"Mask file {path}")

    def set_user_mask(self, mask) -> None:
        """The mask editor's pixels (bool, data shape, True = masked; None: none) join the run's
        static mask for analysis, overlays and exports (a mask of another shape is ignored).
        Cheap (a new analyzer sharing the model); the shown frame is analysed again."""
        with self._lock:
            self._user_mask = None if mask is None else mask.astype(bool, copy=True)
            if self._run is None:
                return
            self._rebuild_analyzer(keep_predictor=True)
        self.show(self._wanted if self._wanted >= 0 else 0)

    def _effective_static(self):
        """The run's static mask plus the mask editor's (lock held)."""
        user, static = self._user_mask, self._static
        if user is None or self._run is None or tuple(user.shape) != tuple(self._run.shape[-2:]):
            return static
        return user if static is None else (static | user)

    def set_model(self, model: ModelSettings) -> None:
        """New weights/device: a new analyzer, results cleared (frames and views kept)."""
        with self._lock:
            self._model_settings = copy.deepcopy(model)
            self._model_error = None
            self._reported_device = False
            self._rebuild_analyzer(keep_predictor=False)
        self.show(self._wanted)

    def set_settings(self, finder: FinderSettings, mask: MaskSettings) -> None:
        """New thresholds: the shown frame is re-thresholded at once (or re-analysed when the
        algorithm changed); other cached results follow when they are shown again."""
        with self._lock:
            algorithm_changed = finder.algorithm != self._finder.algorithm
            self._finder = copy.deepcopy(finder)
            self._mask = copy.deepcopy(mask)
            self._version += 1
            if algorithm_changed:
                self._model_error = None
            index = self._wanted
        if index >= 0 and self._source is not None:
            self._request_result(index, self._request)
        self.kick_background()

    def set_background(self, on: bool) -> None:
        """Whole-run analysis in the background on/off (on: it starts at once)."""
        self.background_enabled = bool(on)
        if on:
            self.kick_background()
        else:
            self.model.cancel("background")

    def kick_background(self) -> None:
        """Start (or go on with) the background analysis of the run, if there is work."""
        if not self.background_enabled or self._source is None or self.model.pending("background"):
            return
        self.model.submit("background", self._job_background, context="Analysing the run")

    def set_display(self, log_scale: bool, percentiles, manual_levels: Optional[tuple] = None,
                    level_mode: str = "spots") -> None:
        """Log scale, automatic levels (``level_mode`` "spots" or "percentiles") and level
        percentiles (the shown frame is prepared again when they change);
        ``manual_levels`` (None: automatic) apply to the frames prepared from now on -- the view
        rescales the frame on screen itself."""
        display = (bool(log_scale), tuple(float(p) for p in percentiles), str(level_mode))
        manual = None if manual_levels is None else (float(manual_levels[0]), float(manual_levels[1]))
        with self._lock:
            changed = display != self._display
            self._display = display
            if manual != self._manual_levels:
                self._manual_levels = manual
                self._views.clear()
            if changed:
                self._views.clear()
        if changed and self._wanted >= 0:
            self.show(self._wanted)

    def show(self, index: int) -> None:
        """Display frame ``index``: image as soon as it is read, overlays when analysed."""
        with self._lock:
            if self._source is None:
                return
            step = int(index) - self._wanted
            self._direction = step if abs(step) == 1 else self._direction
            self._wanted = int(index)
            self._request += 1
            rid = self._request
        self.reader.submit("show", self._job_show, int(index), rid, context=f"Frame {index}")

    def refresh(self, analyse_new: bool = True) -> None:
        """Look for frames appended to the run (follow live); new ones are analysed when idle."""
        if not self.reader.pending("refresh"):
            self.reader.submit("refresh", self._job_refresh, analyse_new, context="Following the run")

    def search_hit(self, start: int, direction: int = 1) -> None:
        """Analyse frames from ``start`` in ``direction`` until a hit (``hitFound``)."""
        with self._lock:
            rid = self._request
        self.model.submit("search", self._job_search, int(start), 1 if direction >= 0 else -1, rid,
                          context="Searching for a hit")

    def cancel(self) -> None:
        """Drop queued work (prefetch, search, backlog); running model calls finish but are ignored."""
        with self._lock:
            self._request += 1
            self._backlog.clear()
        self.model.cancel("prefetch")
        self.model.cancel("search")
        self.model.cancel("backlog")
        self.reader.cancel("prefetch")
        self.status.emit("")

    # --- helpers (any thread) -------------------------------------------------------------------------
    def _stale(self, rid: int) -> bool:
        return rid != self._request

    def _result_key(self) -> tuple:
        return (self._generation, self._finder.algorithm)

    def _fingerprint(self) -> tuple:
        return analysis_fingerprint(self._finder, self._mask)

    def _rebuild_analyzer(self, keep_predictor: bool = True, new_run: bool = False) -> None:
        """A new analyzer for the current run settings (call with the lock held); the run's
        hot-pixel statistics carry over unless ``new_run``."""
        old = self._analyzer
        ms = self._model_settings
        kwargs = dict(weights=ms.weights, device=ms.device, geometry=self._run.geometry if self._run else None,
                      finder=copy.deepcopy(self._finder), mask=copy.deepcopy(self._mask),
                      static_mask=self._effective_static())
        if keep_predictor and old is not None and getattr(old, "_predictor", None) is not None:
            kwargs["predictor"] = old._predictor
        if self._analyzer_factory is not None:
            self._analyzer = self._analyzer_factory(**kwargs)
        else:
            from ..pipeline.analyzer import FrameAnalyzer

            self._analyzer = FrameAnalyzer(self._finder.algorithm, backend=ms.backend, **kwargs)
        if not new_run and old is not None and getattr(old, "hot_pixels", None) is not None:
            self._analyzer.hot_pixels = old.hot_pixels
        self._generation += 1
        self._results.clear()
        self._store.clear()
        self._plan.reset()
        self._backlog.clear()

    def _frame(self, index: int):
        """Frame ``index`` of the open run, from the frame cache or read from the file.  The model
        and post threads read too, while the reader thread may open another run: that open
        closes this run's file under the read (which fails: the file looks corrupt) or the frame
        read comes too late (it is the last run's).  Either way :class:`StaleRead` drops the
        frame: no error about the last run, nothing of it shown or stored as the new run's.  A
        frame of the open run that cannot be read raises its own error."""
        with self._lock:
            f = self._frames.fetch(index)
            src = self._source
        if f is not None:
            return f
        if src is None:
            raise InputError("no run is open")
        try:
            with self._source_lock:
                f = src[index]
        except Exception:
            self._drop_if_replaced(src, index)
            raise
        with self._lock:
            self.stats.reads += 1
            self._drop_if_replaced(src, index)
            self._frames.put(index, f)
        return f

    def _drop_if_replaced(self, src, index: int) -> None:
        """Raise :class:`StaleRead` when ``src``, read for frame ``index``, is no longer the open run."""
        with self._lock:
            if src is not self._source:
                self.stats.dropped_stale += 1
                raise StaleRead(f"frame {index} was read for a run replaced since")

    def _view(self, index: int):
        with self._lock:
            key = (index, self._display, self._manual_levels, self._generation)
            v = self._views.fetch(key)
            log_scale, pct, mode = self._display
            manual = self._manual_levels
            run = self._run
        if v is not None:
            return v
        frame = self._frame(index)
        an = self._analyzer
        geom = an.geometry_for(frame) if an is not None else (run.geometry if run else None)
        v = build_frame_view(index, frame, geom, log_scale=log_scale, percentiles=pct, levels=manual, level_mode=mode)
        with self._lock:
            self._views.put(key, v)
        return v

    def _emit_overlay(self, index: int, result, version: int) -> None:
        view = self._view(index)
        with self._lock:
            static = self._effective_static()
        ov = build_overlay(index, view.frame, result, view.mapper, static, settings_version=version)
        if index == self._wanted:
            self.overlayReady.emit(ov)

    def _request_result(self, index: int, rid: int) -> None:
        """Make sure frame ``index`` gets an overlay: from the cache, re-thresholded or analysed."""
        with self._lock:
            c = self._results.get(index)
            key = self._result_key()
            version = self._version
            if c is not None and c.key == key:
                if c.version == version:
                    result = c.result
                else:
                    self.post.submit("rethreshold", self._job_rethreshold, index, context=f"Frame {index}")
                    return
            else:
                result = None
                stored = self._store.get(index, key, self._fingerprint())
                if stored is not None:  # analysed before (e.g. in the background): no model run
                    result = result_of(stored, self._finder.min_peaks_for_hit)
                elif self._in_flight == (index, key):
                    return  # the model is on it; it emits when done
        if result is not None:
            self._emit_overlay(index, result, version)
            return
        if self._finder.algorithm == "peaknet" and self._model_error is not None:
            return
        self.model.submit("current", self._job_analyze, index, rid, "current", context=f"Analysing frame {index}")
