"""``peaknet find tcp://HOST:PORT`` / ``karabo-bridge://HOST:PORT[/SOURCE]``: find peaks in a live
stream's frames as they arrive.

    peaknet find tcp://eiger:9999 --out DIR [--frames N | --until-series-end] [--drop-frames]
        [--stream-window 1000] [--stream-timeout 30] [--first-frame-timeout 60]

By default every frame is analysed: while the in-memory window is full of frames not yet
analysed the receiver stops reading, so the sender's queue fills (a DECTRIS detector then drops
frames on its side).  ``--drop-frames`` keeps up with the sender instead: frames that leave the
window before their turn are not analysed and are counted (``dropped`` in the summary and in
summary.json).  The hit frames themselves are written into hits.cxi (there is no file to point
back to); the stream and hits.lst name them there.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import InputError
from .argtypes import count, positive, positive_int

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("tcp://", "karabo-bridge://")


def is_stream_input(inputs) -> bool:
    return len(inputs) >= 1 and str(inputs[0]).lower().startswith(STREAM_SCHEMES)


def add_stream_options(p) -> None:
    g = p.add_argument_group("live streams (tcp://HOST:PORT, karabo-bridge://HOST:PORT[/SOURCE])")
    stop = g.add_mutually_exclusive_group()
    stop.add_argument("--frames", type=count, help="stop after N frames arrived")
    stop.add_argument("--until-series-end", action="store_true", help="stop when the detector ends the series")
    g.add_argument("--drop-frames", action="store_true",
                   help="keep up with the sender: frames that leave the window before analysis are dropped and counted "
                   "(default: every frame is analysed)")
    g.add_argument("--stream-window", type=positive_int, default=1000, help="frames kept in memory (default: %(default)s)")
    g.add_argument("--stream-timeout", type=positive, default=30.0,
                   help="stop when no frame arrived for this many seconds (default: %(default)s)")
    g.add_argument("--first-frame-timeout", type=positive, default=60.0,
                   help="give up when no frame arrived within this many seconds (default: %(default)s)")


def _first_frame(source, url: str, timeout_s: float):
    """The oldest frame still in the stream's window (the shape, the geometry's check): with
    --drop-frames a fast sender may have pushed frame 0 out of a small window already."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not source.wait(1, left):
            raise InputError(f"{url}: no frame arrived within {timeout_s:g} s ({source.status().line()})")
        source.refresh()
        for i in range(len(source)):
            if source.available(i):
                try:
                    return source[i]
                except InputError:  # it left the window meanwhile: look again
                    break
        time.sleep(0.01)


def find_stream(args, user_geometry) -> int:
    from ..cluster.cli import uses_cluster
    from ..sources import open_run

    if len(args.inputs) > 1:
        raise InputError(f"{args.inputs[0]}: a stream is read on its own, not with other inputs ({args.inputs[1]})")
    if uses_cluster(args):
        raise InputError(f"{args.inputs[0]}: --cluster reads files; a live stream is analysed on this machine")
    url = args.inputs[0]
    frames = args.frames if args.frames is not None else args.limit
    source = open_run(url, geometry=user_geometry,
                      stream_options={"capacity": args.stream_window, "every_frame": not args.drop_frames,
                                      "wait_first_s": 0})
    try:  # the receiver runs while the model loads
        from ..masks.static import static_mask
        from ..pipeline.analyzer import FrameAnalyzer
        from ..pipeline.live import run_stream_analysis
        from .find import EXIT_INTERRUPTED, EXIT_SKIPPED, EXIT_TERMINATED, _geometry, _open_session, _Progress, _settings

        first = _first_frame(source, url, args.first_frame_timeout)
        geometry = user_geometry or _geometry(source, first)
        if geometry is not None:
            geometry.check_data_shape(first.shape, f"frames of {url}")
        static = static_mask(first.shape, mask_file=args.mask_file, mask_dataset=args.mask_dataset,
                             polarity=args.mask_polarity, geometry=geometry)
        finder, mask = _settings(args)
        analyzer = FrameAnalyzer(args.algorithm, weights=args.weights, device=args.device, geometry=geometry,
                                 finder=finder, mask=mask, static_mask=static, backend=args.backend)
        if args.algorithm == "peaknet":
            analyzer.predictor
            for w in analyzer.predictor.warnings:
                log.warning(w)
        if "cxi" not in args.formats:
            log.warning("%s: the frames exist only in memory; without 'cxi' in --formats no file keeps the hits", url)
        out_dir = Path(args.out)
        session = _open_session(out_dir, geometry, args.formats, analyzer)
        progress = _Progress(frames or 0, enabled=not args.no_progress)
        try:
            summary = run_stream_analysis(source, analyzer, session, frames=frames,
                                          until_series_end=args.until_series_end, idle_timeout_s=args.stream_timeout,
                                          batch_size=args.batch_size, progress=progress)
        finally:
            progress.close()
        status = source.status()
    finally:
        source.close()
    print(summary.format())
    print(f"stream      {status.line()}")
    print(f"output      {out_dir}/")
    if summary.interrupted:
        print("peaknet: interrupted; the files hold the frames done", file=__import__("sys").stderr)
        return EXIT_TERMINATED if summary.terminated else EXIT_INTERRUPTED
    if summary.errors or summary.dropped:
        return EXIT_SKIPPED
    return 0
