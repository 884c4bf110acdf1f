"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A crash or Ctrl-C while writing leaves either the old complete file or the new complete file,
never a truncated one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import ExportError

_UMASK = os.umask(0)
os.umask(_UMASK)


def make_readable(path) -> None:
    """Give a temporary file the permissions a normally created file gets (0666 minus the
    umask): ``mkstemp`` creates it 0600, which would hide outputs from colleagues."""
    try:
        os.chmod(path, 0o666 & ~_UMASK)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_path(target, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it to ``target``.

    Use for libraries that open files themselves (h5py, fabio)::

        with atomic_path("hits.cxi") as tmp:
            with h5py.File(tmp, "w") as f: ...
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
        os.close(fd)
    except OSError as e:
        raise ExportError(f"{target}: cannot write here ({e.strerror or e})") from e
    tmp = Path(tmp)
    try:
        yield tmp
        make_readable(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_write(target, mode: str = "w", encoding: str = "utf-8"):
    """Open a temporary text (or binary, ``mode='wb'``) file; rename it to ``target`` on success."""
    with atomic_path(target) as tmp:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
