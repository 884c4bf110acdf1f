"""Qt-free opening of runs for the GUI: what the user asked for, what was opened.

The worker calls these in its reader thread; they raise :class:`~peaknet_gui.errors.PeakNetError`
subclasses whose messages name the file and the problem (shown in a dialog).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Optional

from ..errors import InputError, PeakNetError
from ..frame import FrameMetadata

log = logging.getLogger(__name__)


@dataclass
class RunRequest:
    """What to open: files/globs/directories (or the built-in demo run) and how."""

    inputs: list = field(default_factory=list)
    dataset: Optional[str] = None
    geometry_path: Optional[str] = None
    mask_file: Optional[str] = None
    demo: bool = False
    start_index: int = 0
    stream_window: Optional[int] = None  # live streams: frames kept in memory (None: the source's default, 1,000)

    def label(self) -> str:
        if self.demo:
            return "the demo run"
        if not self.inputs:
            return "(nothing)"
        first = os.path.basename(str(self.inputs[0]).rstrip("/")) or str(self.inputs[0])
        return first if len(self.inputs) == 1 else f"{first} (+{len(self.inputs) - 1} more)"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunRequest":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (d or {}).items() if k in names})


@dataclass
class RunInfo:
    """An opened run, as the window shows it."""

    request: RunRequest
    description: str
    n_frames: int
    shape: tuple
    geometry: object = None  # Geometry or None (then each frame's metadata is used)
    geometry_origin: str = "none"  # "file", "run files", "frame metadata" or "none"
    metadata: FrameMetadata = field(default_factory=FrameMetadata)
    inputs: list = field(default_factory=list)  # what open_run was given (demo: the demo file)

    def with_geometry(self, geometry, origin: str, path: Optional[str]) -> "RunInfo":
        req = dataclasses.replace(self.request, geometry_path=path)
        return dataclasses.replace(self, request=req, geometry=geometry, geometry_origin=origin)

    def with_mask_file(self, path: Optional[str]) -> "RunInfo":
        return dataclasses.replace(self, request=dataclasses.replace(self.request, mask_file=path))

    @property
    def geometry_text(self) -> str:
        g = self.geometry
        if g is None:
            return "from each frame's metadata" if self.geometry_origin == "frame metadata" else "none"
        n = len(g.panels)
        where = g.source or self.geometry_origin
        return f"{n} panel{'s' if n != 1 else ''} ({os.path.basename(str(where))})"


def _expand(inputs: list) -> object:
    items = [os.path.expanduser(str(i)) for i in inputs]
    return items[0] if len(items) == 1 else items


def open_source(request: RunRequest, geometry=None, progress=None):
    """The run source of a request (``open_run`` / the demo run) and the inputs it used.
    ``progress(done, total)``: frames generated when the demo run is made (first start)."""
    if request.demo:
        from ..sources.demo import demo_run_path, open_demo_run

        path = demo_run_path(progress=progress)  # generated on first use, then cached
        return open_demo_run(), [str(path)]
    if not request.inputs:
        raise InputError("no run given: choose files, a glob or a directory")
    from ..sources import open_run

    inputs = _expand(request.inputs)
    stream_options = {"capacity": int(request.stream_window)} if request.stream_window else None
    return (open_run(inputs, dataset=request.dataset, geometry=geometry, stream_options=stream_options),
            list(request.inputs))


def open_run_request(request: RunRequest, progress=None):
    """Open a run: (source, RunInfo).  Reads the first frame to check that the run is usable."""
    user_geom = None
    if request.geometry_path:
        from ..geometry.crystfel_geom import read_geom

        user_geom = read_geom(os.path.expanduser(request.geometry_path))
    source, inputs = open_source(request, user_geom, progress=progress)
    try:
        n = len(source)
        if n == 0:
            raise InputError(f"{request.label()}: no frames found")
        first = source[min(max(request.start_index, 0), n - 1)]
        if user_geom is not None:
            geom, origin = user_geom, "file"
        else:
            geom = source.geometry()
            origin = "run files" if geom is not None else "none"
            if geom is None:
                try:
                    from ..geometry.from_metadata import geometry_from_metadata

                    geometry_from_metadata(first.metadata, first.shape, source=first.event.path)
                    origin = "frame metadata"
                except PeakNetError:
                    origin = "none"
        if geom is not None:
            geom.check_data_shape(first.shape, f"the frames of {first.event.path}")
        info = RunInfo(request=request, description=getattr(source, "description", "") or request.label(), n_frames=n,
                       shape=tuple(first.shape), geometry=geom, geometry_origin=origin, metadata=first.metadata,
                       inputs=inputs)
        return source, info
    except BaseException:
        try:
            source.close()
        except Exception:
            pass
        raise


def read_geometry_for(path, source, frame):
    """(geometry, origin) for a new geometry choice -- a .geom path, a Geometry object (e.g. a
    fitted one) or None (the files' own) -- checked against the run's frame shape."""
    from ..geometry import Geometry

    if isinstance(path, Geometry):
        path.check_data_shape(frame.shape, f"the frames of {frame.event.path}")
        return path, "set by the program"
    if path:
        from ..geometry.crystfel_geom import read_geom

        geom = read_geom(os.path.expanduser(path))
        geom.check_data_shape(frame.shape, f"the frames of {frame.event.path}")
        return geom, "file"
    geom = source.geometry() if source is not None else None
    return geom, ("run files" if geom is not None else "frame metadata")


def static_mask_for(info: RunInfo, strict: bool = False):
    """(static mask or None, warning or None): the user's mask file and the geometry's bad regions.

    A mask file that cannot be used is an error with ``strict`` (the user just chose it), else
    a warning and the geometry part alone (e.g. a remembered file that has gone)."""
    from ..masks.static import static_mask

    mask_file = info.request.mask_file
    try:
        return static_mask(info.shape, mask_file=mask_file, geometry=info.geometry), None
    except PeakNetError as e:
        if strict or not mask_file:
            raise
        return static_mask(info.shape, geometry=info.geometry), f"{e}; the mask file is not used"
