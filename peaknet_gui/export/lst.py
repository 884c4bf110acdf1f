"""CrystFEL event lists (``.lst``): one ``file //event`` line per frame, ``file`` alone for a
single-image file (CBF, one-frame HDF5), exactly the lines indexamajig's ``-i`` reads.

Paths: CrystFEL opens the files named in a list relative to the directory indexamajig runs
in.  The exporters therefore write every path *relative to the output directory* (the
documented way to use the outputs is ``cd OUT && indexamajig -i hits.lst -g peaks.geom ...``),
so that the output directory can move together with the data; a file that shares nothing but
the root directory with the output directory (``/tmp/out`` and ``/data/run.h5``) is written
with its absolute path.  ``paths="absolute"`` writes absolute paths always (lists usable from
anywhere, not after moving the data).  :func:`output_path` makes that choice in one place for the ``.lst``, the
stream's ``Image filename`` lines and the ``mask_file`` geometry lines.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional

from ..errors import InputError
from ..frame import EventId

PATH_MODES = ("relative", "absolute")


def output_path(path, out_dir, mode: str = "relative") -> str:
    """``path`` as written into files in ``out_dir`` (see the module doc)."""
    if mode not in PATH_MODES:
        raise ValueError(f"path mode must be one of {PATH_MODES}, not {mode!r}")
    if "://" in os.fspath(path):  # a live stream's address (tcp://, karabo-bridge://): no file to point to
        return os.fspath(path)
    absolute = os.path.abspath(os.fspath(path))
    if mode == "absolute":
        return absolute
    out = os.path.abspath(os.fspath(out_dir))
    try:
        common = os.path.commonpath([absolute, out])
        if os.path.dirname(common) == common:  # only the root (or drive) in common
            return absolute
        return os.path.relpath(absolute, out)
    except ValueError:  # another drive (Windows)
        return absolute


def lst_line(path: str, index: Optional[int]) -> str:
    """``path //index`` for frame ``index`` of a multi-frame file, ``path`` for a single image."""
    if any(c in path for c in "\n\r"):
        raise InputError(f"{path!r}: a file name with a line break cannot go into a CrystFEL list")
    return path if index is None else f"{path} //{int(index)}"


def parse_lst_line(line: str) -> Optional[EventId]:
    """One line of a CrystFEL list -> EventId (None for blank lines and comments)."""
    text = line.strip()
    if not text or text.startswith(("#", ";")):
        return None
    if " //" in text:
        path, ev = text.rsplit(" //", 1)
        ev = ev.strip().strip("/")
        first = ev.split("/")[0] if ev else ""
        try:
            return EventId(path.strip(), int(first) if first else None)
        except ValueError:
            raise InputError(f"unsupported event {ev!r} in list line {text!r} (only //N events)") from None
    return EventId(text, None)


def read_lst(path) -> list:
    """EventIds of a CrystFEL list file, paths as written in it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{p}: list file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: cannot read list file ({e})") from e
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        try:
            ev = parse_lst_line(line)
        except InputError as e:
            raise InputError(f"{p}, line {n}: {e}") from None
        if ev is not None:
            out.append(ev)
    return out


def iter_lst_lines(events) -> Iterator[str]:
    for ev in events:
        yield lst_line(ev.path, ev.index)


def write_lst(path, events) -> None:
    """Write a list atomically (``events``: EventIds whose paths are already as wanted)."""
    from .atomic import atomic_write

    with atomic_write(path) as fh:
        for line in iter_lst_lines(events):
            fh.write(line + "\n")
