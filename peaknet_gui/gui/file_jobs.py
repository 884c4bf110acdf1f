"""Small file reads and writes of the docks (masks, peak tables) off the GUI thread, in order.

Unlike the worker's latest-wins slots, every job submitted here runs (one at a time, first in,
first out), so two saves in a row both happen.  Results and errors come back in the GUI thread:
``on_done(result)``, or a dialog (``dialogs.describe``: our errors name the file and the problem).
"""

from __future__ import annotations

import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

from ..errors import PeakNetError
from . import dialogs
from .qt import QtCore, Signal

log = logging.getLogger(__name__)


class FileJobs(QtCore.QObject):
    _done = Signal(int, object)
    _failed = Signal(int, object)

    def __init__(self, parent_widget=None):
        super().__init__(parent_widget)
        self._parent = parent_widget
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="peaknet-files")
        self._ids = itertools.count()
        self._callbacks: dict = {}
        self._done.connect(self._deliver)
        self._failed.connect(self._report)

    def submit(self, fn: Callable, *args, context: str = "", on_done: Optional[Callable] = None):
        """Run ``fn(*args)`` in the file thread; ``on_done(result)`` in the GUI thread."""
        jid = next(self._ids)
        self._callbacks[jid] = (context, on_done)

        def run():
            try:
                result = fn(*args)
            except Exception as e:  # every problem becomes a dialog, none is lost
                if not isinstance(e, PeakNetError):
                    log.exception("%s failed", context)
                self._failed.emit(jid, e)
            else:
                self._done.emit(jid, result)

        return self._pool.submit(run)

    def _deliver(self, jid: int, result) -> None:
        _, cb = self._callbacks.pop(jid, ("", None))
        if cb is not None:
            cb(result)

    def _report(self, jid: int, exc) -> None:
        context, _ = self._callbacks.pop(jid, ("", None))
        title, text = dialogs.describe(context, exc)
        dialogs.show_error(self._parent, title, text)

    def wait(self) -> None:
        """Finish the jobs submitted so far (tests, closing)."""
        self._pool.submit(lambda: None).result()


def file_jobs(window) -> FileJobs:
    """The window's file thread (created on first use)."""
    fj = getattr(window, "_file_jobs", None)
    if fj is None:
        fj = window._file_jobs = FileJobs(window)
    return fj
