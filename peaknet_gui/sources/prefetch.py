"""A small cache of decoded frames with background decoding of the next one.

Viewers step through runs frame by frame and the pipeline reads them in order, so while one
frame is shown or analysed the next is decoded on a worker thread (bz2/gzip/ISA-L decompression
release the GIL).  Decoded items are kept in an LRU bounded by count and bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable, Optional


class Prefetcher:
    def __init__(self, decode: Callable[[int], object], key: Callable[[int], Hashable],
                 nbytes: Callable[[object], int], max_items: int = 4, max_bytes: int = 256 * 2**20,
                 enabled: bool = True):
        self.decode = decode  # index -> item (raises InputError on bad data)
        self.key = key  # index -> cache key (stable while the run grows)
        self.nbytes = nbytes
        self.max_items = max(1, max_items)
        self.max_bytes = max_bytes
        self.enabled = enabled
        self._cache: OrderedDict = OrderedDict()
        self._pending: dict = {}
        self._lock = threading.Lock()
        self._executor = None
        self._last: Optional[int] = None

    def get(self, index: int):
        """The item of ``index``: cached, being decoded in the background, or decoded now."""
        key = self.key(index)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            pending = self._pending.get(key)
        if pending is not None:
            try:
                return pending.result()
            except Exception:  # noqa: BLE001 - decode again here so the error reaches the caller
                pass
        return self._decode_and_keep(index)

    def _decode_and_keep(self, index: int):
        item = self.decode(index)
        key = self.key(index)
        with self._lock:
            self._cache[key] = item
            self._cache.move_to_end(key)
            while len(self._cache) > 1 and (len(self._cache) > self.max_items or
                                            sum(self.nbytes(v) for v in self._cache.values()) > self.max_bytes):
                self._cache.popitem(last=False)
        return item

    def hint(self, index: int, count: int) -> None:
        """``index`` was just read: when reads go in order (the previous one was a neighbour, or a
        run is read from its first frame) decode the next frame in that direction.  Random access
        starts no background work (it would only compete for the CPU)."""
        if not self.enabled:
            return
        last, self._last = self._last, index
        if last is None:
            if index != 0:
                return
            step = 1
        elif abs(index - last) == 1:
            step = index - last
        else:
            return
        nxt = index + step
        if not 0 <= nxt < count:
            return
        key = self.key(nxt)
        with self._lock:
            if key in self._cache or key in self._pending:
                return
            if self._executor is None:
                from concurrent.futures import ThreadPoolExecutor

                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="peaknet-prefetch")
            fut = self._executor.submit(self._decode_and_keep, nxt)
            self._pending[key] = fut
        fut.add_done_callback(lambda _f, key=key: self._pending.pop(key, None))

    def cached(self, index: int) -> bool:
        return self.key(index) in self._cache

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        self.clear()
