"""A QThread that runs jobs one at a time, latest-wins per slot, highest-priority slot first.

``submit(slot, fn, *args)`` replaces whatever job is still *pending* in that slot (the one
running is never interrupted; jobs check :attr:`Job.cancelled` or their own staleness where
they can).  Slots are ordered by priority: the thread always takes the pending job of the
first slot in ``slots`` that has one.  Exceptions end up in :attr:`JobThread.failed`.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from dataclasses import dataclass, field
from typing import Callable, Optional

from .qt import QtCore, Signal

log = logging.getLogger(__name__)


@dataclass
class Job:
    slot: str
    fn: Callable
    args: tuple = ()
    context: str = ""
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


class JobThread(QtCore.QThread):
    """See the module docstring.  ``failed(context, exception, traceback text)``."""

    failed = Signal(str, object, str)

    def __init__(self, name: str, slots: tuple, parent=None, nice: int = 0):
        super().__init__(parent)
        self.setObjectName(name)
        self.slots = tuple(slots)
        self.nice = int(nice)
        self._pending: dict = {}
        self._running: Optional[Job] = None
        self._cond = threading.Condition()
        self._stopping = False

    # --- called from any thread --------------------------------------------------------------
    def submit(self, slot: str, fn: Callable, *args, context: str = "") -> Job:
        if slot not in self.slots:
            raise ValueError(f"{self.objectName()}: unknown slot {slot!r}")
        job = Job(slot, fn, args, context)
        with self._cond:
            old = self._pending.get(slot)
            if old is not None:
                old.cancel_event.set()
            self._pending[slot] = job
            self._cond.notify()
        return job

    def cancel(self, slot: Optional[str] = None, running: bool = True) -> None:
        """Drop pending jobs (of ``slot`` or all); flag the running one as cancelled."""
        with self._cond:
            for s in list(self._pending):
                if slot is None or s == slot:
                    self._pending.pop(s).cancel_event.set()
            if running and self._running is not None and (slot is None or self._running.slot == slot):
                self._running.cancel_event.set()

    def pending(self, slot: Optional[str] = None) -> bool:
        with self._cond:
            return bool(self._pending) if slot is None else slot in self._pending

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._running is None and not self._pending

    @property
    def running_job(self) -> Optional[Job]:
        with self._cond:
            return self._running

    def stop(self, wait_ms: int = 10000) -> bool:
        with self._cond:
            self._stopping = True
            for job in self._pending.values():
                job.cancel_event.set()
            self._pending.clear()
            if self._running is not None:
                self._running.cancel_event.set()
            self._cond.notify_all()
        return self.wait(wait_ms)

    # --- the thread ------------------------------------------------------------------------------
    def _take(self) -> Optional[Job]:
        with self._cond:
            while not self._stopping:
                for s in self.slots:
                    job = self._pending.pop(s, None)
                    if job is not None:
                        self._running = job
                        return job
                self._cond.wait()
            return None

    def _lower_priority(self) -> None:
        """Linux: a nicer thread (and the compute threads it starts, e.g. ONNX Runtime's pool)
        gives way to the GUI and reader threads when the cores are busy."""
        if self.nice <= 0 or not hasattr(os, "setpriority"):
            return
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + self.nice))
        except (OSError, AttributeError):
            pass

    def run(self) -> None:  # noqa: D401 - QThread entry point
        self._lower_priority()
        while True:
            job = self._take()
            if job is None:
                return
            try:
                if not job.cancelled:
                    job.fn(job, *job.args)
            except Exception as e:  # reported to the GUI, the thread lives on
                tb = traceback.format_exc()
                log.debug("%s job %s failed:\n%s", self.objectName(), job.slot, tb)
                self.failed.emit(job.context or job.slot, e, tb)
            finally:
                with self._cond:
                    self._running = None
