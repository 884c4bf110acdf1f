"""The run loop: every frame of a run through a FrameAnalyzer into a sink (e.g. an ExportSession).

Used by ``peaknet find`` and by the GUI's "export all frames".  A background thread reads
frames and prepares them (normalisation) while the model runs on the previous batch.  A
progress callback sees every frame's result; a cancellation flag (``threading.Event`` or any
callable returning True) stops the loop between batches.  Ctrl-C (KeyboardInterrupt, also when
raised by the progress callback) stops it too.  In every case the sink is closed, so the
files hold exactly the frames done, and a :class:`RunSummary` comes back (``interrupted`` /
``cancelled`` say why it stopped early; SIGTERM, raised as :class:`~peaknet_gui.errors.Terminated`
by the CLI, is an interruption too).  Frames that cannot be read are skipped with a warning,
listed in ``RunSummary.errors`` and handed to ``sink.add_skipped`` (summary.json ``skipped``).
A write error of the sink (:class:`~peaknet_gui.errors.WriteError`: no space, I/O error)
aborts the sink (nothing replaced) and is raised; any other error closes it with status
"failed" (the frames done are kept) and is raised.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence

from ..errors import PeakNetError, Terminated, WriteError
from .analyzer import FrameAnalyzer
from .hot_scan import prime_hot_pixels
from .result import FrameResult

log = logging.getLogger(__name__)

STAGES = ("read", "normalise", "model", "postprocess", "export")


@dataclass
class RunProgress:
    """Where the run stands after a frame."""

    done: int
    total: int
    hits: int
    peaks: int
    elapsed_s: float
    result: Optional[FrameResult] = None

    @property
    def frames_per_s(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.done if self.done else 0.0


@dataclass
class RunSummary:
    """Totals of a run (or of the part done before it stopped)."""

    frames: int = 0
    hits: int = 0
    peaks: int = 0
    ring_spots: int = 0  # peaks dropped as powder-ring spots (masked instead)
    frames_with_rings: int = 0
    wall_s: float = 0.0
    device: str = ""
    algorithm: str = ""
    interrupted: bool = False
    terminated: bool = False  # stopped by SIGTERM
    cancelled: bool = False
    errors: list = field(default_factory=list)  # (event line, message)
    stage_ms: dict = field(default_factory=dict)  # summed over frames
    hot_pixels: Optional[dict] = None  # the run's hot/dead pixels (masks.hot_pixels.HotPixelReport.as_dict)
    dropped: int = 0  # live streams: frames that left the in-memory window before they were analysed
    stopped_because: str = ""  # live streams: why the run ended (series end, frame count, stall)
    gain_untrusted: int = 0  # frames judged by the weights' point for an unreliable gain (peaks/gain_check.py)
    gain_warning: str = ""  # why, as the first such frame said it

    def count(self, res) -> None:
        """Add one analysed frame's totals (hits, peaks, ring spots, gain check, stage times)."""
        self.frames += 1
        self.hits += int(res.hit)
        self.peaks += res.n_peaks
        self.ring_spots += len(res.ring_spots)
        self.frames_with_rings += int(len(res.ring_spots) > 0)
        warning = getattr(res, "gain_warning", "")
        if warning:
            self.gain_untrusted += 1
            self.gain_warning = self.gain_warning or warning
        for k, v in res.timings_ms.items():
            self.stage_ms[k] = self.stage_ms.get(k, 0.0) + float(v)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.frames if self.frames else 0.0

    @property
    def mean_peaks(self) -> float:
        return self.peaks / self.frames if self.frames else 0.0

    @property
    def ms_per_frame(self) -> float:
        """Wall-clock milliseconds per frame (all stages, overlapped as they ran)."""
        return 1e3 * self.wall_s / self.frames if self.frames else 0.0

    def mean_stage_ms(self) -> dict:
        """Mean milliseconds per frame of each stage that ran (pipeline order)."""
        if not self.frames:
            return {}
        keys = [k for k in STAGES if k in self.stage_ms] + [k for k in self.stage_ms if k not in STAGES]
        return {k: self.stage_ms[k] / self.frames for k in keys}

    def as_dict(self) -> dict:
        return {
            "frames": self.frames,
            "hits": self.hits,
            "hit_rate": self.hit_rate,
            "mean_peaks": self.mean_peaks,
            "ring_spots": self.ring_spots,
            "frames_with_rings": self.frames_with_rings,
            "ms_per_frame": self.ms_per_frame,
            "wall_s": self.wall_s,
            "device": self.device,
            "algorithm": self.algorithm,
            "interrupted": self.interrupted,
            "terminated": self.terminated,
            "cancelled": self.cancelled,
            "errors": [list(e) for e in self.errors],
            "mean_stage_ms": self.mean_stage_ms(),
            "hot_pixels": self.hot_pixels,
            "dropped": self.dropped,
            "stopped_because": self.stopped_because,
            "gain_untrusted_frames": self.gain_untrusted,
            "gain_warning": self.gain_warning,
        }

    def format(self) -> str:
        lines = [
            f"frames      {self.frames}" + ("  (terminated)" if self.terminated else "  (interrupted)" if self.interrupted else "  (cancelled)" if self.cancelled else ""),
            f"hits        {self.hits}  (hit rate {100 * self.hit_rate:.1f} %)",
            f"mean peaks  {self.mean_peaks:.1f}"
            + (f"  ({self.ring_spots} powder-ring spots on {self.frames_with_rings} frames masked, not counted)"
               if self.ring_spots else ""),
            f"ms/frame    {self.ms_per_frame:.1f}  ("
            + ", ".join(f"{k} {v:.1f}" for k, v in self.mean_stage_ms().items())
            + ")",
            f"device      {self.device}  [{self.algorithm}]",
        ]
        hp = self.hot_pixels or {}
        if hp.get("hot_pixels") or hp.get("dead_pixels"):
            lines.append(f"hot pixels  {hp.get('hot_pixels')} hot, {hp.get('dead_pixels')} dead (from {hp.get('frames')} frames; "
                         "masked, never peaks)")
        if self.gain_untrusted:
            lines.append(f"gain        {self.gain_untrusted} frame(s) judged by the point for an unreliable gain: "
                         + self.gain_warning.split(": ", 1)[-1])
        if self.errors:
            lines.append(f"skipped     {len(self.errors)} unreadable frame(s)")
        if self.dropped or self.stopped_because:
            lines.append(f"stream      {self.dropped} frame(s) dropped (not analysed)"
                         + (f"; stopped: {self.stopped_because}" if self.stopped_because else ""))
        return "\n".join(lines)


