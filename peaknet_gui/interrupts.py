"""Ctrl-C / SIGTERM that wait for the end of a write.

A KeyboardInterrupt raised in the middle of an HDF5 write (between two datasets being resized,
half-way through creating a file's layout) leaves a file its writer can no longer close.  The
CLI's signal handler (:func:`peaknet_gui.cli.main.stop_signals`) therefore hands the exception
to :func:`deliver`: inside a :func:`deferred` block it is kept and raised when the block ends
(at the next frame boundary), outside one it is raised at once.  Main thread only; the blocks
nest.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Optional

_depth = 0
_pending: Optional[BaseException] = None


def deliver(exc: BaseException) -> None:
    """Raise ``exc`` now, or when the current :func:`deferred` block ends."""
    global _pending
    if _depth > 0 and threading.current_thread() is threading.main_thread():
        if _pending is None:
            _pending = exc
        return
    raise exc


@contextlib.contextmanager
def deferred():
    """Hold Ctrl-C/SIGTERM (delivered through :func:`deliver`) until the block ends."""
    global _depth, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            exc, _pending = _pending, None
            raise exc
