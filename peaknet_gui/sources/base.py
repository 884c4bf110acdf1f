"""The run-source interface: an ordered, lazily read sequence of frames."""

from __future__ import annotations

import abc
import functools
from typing import Iterator, Optional

from ..errors import InputError, PeakNetError

#: exceptions that file libraries (h5py, fabio, zlib, bz2) raise on damaged files: turned into
#: InputError naming the run by every public method of every source
_LIBRARY_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError, EOFError, MemoryError,
                   AttributeError, UnicodeError, OverflowError, ZeroDivisionError, AssertionError)
_GUARDED = ("__init__", "frame", "_read", "read_raw", "metadata", "event", "geometry", "frame_shape", "raw_dtype",
            "refresh", "add_files", "__len__")


def _guard(fn):
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except PeakNetError:
            raise
        except _LIBRARY_ERRORS as e:
            where = getattr(self, "description", "") or getattr(self, "path", "") or "run"
            if isinstance(e, MemoryError):
                raise InputError(f"{where}: not enough memory to read the data ({e})") from e
            detail = " ".join(str(e).split())[:200]
            raise InputError(f"{where}: corrupt or unreadable file ({type(e).__name__}: {detail})") from e
    wrapper._guarded = True
    return wrapper
from ..frame import EventId, Frame, FrameMetadata
from ..geometry import Geometry


class RunSource(abc.ABC):
    """An ordered run of frames.

    Implementations open files lazily (never read a whole run into memory), give random access
    with ``source[i]`` / ``source.frame(i)``, iterate in order, and pick up frames appended
    while the run is being written when :meth:`refresh` is called (follow mode).
    """

    #: human-readable description of where the frames come from
    description: str = ""
    #: problems found while opening that do not stop reading (e.g. missing linked data files)
    warnings: tuple = ()

    def __init_subclass__(cls, **kwargs):
        """Every public method of a source raises InputError, never a library's exception."""
        super().__init_subclass__(**kwargs)
        for name in _GUARDED:
            fn = cls.__dict__.get(name)
            if callable(fn) and not getattr(fn, "_guarded", False):
                setattr(cls, name, _guard(fn))

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of frames known now (may grow after :meth:`refresh`)."""

    @abc.abstractmethod
    def event(self, index: int) -> EventId:
        """The event id of frame ``index`` without reading its pixels."""

    @abc.abstractmethod
    def _read(self, index: int) -> Frame:
        """Read frame ``index`` (0 <= index < len).  Raise InputError on bad data."""

    def frame(self, index: int) -> Frame:
        n = len(self)
        if not isinstance(index, (int,)) and hasattr(index, "__index__"):
            index = int(index)
        asked = index
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise InputError(f"{self.description}: event index {asked} is out of range (run has {n} frames)")
        return self._read(index)

    def __getitem__(self, index: int) -> Frame:
        return self.frame(index)

    def __iter__(self) -> Iterator[Frame]:
        i = 0
        while i < len(self):
            yield self.frame(i)
            i += 1

    def refresh(self) -> int:
        """Look for frames appended since opening; return the number of new frames."""
        return 0

    def metadata(self, index: int = 0) -> FrameMetadata:
        """Metadata of frame ``index`` (cheap: no pixel read where the format allows)."""
        return self.frame(index).metadata

    def frame_shape(self) -> Optional[tuple]:
        """(ss, fs) shape every frame has, known without reading pixels where the format allows."""
        return None

    def raw_dtype(self) -> Optional[str]:
        """The pixel type stored in the file (frames are always handed out as float32)."""
        return None

    def geometry(self) -> Optional[Geometry]:
        """The geometry the files imply (headers), or ``None`` when they say too little."""
        return None

    def close(self) -> None:
        """Release open file handles."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
