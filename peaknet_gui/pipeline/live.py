"""The run loop for a live stream (:class:`~peaknet_gui.sources.live.StreamRun`): analyse frames
as they arrive, until a frame count, the series end, a stall, Ctrl-C or cancellation.

Frames are taken in arrival order.  A frame that left the stream's in-memory window before its
turn (the sender outran the analysis) is counted in ``RunSummary.dropped``; a stream opened with
``every_frame=True`` never drops one (its receiver stops reading the socket while the window is
full of frames not yet analysed, so the sender's queue fills instead).  Hits are kept in the
stream's window beyond the recent frames.  The sink is closed in every case, as by
:func:`~peaknet_gui.pipeline.run.run_analysis`, so exports stay valid when the sender vanishes.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from ..errors import PeakNetError, Terminated, WriteError
from .analyzer import FrameAnalyzer
from .run import RunProgress, RunSummary, _skip, finish_sink, is_cancelled

log = logging.getLogger(__name__)


def run_stream_analysis(
    source,
    analyzer: FrameAnalyzer,
    sink=None,
    *,
    frames: Optional[int] = None,
    until_series_end: bool = False,
    idle_timeout_s: Optional[float] = 30.0,
    batch_size: Optional[int] = None,
    progress: Optional[Callable[[RunProgress], None]] = None,
    cancel=None,
    close_sink: bool = True,
    start: int = 0,
) -> RunSummary:
    """Analyse the stream's frames from ``start`` on (see the module doc).  ``frames``: stop after
    this many frames arrived (analysed + dropped); ``until_series_end``: stop when the detector
    ends a series; ``idle_timeout_s``: stop when no frame arrived for that long (None: never)."""
    batch_size = max(1, int(batch_size or analyzer.default_batch_size))
    summary = RunSummary(algorithm=analyzer.algorithm)
    failed = False
    nxt = int(start)
    release = getattr(source, "release", None) or (lambda upto: None)  # every-frame back-pressure
    last_frame_t = time.monotonic()
    t_start = time.perf_counter()
    try:
        if analyzer.algorithm == "peaknet":
            analyzer.predictor
            t_start = time.perf_counter()
        summary.device = analyzer.device_name
        while True:
            if is_cancelled(cancel):
                summary.cancelled = True
                break
            if frames is not None and summary.frames + summary.dropped + len(summary.errors) >= frames:
                summary.stopped_because = f"{frames} frames"
                break
            source.refresh()
            n = len(source)
            end = source.series_end_after(int(start)) if until_series_end else None
            if end is not None:
                n = min(n, end)  # the next series is not this run's
            if nxt >= n:
                if end is not None and nxt >= end:
                    summary.stopped_because = "series ended"
                    break
                if idle_timeout_s is not None and time.monotonic() - last_frame_t > idle_timeout_s:
                    summary.stopped_because = f"no frame for {idle_timeout_s:g} s ({source.status().state})"
                    log.warning("%s: %s", source.description, summary.stopped_because)
                    break
                source.wait(nxt + 1, 0.2)
                continue
            last_frame_t = time.monotonic()
            limit = n if frames is None else min(n, int(start) + frames)
            batch = []
            while nxt < limit and len(batch) < batch_size:
                i, nxt = nxt, nxt + 1
                if not source.available(i):
                    summary.dropped += 1
                    release(nxt)
                    continue
                t0 = time.perf_counter()
                try:
                    frame = source[i]
                except PeakNetError as e:
                    _skip(source, sink, i, e, summary)
                    continue
                finally:
                    # only this loop tells an every-frame stream that a frame is done with: a read
                    # elsewhere (the first frame's shape, its metadata) must not let it go early
                    release(nxt)
                batch.append((i, frame, 1e3 * (time.perf_counter() - t0)))
            if not batch:
                continue
            results = analyzer.analyze([b[1] for b in batch])
            for (i, frame, read_ms), res in zip(batch, results):
                res.timings_ms["read"] = read_ms
                if res.hit:
                    source.keep(i)
                if sink is not None:
                    t0 = time.perf_counter()
                    sink.add(frame, res)
                    res.timings_ms["export"] = 1e3 * (time.perf_counter() - t0)
                summary.count(res)
                if progress is not None:
                    progress(RunProgress(summary.frames, max(len(source), summary.frames), summary.hits, summary.peaks,
                                         time.perf_counter() - t_start, res))
    except KeyboardInterrupt as e:
        summary.interrupted = True
        summary.terminated = isinstance(e, Terminated)
    except WriteError:
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
        if sink is not None and close_sink:
            status = "failed" if failed else "interrupted" if (summary.interrupted or summary.cancelled) else "complete"
            finish_sink(sink, status)
    return summary