_END = object()


class _Prefetcher:
    """Reads and prepares frames in a background thread, in order, up to ``depth`` ahead."""

    def __init__(self, source, indices: Sequence[int], analyzer: FrameAnalyzer, depth: int):
        self._q: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(source, list(indices), analyzer), name="peaknet-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, source, indices, analyzer):
        for i in indices:
            if self._stop.is_set():
                return
            t0 = time.perf_counter()
            try:
                frame = source[i]
                t1 = time.perf_counter()
                prepared = analyzer.prepare(frame)
                item = (i, frame, prepared, 1e3 * (t1 - t0), None)
            except PeakNetError as e:
                item = (i, None, None, 0.0, e)
            except Exception as e:  # unexpected: hand it to the main thread, stop reading
                self._put((i, None, None, 0.0, e))
                break
            if not self._put(item):
                return
        self._put(_END)

    def get(self, timeout: float = 0.1):
        return self._q.get(timeout=timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def is_cancelled(cancel) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def run_analysis(
    source,
    analyzer: FrameAnalyzer,
    sink=None,
    *,
    indices: Optional[Iterable[int]] = None,
    batch_size: Optional[int] = None,
    progress: Optional[Callable[[RunProgress], None]] = None,
    cancel=None,
    prefetch: int = 4,
    close_sink: bool = True,
    on_error: str = "skip",
    run_mask=None,
) -> RunSummary:
    """Analyse frames ``indices`` (default: all) of ``source`` and hand each to ``sink.add(frame,
    result)``.  See the module docstring.  ``on_error="raise"`` re-raises unreadable frames.
    ``run_mask`` (a :class:`~peaknet_gui.masks.RunMaskAccumulator`) collects every frame's
    auto-mask."""
    indices = list(range(len(source))) if indices is None else list(indices)
    batch_size = max(1, int(batch_size or analyzer.default_batch_size))
    hot_report = prime_hot_pixels(source, analyzer, range(len(source)))  # the run's hot pixels, whatever part is analysed
    summary = RunSummary(algorithm=analyzer.algorithm)
    summary.hot_pixels = hot_report
    t_start = time.perf_counter()
    fetch = None
    failed = False
    try:
        if analyzer.algorithm == "peaknet":
            analyzer.predictor  # load the model before the clock and the reader start
            t_start = time.perf_counter()
        summary.device = analyzer.device_name
        fetch = _Prefetcher(source, indices, analyzer, depth=prefetch * batch_size)
        finished = False
        while not finished:
            if is_cancelled(cancel):
                summary.cancelled = True
                break
            batch = []
            while len(batch) < batch_size:
                try:
                    item = fetch.get(timeout=0.1 if batch else 0.5)
                except queue.Empty:
                    if batch or is_cancelled(cancel):
                        break
                    continue
                if item is _END:
                    finished = True
                    break
                i, frame, prepared, read_ms, err = item
                if err is not None:
                    if on_error == "raise" or not isinstance(err, PeakNetError):
                        raise err
                    _skip(source, sink, i, err, summary)
                    continue
                batch.append((frame, prepared, read_ms))
            if not batch:
                continue
            results = analyzer.analyze([b[0] for b in batch], [b[1] for b in batch])
            for (frame, _, read_ms), res in zip(batch, results):
                res.timings_ms["read"] = read_ms
                if run_mask is not None and res.artifact_mask is not None:
                    run_mask.add(res.artifact_mask)
                if sink is not None:
                    t0 = time.perf_counter()
                    sink.add(frame, res)
                    res.timings_ms["export"] = 1e3 * (time.perf_counter() - t0)
                summary.count(res)
                if progress is not None:
                    progress(RunProgress(summary.frames, len(indices), summary.hits, summary.peaks, time.perf_counter() - t_start, res))
    except KeyboardInterrupt as e:
        summary.interrupted = True
        summary.terminated = isinstance(e, Terminated)
    except WriteError:
        if fetch is not None:
            fetch.close()
            fetch = None
        if sink is not None and close_sink and hasattr(sink, "abort"):
            sink.abort()
            close_sink = False
        raise
    except BaseException:
        failed = True
        raise
    finally:
        summary.wall_s = time.perf_counter() - t_start
        if analyzer.hot_pixels is not None:
            summary.hot_pixels = analyzer.hot_pixels.report().as_dict()
        if fetch is not None:
            fetch.close()
        if sink is not None and close_sink:
            status = "failed" if failed else "interrupted" if (summary.interrupted or summary.cancelled) else "complete"
            finish_sink(sink, status)
    return summary


def _skip(source, sink, i: int, err: Exception, summary: RunSummary) -> None:
    """A frame that could not be read: warned, counted, handed to the sink."""
    try:
        ev = source.event(i)
        event, path, index = ev.lst_line(), ev.path, ev.index
    except Exception:  # noqa: BLE001 -- the event itself may be what cannot be read
        event, path, index = str(i), "", i
    log.warning("skipping frame %s: %s", event, err)
    summary.errors.append((event, str(err)))
    if sink is not None and hasattr(sink, "add_skipped"):
        sink.add_skipped(path, index, str(err))


def finish_sink(sink, status: str) -> None:
    """``sink.close(status=...)`` when the sink takes it (ExportSession), ``close(interrupted=...)``
    or ``close()`` otherwise."""
    try:
        params = inspect.signature(sink.close).parameters
    except (TypeError, ValueError):
        params = {}
    if "status" in params:
        sink.close(status=status)
    elif "interrupted" in params:
        sink.close(interrupted=status != "complete")
    else:
        sink.close()
