"""The driver: schedule a run's frames on Ray workers, write the results in event order.

:func:`run_on_ray` is the cluster twin of :func:`peaknet_gui.pipeline.run.run_analysis`: the same
sink (an :class:`~peaknet_gui.export.session.ExportSession`), the same progress and cancellation
hooks, the same guarantees -- the sink is closed in every case (end, Ctrl-C, SIGTERM, an error),
so the files hold exactly the frames done, complete and valid; unreadable frames are skipped and
listed.  The workers read the frames; the driver reads only the pixels of the hits it copies into
hits.cxi.  See :mod:`peaknet_gui.cluster` for the design and docs/cluster.md for the figures.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from ..errors import ExportError, PeakNetError
from ..pipeline.run import RunProgress, finish_sink, is_cancelled
from .compact import CompactResult
from .connection import RayConnection, plan_workers
from .options import ClusterError, ClusterOptions
from .pool import READY, Call, WorkerPool
from .schedule import Schedule, Skipped
from .spec import WorkerSpec
from .summary import ClusterSummary
from .worker import FrameWorker

try:
    from ..errors import Terminated
except ImportError:  # pragma: no cover - older errors module
    class Terminated(KeyboardInterrupt):
        """SIGTERM, handled like Ctrl-C."""

log = logging.getLogger(__name__)


@dataclass
class ClusterProgress(RunProgress):
    """:class:`RunProgress` with the workers' frames/s and the retries so far."""

    worker_rates: dict = field(default_factory=dict)  # rank -> frames/s
    retried: int = 0
    workers: list = field(default_factory=list)  # WorkerStats


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main thread while inside,
    unless someone already handles it (``peaknet``'s main does): a batch system's kill then
    closes the files as Ctrl-C does.  Outside the main thread, nothing."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
            signal.SIG_DFL, None):
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _skip_in_sink(sink, event, message: str) -> None:
    if sink is not None and hasattr(sink, "add_skipped"):
        sink.add_skipped(event.path, event.index, message)


def _sink_formats(sink) -> set:
    return set(getattr(sink, "formats", ()) or ())


def run_on_ray(
    source,
    spec: WorkerSpec,
    sink=None,
    *,
    indices: Optional[Iterable[int]] = None,
    options: Optional[ClusterOptions] = None,
    progress: Optional[Callable[[ClusterProgress], None]] = None,
    cancel=None,
    limit: Optional[int] = None,
    worker_class=None,
) -> ClusterSummary:
    """Analyse ``indices`` (default: all) of ``source`` on Ray workers and hand each result, in
    event order, to ``sink.add(frame, result)``; with ``options.follow`` keep taking the frames
    that appear (up to ``limit`` in all).  ``worker_class``: FrameWorker or a subclass.  Returns a
    :class:`ClusterSummary` (its clock starts when the first worker is ready); raises
    :class:`ClusterError` when no worker can run (after closing the sink)."""
    options = options or ClusterOptions()
    options.check()
    formats = _sink_formats(sink)
    needs_pixels = "cxi" in formats
    needs_mask = bool(formats & {"cxi", "mask"}) or sink is None
    summary = ClusterSummary(algorithm=spec.algorithm)
    schedule = Schedule(source.event, lambda ev: os.path.abspath(ev.path))
    schedule.extend(list(range(len(source))) if indices is None else indices)
    t_start = time.perf_counter()
    failure: Optional[BaseException] = None
    try:
        with sigterm_as_interrupt(), RayConnection(options) as ray:
            summary.cluster = _describe(ray, options)
            n = plan_workers(ray, options)
            schedule.window = max(64, 8 * n * options.in_flight * (options.batch or spec.batch_size or 8))
            pool = WorkerPool(ray, spec, options, worker_class or FrameWorker)
            pool.start(n)
            loop = _Loop(ray, pool, schedule, source, sink, summary, options, progress, cancel, limit,
                         needs_pixels, needs_mask, spec)
            try:
                loop.run()
            finally:
                t_start = loop.t_start
                summary.workers = [s.stats for s in pool.slots]
                summary.retried, summary.reread, summary.workers_lost = schedule.retried, schedule.reread, pool.lost
                pool.stop()
    except KeyboardInterrupt as e:
        summary.interrupted = True
        summary.terminated = isinstance(e, Terminated)
    except ExportError:  # a write failed: nothing is replaced, as in a local run
        if sink is not None and hasattr(sink, "abort"):
            sink.abort()
            sink = None
        raise
    except BaseException as e:
        failure = e
        raise
    finally:
        summary.wall_s = time.perf_counter() - t_start
        if summary.device == "" and summary.workers:
            summary.device = ", ".join(sorted({w.device for w in summary.workers if w.device}))
        if sink is not None:
            if hasattr(sink, "settings") and isinstance(sink.settings, dict):
                sink.settings["cluster"] = summary.cluster_dict()
            stopped = summary.interrupted or summary.cancelled
            finish_sink(sink, "failed" if failure is not None else "interrupted" if stopped else "complete")
    return summary


