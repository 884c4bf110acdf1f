"""The driver's bookkeeping, without Ray: which frames are queued, in flight, done, and the order
they are written in.

Frames are handed out in run order, a few calls per worker; results come back in any order and
wait in a reorder buffer until every earlier frame is written or skipped, so the outputs are in
event order as in a local run.  Frames of a lost worker go back to the front of the queue; a
frame one worker could not read is tried once more on another worker before it is skipped
(a file missing on one node is not a bad frame).  Every frame is written or skipped exactly once.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..frame import EventId
from .spec import FrameTask


@dataclass
class Skipped:
    """A frame no worker could read (or analyse): written to no file, listed in the summary."""

    task: FrameTask
    message: str


@dataclass
class _Retry:
    task: FrameTask
    avoid: set = field(default_factory=set)  # ranks that could not read it


class Schedule:
    """Tasks for ``event_of(i)`` of indices appended with :meth:`extend` (see the module doc).
    ``window``: frames beyond the next one to write that may be handed out (bounds the reorder
    buffer)."""

    def __init__(self, event_of: Callable[[int], EventId], path_of: Callable[[EventId], str], window: int = 256):
        self.event_of = event_of
        self.path_of = path_of
        self.window = max(1, int(window))
        self.indices: list = []
        self._next_new = 0  # position in indices of the next never-handed-out frame
        self._retries: "collections.deque[_Retry]" = collections.deque()
        self._tried: dict = {}  # seq -> ranks that failed to read it
        self._reasons: dict = {}  # seq -> their messages, distinct, in order
        self._buffer: dict = {}  # seq -> CompactResult | Skipped
        self.next_seq = 0  # next seq to write
        self.retried = 0
        self.reread = 0

    # --- frames in ---------------------------------------------------------------------------
    def extend(self, indices) -> None:
        self.indices.extend(int(i) for i in indices)

    @property
    def total(self) -> int:
        return len(self.indices)

    def _new_task(self, pos: int) -> FrameTask:
        i = self.indices[pos]
        ev = self.event_of(i)
        return FrameTask(seq=pos, index=i, event=ev, path=self.path_of(ev))

    def take(self, rank: int, n: int) -> list:
        """Up to ``n`` tasks for worker ``rank``: retries it has not failed first, then new frames
        (within the window)."""
        out = []
        for r in list(self._retries):
            if len(out) >= n:
                break
            if rank not in r.avoid:
                self._retries.remove(r)
                out.append(r.task)
        while len(out) < n and self._next_new < len(self.indices) and self._next_new < self.next_seq + self.window:
            out.append(self._new_task(self._next_new))
            self._next_new += 1
        return out

    def waiting(self, ranks: Optional[set] = None) -> bool:
        """Frames not yet handed out (that one of ``ranks`` may take, when given)."""
        if self._next_new < len(self.indices):
            return True
        if ranks is None:
            return bool(self._retries)
        return any(ranks - r.avoid for r in self._retries)

    def drop_orphans(self, live_ranks: set) -> None:
        """Frames waiting for a worker other than those that failed them, when no such worker is
        left (it failed to start or was lost): skipped with their reasons."""
        for r in list(self._retries):
            if r.avoid and not (live_ranks - r.avoid):
                self._retries.remove(r)
                reasons = self._reasons.get(r.task.seq) or ["no other worker left to read it"]
                self.deliver(Skipped(r.task, "; ".join(reasons)))

    @property
    def unfinished(self) -> int:
        """Frames not yet written or skipped."""
        return len(self.indices) - self.next_seq

    # --- results back ------------------------------------------------------------------------
    def requeue_lost(self, tasks: list) -> None:
        """A worker died with ``tasks`` in flight: they go first to the others."""
        for t in reversed(tasks):
            if t.seq >= self.next_seq and t.seq not in self._buffer:
                self._retries.appendleft(_Retry(t, set(self._tried.get(t.seq, ()))))
                self.retried += 1

    def failed(self, task: FrameTask, rank: int, message: str, live_ranks: set) -> bool:
        """Worker ``rank`` could not read ``task``: True when another live worker will try it,
        False when it is skipped (every live worker tried)."""
        tried = self._tried.setdefault(task.seq, set())
        tried.add(rank)
        reasons = self._reasons.setdefault(task.seq, [])
        if message not in reasons:
            reasons.append(message)
        if live_ranks - tried and len(tried) < 2:
            self._retries.append(_Retry(task, set(tried)))
            self.reread += 1
            return True
        self.deliver(Skipped(task, "; ".join(reasons)))  # one reason when every worker saw the same
        return False

    def deliver(self, item) -> None:
        """A result (or Skipped) for its seq; a second one for the same frame is dropped."""
        seq = item.task.seq if isinstance(item, Skipped) else item.seq
        if seq < self.next_seq or seq in self._buffer:
            return
        self._tried.pop(seq, None)
        self._reasons.pop(seq, None)
        self._buffer[seq] = item

    def ready(self) -> list:
        """Results (and Skipped) that can be written now, in order; each comes out once."""
        out = []
        while self.next_seq in self._buffer:
            out.append(self._buffer.pop(self.next_seq))
            self.next_seq += 1
        return out
