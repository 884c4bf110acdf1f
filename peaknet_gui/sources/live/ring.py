"""The bounded window of a stream's recent frames, in memory.

Frames get absolute indices 0, 1, 2 ... in arrival order that never move.  The ring keeps the
last ``capacity`` frames (and at most ``max_bytes`` of their stored bytes); frames marked with
:meth:`FrameRing.keep` (hits) are kept apart, up to ``keep_capacity`` of them, oldest let go
first.  A frame that has left the window is gone: :meth:`get` returns None.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Optional

DEFAULT_CAPACITY = 1000
DEFAULT_KEEP = 10000
DEFAULT_MAX_BYTES = 4 << 30


class FrameRing:
    def __init__(self, capacity: int = DEFAULT_CAPACITY, *, keep_capacity: int = DEFAULT_KEEP,
                 max_bytes: int = DEFAULT_MAX_BYTES):
        if capacity < 1:
            raise ValueError(f"the stream window must hold at least 1 frame, not {capacity}")
        self.capacity = int(capacity)
        self.keep_capacity = max(0, int(keep_capacity))
        self.max_bytes = max(1, int(max_bytes))
        self._recent: "OrderedDict[int, tuple]" = OrderedDict()  # index -> (item, nbytes)
        self._kept: "OrderedDict[int, tuple]" = OrderedDict()
        self._bytes = 0
        self._next = 0
        self.evicted = 0  # frames that left the window (not kept)
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)

    def __len__(self) -> int:
        """Frames received so far (the next frame's index)."""
        return self._next

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._recent) + len(self._kept)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def oldest_recent(self) -> int:
        """Index of the oldest frame still in the recent window (== len when empty)."""
        with self._lock:
            return next(iter(self._recent), self._next)

    def append(self, item, nbytes: int = 0) -> int:
        with self._lock:
            i = self._next
            self._next += 1
            self._recent[i] = (item, int(nbytes))
            self._bytes += int(nbytes)
            while len(self._recent) > self.capacity or (self._bytes > self.max_bytes and len(self._recent) > 1):
                _, (_, nb) = self._recent.popitem(last=False)
                self._bytes -= nb
                self.evicted += 1
            self.changed.notify_all()
            return i

    def get(self, index: int):
        with self._lock:
            got = self._recent.get(index) or self._kept.get(index)
            return None if got is None else got[0]

    def has(self, index: int) -> bool:
        with self._lock:
            return index in self._recent or index in self._kept

    def keep(self, index: int) -> bool:
        """Keep frame ``index`` beyond the recent window (a hit).  False when it is gone already."""
        if self.keep_capacity <= 0:
            return False
        with self._lock:
            if index in self._kept:
                return True
            got = self._recent.pop(index, None)
            if got is None:
                return False
            self._kept[index] = got
            while len(self._kept) > self.keep_capacity:
                _, (_, nb) = self._kept.popitem(last=False)
                self._bytes -= nb
                self.evicted += 1
            return True

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` frames were received, or ``timeout`` seconds passed."""
        with self._lock:
            return self.changed.wait_for(lambda: self._next >= count, timeout=timeout)

    def wake(self) -> None:
        with self._lock:
            self.changed.notify_all()