def _describe(ray, options: ClusterOptions) -> str:
    try:
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    except Exception:
        nodes = 0
    where = options.address or "local"
    return f"ray {getattr(ray, '__version__', '')} ({where}, {nodes} node{'s' if nodes != 1 else ''})"


class _Loop:
    """One run's main loop (see run_on_ray)."""

    def __init__(self, ray, pool: WorkerPool, schedule: Schedule, source, sink, summary: ClusterSummary,
                 options: ClusterOptions, progress, cancel, limit, needs_pixels: bool, needs_mask: bool, spec):
        self.ray, self.pool, self.schedule, self.source, self.sink = ray, pool, schedule, source, sink
        self.summary, self.options, self.progress, self.cancel, self.limit = summary, options, progress, cancel, limit
        self.needs_pixels, self.needs_mask = needs_pixels, needs_mask
        # frames per call: --batch-size, else the analyzer's default (8 on a GPU: one model batch)
        self.batch = max(1, int(options.batch or spec.batch_size or (8 if options.gpus_per_worker else 1)))
        self.t_start = time.perf_counter()
        self.last_growth = time.perf_counter()
        self.last_refresh = 0.0
        if limit is not None and schedule.total > limit:
            del schedule.indices[limit:]

    def run(self) -> None:
        """Until every frame is written (and, following, none came for a while); ``t_start``
        becomes the time the first worker was ready."""
        started = False
        while True:
            if is_cancelled(self.cancel):
                self.summary.cancelled = True
                return
            if self.options.follow:
                self._follow()
            why = self.pool.check_alive()
            if why and self.schedule.unfinished:
                raise ClusterError(f"{why}; {self.schedule.unfinished} frame(s) not done")
            if not started and time.perf_counter() - self.t_start > self.options.start_timeout_s:
                raise ClusterError(f"no worker started within {self.options.start_timeout_s:g} s: are the cluster's "
                                   "CPUs/GPUs taken by other jobs? (ray status shows them)")
            self.schedule.drop_orphans(self.pool.live_ranks())
            self._submit()
            refs = self.pool.pending_refs()
            if not refs:
                if self.schedule.unfinished == 0 and not self._keep_following():
                    return
                time.sleep(min(0.05, self.options.poll_s))
                continue
            done, rest = self.ray.wait(refs, num_returns=1, timeout=self._wait_s(started))
            if done and rest:  # and whatever else is ready already
                done += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            for ref in done:
                slot = self.pool.slot_of_setup(ref)
                if slot is not None:
                    self.pool.setup_done(slot)
                    if slot.state == READY and not started:
                        started = True
                        self.t_start = self.last_growth = time.perf_counter()  # follow: idle from here
                    continue
                self._collect(ref)
            self._write_ready()

    def _wait_s(self, started: bool) -> float:
        return 0.2 if started else 1.0

    def _keep_following(self) -> bool:
        if not self.options.follow:
            return False
        if self.limit is not None and self.schedule.total >= self.limit:
            return False
        return time.perf_counter() - self.last_growth < self.options.follow_idle_s

    def _follow(self) -> None:
        now = time.perf_counter()
        if now - self.last_refresh < self.options.poll_s:
            return
        self.last_refresh = now
        if self.limit is not None and self.schedule.total >= self.limit:
            return
        before = len(self.source)
        try:
            self.source.refresh()
        except PeakNetError as e:
            log.warning("following %s: %s", getattr(self.source, "description", "the run"), e)
            return
        after = len(self.source)
        if after > before:
            top = after if self.limit is None else min(after, before + self.limit - self.schedule.total)
            self.schedule.extend(range(before, top))
            self.last_growth = now

    def _submit(self) -> None:
        for slot in self.pool.ready_slots():
            while slot.in_flight < self.options.in_flight:
                tasks = self.schedule.take(slot.rank, self.batch)
                if not tasks:
                    break
                t0 = time.perf_counter()
                ref = slot.actor.analyze.remote(tasks)
                now = time.perf_counter()
                self.summary.driver_ray_ms += 1e3 * (now - t0)
                slot.calls[ref] = Call(slot, tasks, now)

    def _collect(self, ref) -> None:
        call = self.pool.call_of(ref)
        if call is None:
            return
        slot = call.slot
        t0 = time.perf_counter()
        try:
            reply = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as e:
            tasks = self.pool.mark_lost(slot, _short(e))
            self.schedule.requeue_lost(tasks + [t for t in call.tasks if t not in tasks])
            return
        except self.ray.exceptions.RayError as e:  # the call itself failed (not the worker)
            for t in call.tasks:
                self._failed(t, slot.rank, f"worker {slot.rank} ({slot.stats.host or '?'}): {_short(e)}", True)
            return
        finally:
            self.summary.driver_ray_ms += 1e3 * (time.perf_counter() - t0)
        st = slot.stats
        st.calls += 1
        st.frames += len(reply.results)
        st.busy_ms += reply.wall_ms
        for res in reply.results:
            self.summary.result_bytes += res.nbytes
            self.schedule.deliver(res)
        for f in reply.failures:
            self._failed(f.task, slot.rank, f.message, f.unexpected)

    def _failed(self, task, rank: int, message: str, unexpected: bool) -> None:
        """A frame failed on worker ``rank``: another worker tries it; when that fails too it is
        skipped (unreadable) or, for an unexpected error, the run stops as a local run would."""
        if not self.schedule.failed(task, rank, message, self.pool.live_ranks()) and unexpected:
            raise ClusterError(f"{task.event.lst_line()}: {message} (not a problem of the input: a bug or a broken "
                               "installation on the workers; the frames done are kept)")

    def _write_ready(self) -> None:
        for item in self.schedule.ready():
            if isinstance(item, Skipped):
                line = item.task.event.lst_line()
                log.warning("skipping frame %s: %s", line, item.message)
                self.summary.errors.append((line, item.message))
                _skip_in_sink(self.sink, item.task.event, item.message)
                continue
            self._write(item)

    def _write(self, item: CompactResult) -> None:
        t0 = time.perf_counter()
        data = None
        if item.hit and self.needs_pixels and self.sink is not None:
            try:
                fr = self.source[item.index]
                data = fr.data
                self.summary.driver_reads += 1
            except PeakNetError as e:
                msg = f"the driver cannot read this hit for hits.cxi: {e}"
                log.warning("skipping frame %s: %s", item.event.lst_line(), msg)
                self.summary.errors.append((item.event.lst_line(), msg))
                _skip_in_sink(self.sink, item.event, msg)
                return
        frame = item.frame(data)
        result = item.result(with_mask=self.needs_mask)
        if self.sink is not None:
            t1 = time.perf_counter()
            self.sink.add(frame, result)
            result.timings_ms["export"] = 1e3 * (time.perf_counter() - t1)
        s = self.summary
        s.count(result)
        s.write_ms += 1e3 * (time.perf_counter() - t0)
        if not s.device and result.device:
            s.device = result.device
        if self.progress is not None:
            elapsed = time.perf_counter() - self.t_start
            rates = {w.rank: w.frames_per_s(elapsed) for w in (sl.stats for sl in self.pool.slots) if w.error is None}
            self.progress(ClusterProgress(s.frames, self.schedule.total, s.hits, s.peaks, elapsed, result,
                                          worker_rates=rates, retried=self.schedule.retried,
                                          workers=[sl.stats for sl in self.pool.slots]))


def _short(e: BaseException) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return lines[0][:300] if lines else type(e).__name__
