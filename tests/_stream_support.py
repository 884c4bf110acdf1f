"""Helpers for the stream tests: simulated frames with spots, a sender in a thread (localhost only)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest


def need_streams():
    """Skip unless the ``streams`` extra is installed."""
    for mod in ("zmq", "cbor2", "lz4.block", "dectris.compression"):
        pytest.importorskip(mod)


def spot_frames(n: int, shape=(256, 320), dtype=np.uint32, seed: int = 0, hits=None) -> list:
    """Poisson background with Gaussian spots on the frames in ``hits`` (default: the even ones)."""
    rng = np.random.default_rng(seed)
    hits = set(range(0, n, 2)) if hits is None else set(hits)
    ss, fs = np.mgrid[0:shape[0], 0:shape[1]]
    out = []
    for i in range(n):
        img = rng.poisson(2.0, shape).astype(np.float64)
        if i in hits:
            for _ in range(25):
                y, x = rng.uniform(12, shape[0] - 12), rng.uniform(12, shape[1] - 12)
                img += rng.uniform(300, 900) * np.exp(-((ss - y) ** 2 + (fs - x) ** 2) / (2 * 1.2 ** 2))
        out.append(np.round(img).astype(dtype))
    return out


class SenderThread:
    """Runs ``fn(sender)`` in a thread once a receiver may have connected; ``join()`` re-raises."""

    def __init__(self, sender, fn, delay_s: float = 0.3):
        self.sender, self.fn, self.delay_s = sender, fn, delay_s
        self.error = None
        self.result = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            time.sleep(self.delay_s)
            self.result = self.fn(self.sender)
        except BaseException as e:  # noqa: BLE001
            self.error = e

    def start(self):
        self.thread.start()
        return self

    def join(self, timeout: float = 30.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the sender did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def wait_until(cond, timeout: float = 10.0, step: float = 0.02) -> bool:
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        if cond():
            return True
        time.sleep(step)
    return cond()
