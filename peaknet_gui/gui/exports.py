"""Qt-free export work the GUI starts: peaks of one/all/hit frames, and a frame's mask for CrystFEL.

:func:`export_run` runs in an :class:`~.export_dialog.ExportJob` thread: it re-opens the run
(its own file handles, so the browser keeps reading; a live stream, which cannot be opened
twice, is read through the window's own connection: the frames it holds), analyses the frames
with the window's settings through :func:`peaknet_gui.pipeline.run.run_analysis` (sharing the already loaded
model) and writes them with :class:`peaknet_gui.export.session.ExportSession` -- a transaction
(:mod:`peaknet_gui.export.transaction`): the chosen directory gets the whole new set or keeps the
old one, a second export into it while one runs is refused, unreadable files and frames are
listed in summary.json ``skipped``.  :func:`write_frame_mask` writes its two files the same way.

Frames the window has analysed already with the export's very settings (the worker's compact
store, ``ctx["cached"]``: the background analysis fills it for the whole run) are written from
those results through :class:`ReusingAnalyzer` -- no second model run, and the exported peaks
are exactly the drawn ones; only the others go through the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import ExportError, InputError
from ..peaks.filters import is_hit
from ..sources.base import RunSource

SCOPES = ("current", "all", "hits")
FORMATS = ("stream", "lst", "cxi", "mask")


@dataclass
class ExportOptions:
    out_dir: str
    scope: str = "all"  # "current", "all" or "hits"
    formats: set = field(default_factory=lambda: set(FORMATS))
    first: Optional[int] = None  # frame range of "all"/"hits" (inclusive; None: from the start / to the end)
    last: Optional[int] = None

    def indices(self, n_frames: int) -> list:
        lo = 0 if self.first is None else max(0, int(self.first))
        hi = n_frames - 1 if self.last is None else min(n_frames - 1, int(self.last))
        return list(range(lo, hi + 1))

    def check(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}")
        if not self.formats:
            raise ExportError("choose at least one output format")
        if not str(self.out_dir).strip():
            raise ExportError("choose an output directory")


class HitsOnly:
    """A sink that passes only hit frames on (the stream then holds only hits)."""

    def __init__(self, sink):
        self.sink = sink

    def add(self, frame, result) -> None:
        if result.hit:
            self.sink.add(frame, result)

    def close(self, *args, **kwargs):
        return self.sink.close(*args, **kwargs)

    def add_skipped(self, *args) -> None:
        self.sink.add_skipped(*args)

    def abort(self) -> None:
        self.sink.abort()


@dataclass
class ExportOutcome:
    files: dict
    frames: int
    hits: int
    cancelled: bool = False
    errors: list = field(default_factory=list)
    out_dir: str = ""

    def text(self) -> str:
        what = f"{self.frames} frame{'s' if self.frames != 1 else ''}, {self.hits} hit{'s' if self.hits != 1 else ''}"
        head = ("Export cancelled after " if self.cancelled else "Exported ") + what + f" to {self.out_dir}"
        names = sorted(os.path.basename(str(p)) for p in self.files.values())
        lines = [head, "", "Files: " + ", ".join(names)]
        if self.errors:
            lines.append(f"{len(self.errors)} unreadable frame(s) skipped")
        return "\n".join(lines)


def _settings_dict(ctx: dict) -> dict:
    return {"finder": ctx["finder"].as_dict(), "mask": ctx["mask"].as_dict(), "source": "peaknet-gui"}


class ReusingAnalyzer:
    """An analyzer that answers frames found in ``cached`` (``{event lst line: CompactResult}``)
    from there and hands only the others to ``inner`` (anything else is ``inner``'s)."""

    _CACHED = object()  # what prepare() gives for a cached frame (no normalisation)

    def __init__(self, inner, cached: dict):
        self._inner = inner
        self._cached = dict(cached or {})
        self.reused = 0
        self.analysed = 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _lookup(self, frame):
        return self._cached.get(frame.event.lst_line())

    def prepare(self, frame):
        if self._lookup(frame) is not None:
            return self._CACHED
        return self._inner.prepare(frame)

    def analyze(self, frames, prepared=None):
        frames = list(frames)
        prepared = list(prepared) if prepared is not None else [None] * len(frames)
        out = [None] * len(frames)
        todo = []
        for k, (frame, prep) in enumerate(zip(frames, prepared)):
            c = self._lookup(frame)
            if c is not None:
                r = c.result(with_mask=True)
                r.hit = is_hit(r.peaks, self._inner.finder.min_peaks_for_hit)  # the hit criterion of the export
                r.timings_ms = {}
                out[k] = r
                self.reused += 1
            else:
                todo.append((k, frame, None if prep is self._CACHED else prep))
        if todo:
            preps = [p for _, _, p in todo]
            results = self._inner.analyze([f for _, f, _ in todo], None if any(p is None for p in preps) else preps)
            for (k, _, _), r in zip(todo, results):
                out[k] = r
            self.analysed += len(todo)
        return out

    def analyze_one(self, frame):
        return self.analyze([frame])[0]


def _make_analyzer(ctx: dict):
    run = ctx["run"]
    kwargs = dict(weights=ctx["model"].weights, device=ctx["model"].device, geometry=run.geometry, finder=ctx["finder"],
                  mask=ctx["mask"], static_mask=ctx["static_mask"])
    if ctx.get("predictor") is not None:
        kwargs["predictor"] = ctx["predictor"]
    if ctx.get("analyzer_factory") is not None:
        an = ctx["analyzer_factory"](**kwargs)
    else:
        from ..pipeline.analyzer import FrameAnalyzer

        an = FrameAnalyzer(ctx["finder"].algorithm, backend=ctx["model"].backend, **kwargs)
    if ctx.get("hot_pixels") is not None:
        an.hot_pixels = ctx["hot_pixels"]  # the window's hot pixels, frozen: exported peaks = drawn peaks
    if ctx.get("cached"):
        an = ReusingAnalyzer(an, ctx["cached"])
    return an


def export_current(options: ExportOptions, ctx: dict, frame, result) -> ExportOutcome:
    """Write one analysed frame (the one on screen)."""
    from ..export.session import ExportSession

    if frame is None or result is None:
        raise ExportError("the current frame is not analysed yet: wait for its peaks, then export")
    session = ExportSession(options.out_dir, ctx["run"].geometry, formats=options.formats, settings=_settings_dict(ctx),
                            command_line="peaknet-gui (current frame)")
    try:
        session.add(frame, result)
    except BaseException:
        session.abort()
        raise
    files = session.close()
    return ExportOutcome(files=files, frames=1, hits=int(bool(result.hit)), out_dir=str(options.out_dir))


class _LiveView(RunSource):
    """The window's own live stream, as the export reads it: a stream cannot be opened a second
    time (a new connection would wait for frames the sender has sent already), so the export
    reads the frames the window holds -- the ones it knew when the export began -- and leaves
    the stream open (``close`` does nothing; ``refresh`` neither, the window follows it)."""

    def __init__(self, live):
        self.live = live
        self.description = live.description
        self._n = len(live)

    def __len__(self) -> int:
        return self._n

    def event(self, index: int):
        return self.live.event(index)

    def _read(self, index: int):
        return self.live.frame(index)

    def metadata(self, index: int = 0):
        return self.live.metadata(index)

    def frame_shape(self):
        return self.live.frame_shape()

    def raw_dtype(self):
        return self.live.raw_dtype()

    def geometry(self):
        return self.live.geometry()


def live_view(source) -> Optional[RunSource]:
    """A non-closing view of ``source`` when it is a live stream, else None."""
    from ..sources.live.run import StreamRun

    return _LiveView(source) if isinstance(source, StreamRun) else None


def export_run(options: ExportOptions, ctx: dict, progress: Optional[Callable] = None, cancel=None) -> ExportOutcome:
    """Analyse and write all frames (or only the hits) of the run in ``ctx``."""
    from ..export.session import ExportSession
    from ..pipeline.run import run_analysis
    from .runs import open_source

    run = ctx["run"]
    if run is None:
        raise InputError("no run is open")
    source = live_view(ctx.get("source"))
    if source is None:
        source, _ = open_source(run.request, run.geometry)
    try:
        analyzer = _make_analyzer(ctx)
        session = ExportSession(options.out_dir, run.geometry, formats=options.formats, settings=_settings_dict(ctx),
                                command_line=f"peaknet-gui ({options.scope} frames of {run.request.label()})")
        sink = HitsOnly(session) if options.scope == "hits" else session
        indices = options.indices(len(source))
        if not indices:
            session.abort()
            raise ExportError(f"no frames in the range {options.first}..{options.last} (the run has {len(source)})")
        skipped = [(str(p), str(r)) for p, r in getattr(source, "skipped", [])]
        for p, r in skipped:
            session.add_skipped(p, None, r)
        summary = run_analysis(source, analyzer, sink, indices=indices, progress=progress, cancel=cancel)
    finally:
        source.close()
    return ExportOutcome(files=dict(session.files), frames=summary.frames, hits=summary.hits,
                         cancelled=summary.cancelled or summary.interrupted, errors=skipped + list(summary.errors),
                         out_dir=str(options.out_dir))


def frame_mask(frame, result) -> np.ndarray:
    """The frame's auto-mask as exported (True = bad): result mask plus the detector's bad pixels."""
    m = np.zeros(frame.shape, dtype=bool) if result is None or result.artifact_mask is None \
        else np.asarray(result.artifact_mask, dtype=bool).copy()
    if frame.bad is not None:
        m |= frame.bad
    return m


def write_frame_mask(path, frame, result, geometry=None) -> tuple:
    """``path`` (mask .h5, 1 = bad) and ``path.geom``: the geometry plus the mask lines.

    Returns (mask path, geometry path).  The geometry refers to the mask by its absolute path,
    so CrystFEL finds it from any working directory.
    """
    from ..export.frame_values import placeholder_geometry
    from ..export.mask_h5 import MASK_DATASET, mask_geometry, write_mask_h5
    from ..export.fileset import FileSetTransaction
    from ..geometry.geom_writer import write_geom

    path = Path(os.path.abspath(path))
    if path.suffix.lower() not in (".h5", ".hdf5"):
        path = path.with_suffix(".h5")
    mask = frame_mask(frame, result)
    geom_path = path.with_suffix(".geom")
    txn = FileSetTransaction(path, [geom_path])  # both files or neither; locked; stale temporaries removed
    txn.begin()
    try:
        txn.ensure_space(3 * mask.size, path)
        write_mask_h5(txn.staged(path), mask, description=f"auto-mask of {frame.event.lst_line()} by peaknet-gui; "
                                                          "1 = bad, 0 = good; CrystFEL: mask_good = 0x0, mask_bad = 0x1")
        geom = geometry if geometry is not None else placeholder_geometry(frame)
        g, _ = mask_geometry(geom, str(path), MASK_DATASET)
        write_geom(g, txn.staged(geom_path))
    except BaseException:
        txn.abort()
        raise
    txn.commit()
    return path, geom_path
