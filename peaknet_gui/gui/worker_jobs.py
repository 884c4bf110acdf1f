"""The jobs of :class:`~.worker.AnalysisWorker`, run in its reader, model and post threads.

A mixin: the methods use the worker's state (``_lock``, caches, ``_source``, the analyzer) and
signals.  Every job checks, under the lock, that what it computed still belongs to the current
run, settings and shown frame before it caches or emits anything.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Optional

from ..errors import InputError, ModelError, PeakNetError
from .background import analysis_fingerprint, result_of
from .runs import RunRequest, open_run_request, read_geometry_for, static_mask_for

log = logging.getLogger(__name__)

GUI_PRIME_FRAMES = 8  # frames read at run open for the hot-pixel statistics (the rest follow as analysed)
NEAR = 2  # background results this close to the shown frame keep their probabilities (sliders, play)


@dataclass
class _CachedResult:
    key: tuple  # (analyzer generation, algorithm)
    version: int  # settings version the result was made with
    result: object


class WorkerJobs:
    def _job_open(self, job, request: RunRequest) -> None:
        from ..sources import AmbiguousDatasetError

        try:
            source, info = open_run_request(request, progress=self._open_progress)
        except AmbiguousDatasetError as e:
            self.status.emit("")
            self.datasetNeeded.emit(request, list(e.candidates))
            self._resume()
            return
        except BaseException:
            self._resume()  # the run on screen stays as it was: its work (cancelled by open_run) goes on
            raise
        static, warning = static_mask_for(info)
        with self._lock:
            old = self._source
            self._source, self._run, self._static = source, info, static
            self._frames.clear()
            self._views.clear()
            self._wanted = -1
            self._request += 1
            self._reported_device = False
            self._rebuild_analyzer(keep_predictor=True, new_run=True)
            an = self._analyzer
        self._prime_hot_pixels(source, an)
        if old is not None:
            try:
                old.close()
            except Exception:  # a stale handle must not stop the new run
                pass
        if warning:
            self.warning.emit(warning)
        self.status.emit("")
        self.runOpened.emit(info)
        self.kick_background()

    def _open_progress(self, done: int, total: int) -> None:
        """The demo run being generated (first start): shown in the status bar."""
        self.openProgress.emit(int(done), int(total))
        self.status.emit(f"Generating the demo run (first start only): frame {done} of {total}\u2026")

    def _resume(self) -> None:
        """After an open that did not happen: the shown frame gets its overlay, the background goes on."""
        with self._lock:
            index = self._wanted
            has_run = self._source is not None
        if has_run and index >= 0:
            self.show(index)
        self.kick_background()

    def _prime_hot_pixels(self, source, analyzer) -> None:
        """Learn the new run's hot and dead pixels from a few frames spread over it before the
        first frame is analysed (reader thread; unreadable frames are left to the browser)."""
        from ..pipeline.hot_scan import prime_hot_pixels

        if analyzer is None or getattr(analyzer, "hot_pixels", None) is None:
            return
        try:
            with self._source_lock:
                prime_hot_pixels(source, analyzer, range(len(source)), max_frames=GUI_PRIME_FRAMES)
        except PeakNetError as e:  # the frames are read again when shown: their errors surface there
            log.debug("hot-pixel priming stopped: %s", e)

    def _job_geometry(self, job, path) -> None:
        with self._lock:
            run = self._run
        if run is None:
            raise InputError("open a run before choosing a geometry")
        frame = self._frame(self._wanted if self._wanted >= 0 else 0)
        geom, origin = read_geometry_for(path, self._source, frame)
        info = run.with_geometry(geom, origin, path if isinstance(path, str) else None)
        static, warning = static_mask_for(info)
        with self._lock:
            self._run, self._static = info, static
            self._views.clear()
            self._rebuild_analyzer(keep_predictor=True)
        if warning:
            self.warning.emit(warning)
        self.geometryChanged.emit(geom)
        self.show(self._wanted if self._wanted >= 0 else 0)

    def _job_mask_file(self, job, path: Optional[str]) -> None:
        with self._lock:
            run = self._run
        if run is None:
            raise InputError("open a run before choosing a mask file")
        info = run.with_mask_file(path)
        static, warning = static_mask_for(info, strict=True)
        with self._lock:
            self._run, self._static = info, static
            self._rebuild_analyzer(keep_predictor=True)
        self.show(self._wanted if self._wanted >= 0 else 0)

    def _job_show(self, job, index: int, rid: int) -> None:
        view = self._view(index)
        if self._stale(rid):
            self.stats.dropped_stale += 1
            return
        self.frameReady.emit(view)
        self._request_result(index, rid)
        nxt = index + self._direction  # read ahead: the next step shows a ready image
        with self._lock:
            n = len(self._source) if self._source is not None else 0
        if 0 <= nxt < n:
            self.reader.submit("ahead", self._job_read_ahead, nxt, context=f"Reading frame {nxt}")
        self.kick_background()

    def _job_read_ahead(self, job, index: int) -> None:
        try:
            self._view(index)
        except PeakNetError:
            pass  # a bad frame: its error comes when it is shown

    def _analyze(self, index: int, purpose: str, frame=None, read_for: Optional[tuple] = None):
        """Run the analyzer on one frame, cache the result and, when the frame is the one on
        screen, deliver its overlay.  Returns (result, settings version); (None, v) when the model
        cannot run (its error was reported before) or ``frame`` is stale.  Background frames
        (``purpose`` "background", read by the caller) keep only their compact result unless they
        are near the frame on screen.  ``read_for``: the result key the caller read ``frame``
        for; when another run (geometry, mask, model) came meanwhile the frame may be the last
        run's, and analysing it with the new analyzer would store it as the new run's frame."""
        frame = self._frame(index) if frame is None else frame
        with self._lock:
            an = self._analyzer
            key = self._result_key()
            if read_for is not None and read_for != key:
                self.stats.dropped_stale += 1
                return None, self._version
            fingerprint = self._fingerprint()
            version = self._version
            finder, mask = copy.deepcopy(self._finder), copy.deepcopy(self._mask)
            if finder.algorithm == "peaknet" and self._model_error is not None:
                return None, version
            self._in_flight = (index, key)
        result = None
        try:
            an.finder, an.mask = finder, mask
            an.algorithm = finder.algorithm
            loading = finder.algorithm == "peaknet" and not getattr(an, "model_loaded", True)
            if loading:
                self.status.emit("Loading the PeakNet model\u2026")
            result = an.analyze([frame])[0]
            if loading:
                self.status.emit("")
        except ModelError as e:
            with self._lock:
                self._model_error = str(e)
            raise
        finally:
            with self._lock:
                current = key == self._result_key()
                if result is not None and current:
                    if purpose != "background" or abs(index - self._wanted) <= NEAR:
                        self._results.put(index, _CachedResult(key, version, result))
                    self._store.put(index, key, fingerprint, frame, result)
                self._in_flight = None
        self.stats.analyses += 1
        if not current:  # another run, geometry or algorithm meanwhile: the result means nothing now
            self.stats.dropped_stale += 1
            return None, version
        self._report_device(an)
        self.summaryReady.emit(index, result.n_peaks, bool(result.hit), result.total_ms, fingerprint)
        if purpose not in ("search", "background"):
            self.status.emit("")
        self._deliver(index, result, version)
        return result, version

    def _report_device(self, an) -> None:
        """Device and model once per analyzer, and every new warning of the predictor (e.g. a
        CUDA out-of-memory fallback to the CPU, after which the device is reported again)."""
        pred = getattr(an, "_predictor", None)
        warnings = list(getattr(pred, "warnings", None) or [])
        new = warnings[self._warnings_seen:] if pred is self._warned_predictor else warnings
        self._warned_predictor, self._warnings_seen = pred, len(warnings)
        if not self._reported_device or new:
            self._reported_device = True
            try:
                self.modelReady.emit(an.device_name, an.model_info)
            except PeakNetError:
                pass
        for w in new:
            self.warning.emit(str(w))

    def _deliver(self, index: int, result, version: int) -> None:
        """Overlay of a new result for the frame on screen (re-thresholded if settings moved on)."""
        if index != self._wanted:
            return
        if version != self._version:
            self.post.submit("rethreshold", self._job_rethreshold, index, context=f"Frame {index}")
        else:
            self._emit_overlay(index, result, version)

    def _job_analyze(self, job, index: int, rid: int, purpose: str) -> None:
        if purpose == "current" and index != self._wanted:
            self.stats.dropped_stale += 1
            return
        result, _ = self._analyze(index, purpose)
        step = self.prefetch_step
        if result is None or not step or index != self._wanted:
            return
        with self._lock:
            n = len(self._source) if self._source is not None else 0
        nxt = index + step
        if 0 <= nxt < n:
            self.reader.submit("prefetch", self._job_prefetch_read, nxt, context=f"Reading frame {nxt}")

    def _done(self, index: int) -> bool:
        """Frame ``index`` has a result for the current settings (or one to re-threshold)."""
        with self._lock:
            c = self._results.get(index)
            key = self._result_key()
            return (c is not None and c.key == key) or self._store.get(index, key, self._fingerprint()) is not None

    def _job_prefetch_read(self, job, index: int) -> None:
        self._view(index)
        with self._lock:
            if self._done(index) or (self._in_flight is not None and self._in_flight[0] == index):
                return
        self.model.submit("prefetch", self._job_prefetch_model, index, context=f"Analysing frame {index}")

    def _job_prefetch_model(self, job, index: int) -> None:
        if self._done(index):
            return
        self._analyze(index, "prefetch")

    def _job_rethreshold(self, job, index: int) -> None:
        with self._lock:
            c = self._results.get(index)
            frame = self._frames.get(index)
            key = self._result_key()
            an = self._analyzer
            version = self._version
            finder, mask = copy.deepcopy(self._finder), copy.deepcopy(self._mask)
        if c is None or c.key != key:
            self._request_result(index, self._request)
            return
        if frame is None:
            frame = self._frame(index)
        result = an.rethreshold(c.result, frame, finder, mask)
        self.stats.rethresholds += 1
        fingerprint = analysis_fingerprint(finder, mask)
        with self._lock:
            if key != self._result_key():
                return
            self._results.put(index, _CachedResult(key, version, result))
            self._store.put(index, key, fingerprint, frame, result)
        self.summaryReady.emit(index, result.n_peaks, bool(result.hit), result.total_ms, fingerprint)
        if index == self._wanted and version == self._version:
            self._emit_overlay(index, result, version)

    def _job_refresh(self, job, analyse_new: bool) -> None:
        with self._lock:
            src = self._source
        if src is None:
            return
        with self._source_lock:
            before = len(src)
            src.refresh()
            after = len(src)
        if after > before:
            if analyse_new:
                with self._lock:
                    self._backlog.extend(range(before, after))
                    while len(self._backlog) > 64:  # far behind: analyse the newest frames
                        self._backlog.popleft()
                self.model.submit("backlog", self._job_backlog, context="Analysing new frames")
            self.runGrew.emit(after)

    def _job_backlog(self, job) -> None:
        with self._lock:
            if not self._backlog:
                return
            index = self._backlog.pop()  # newest first
        if not self._done(index):
            self._analyze(index, "backlog")
        with self._lock:
            more = bool(self._backlog)
        if more:
            self.model.submit("backlog", self._job_backlog, context="Analysing new frames")

    def _job_search(self, job, start: int, direction: int, rid: int) -> None:
        with self._lock:
            n = len(self._source) if self._source is not None else 0
        i = start
        while 0 <= i < n:
            if job.cancelled or self._stale(rid):
                self.status.emit("")
                return
            cached = self.cached_result(i)
            if cached is None:
                self.status.emit(f"Searching for a hit: frame {i}\u2026")
                try:
                    cached, _ = self._analyze(i, "search")
                except InputError as e:  # an unreadable frame: note it, keep searching
                    self.warning.emit(str(e))
                    cached = None
                if cached is None and self._model_error is not None:
                    return
            if cached is not None and cached.hit:
                self.status.emit("")
                self.hitFound.emit(i)
                return
            i += direction
        self.status.emit("")
        self.hitFound.emit(-1)

    # --- the whole run, in the background ------------------------------------------------------------
    def _job_background(self, job) -> None:
        """Analyse one frame of the run not analysed yet (read-ahead order from the shown frame),
        then queue the next: whatever the user asks for runs between two background frames."""
        if not self.background_enabled or job.cancelled:
            return
        with self._lock:
            src = self._source
            if src is None or (self._finder.algorithm == "peaknet" and self._model_error is not None):
                return
            n = len(src)
            origin = self._wanted if self._wanted >= 0 else 0
            key, fingerprint = self._result_key(), self._fingerprint()
            done = self._store.done(key, fingerprint)
            index = self._plan.next(n, origin, done.__contains__)
            c = self._results.get(index) if index is not None else None
        if index is None:
            self.backgroundProgress.emit(len(self._store.done(key, fingerprint)), n)
            return
        if c is not None and c.key == key:  # probabilities at hand: re-threshold, no model run
            self._job_rethreshold(job, index)
        else:
            try:
                self._analyse_in_background(src, index, key)
            except ModelError:
                return  # reported when the frame on screen is analysed
        with self._lock:
            still = key == self._result_key() and fingerprint == self._fingerprint()
        if not still:
            self._plan.retry(index)
        self.stats.extra["background"] = self.stats.extra.get("background", 0) + 1
        self.backgroundProgress.emit(len(self._store.done(*self._current_key())), n)
        self.kick_background()

    def _analyse_in_background(self, src, index: int, key: tuple) -> None:
        """Read frame ``index`` of ``src`` (the run as the job found it, for result ``key``) and
        analyse it.  Another run may open between the job's look and the read: its open closes
        ``src`` under the job (the read fails) or the frame read comes too late (it is dropped)."""
        try:
            with self._source_lock:
                frame = src[index]  # not through the frame cache: the browser's frames stay there
            self.stats.reads += 1
            self._analyze(index, "background", frame=frame, read_for=key)
        except ModelError:
            raise  # the caller stops: reported when the frame on screen is analysed
        except PeakNetError as e:  # an unreadable frame: the browser reports it when shown
            log.debug("background analysis skips frame %d: %s", index, e)
            self._skip_unreadable(index, key)

    def _skip_unreadable(self, index: int, key: tuple) -> None:
        """The background leaves frame ``index`` for good -- only while ``key`` is still current:
        the plan was reset for the run opened since, and a frame of the last run (whose file
        that open closed) marked unreadable there would never be analysed in the new run."""
        with self._lock:
            if key == self._result_key():
                self._plan.skipped.add(index)

    def _current_key(self) -> tuple:
        with self._lock:
            return self._result_key(), self._fingerprint()
