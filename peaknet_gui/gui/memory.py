"""Keep the process's memory flat while browsing long runs (Linux/glibc).

Frames, display images and probability maps are arrays of several megabytes, allocated and
freed by several threads (reader, model, post-processing, GUI).  glibc gives every thread its
own heap ("arena") once they contend, and each arena keeps its own high-water mark of such
arrays: the resident size creeps up by a few hundred megabytes before it levels off.  One arena
for the whole process keeps the freed arrays reusable by every thread.  Measured with
``benchmarks/bench_gui.py`` (1920 x 1920 frames): flat RSS while browsing, frame changes as fast
as with the default; a fixed mmap threshold, the other usual cure, doubled the time to show a
frame (page faults on every new array).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

M_ARENA_MAX = -8
ENV = "PEAKNET_GUI_MALLOC_ARENAS"  # number of glibc arenas; 0 leaves glibc's default alone
DEFAULT_ARENAS = 1

_done = False


def limit_heap_growth() -> bool:
    """Limit glibc to ``$PEAKNET_GUI_MALLOC_ARENAS`` (default 1) arenas, once per process, as
    early as possible (before the worker threads start).  True when applied."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        arenas = int(os.environ.get(ENV, DEFAULT_ARENAS))
    except ValueError:
        arenas = DEFAULT_ARENAS
    if arenas <= 0:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    _done = ok
    if not ok:
        log.debug("mallopt(M_ARENA_MAX) refused")
    return ok
