"""The receiver thread of a stream: reads messages from a feed into the ring, keeps the status.

A *feed* is one protocol's connection (:class:`Feed`): ``open()``, ``receive(timeout_s, max_messages)`` (the
decoded messages that arrived, ``[]`` when none did), ``peer_state()`` and ``close()``.  The thread
never touches the GUI; everything it shares is behind the ring's lock or plain attribute writes.

Status (``Receiver.state``):
``waiting``      nothing received yet (no sender, or a sender not started)
``receiving``    frames arrive
``stalled``      no message for ``stall_s`` seconds while a series was open
``series ended`` the detector said the series is over (a new series may follow)
``reconnecting`` the sender went away or the feed failed; the feed is opened again
``closed``       the run was closed
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from .messages import Ignored, ImageMessage, SeriesEnd, SeriesHeader
from .ring import FrameRing

log = logging.getLogger(__name__)

STATES = ("waiting", "receiving", "stalled", "series ended", "reconnecting", "closed")


class StreamProtocolError(Exception):
    """A message the decoder cannot understand (counted and skipped; the stream goes on)."""


class Feed:
    """Base of a protocol connection (see the module doc)."""

    description = ""

    def open(self) -> None:
        raise NotImplementedError

    def receive(self, timeout_s: float, max_messages: int = 64) -> list:
        """Messages that arrived within ``timeout_s``, at most ``max_messages`` detector messages."""
        raise NotImplementedError

    def peer_state(self) -> Optional[bool]:
        """True: a sender is connected; False: it went away; None: cannot tell."""
        return None

    def close(self) -> None:
        pass


class Receiver:
    """Runs ``feed`` in a daemon thread until :meth:`stop`."""

    def __init__(self, feed: Feed, ring: FrameRing, *, stall_s: float = 2.0, reconnect_s: float = 1.0,
                 consumer_lag: Optional[Callable[[], int]] = None, on_header: Optional[Callable] = None):
        self.feed = feed
        self.ring = ring
        self.stall_s = float(stall_s)
        self.reconnect_s = float(reconnect_s)
        self.consumer_lag = consumer_lag  # () -> frames received but not consumed (back-pressure), or None
        self.on_header = on_header
        self.state = "waiting"
        self.header: Optional[SeriesHeader] = None
        self.series_ends = 0
        self.end_marks: list = []  # frames received when each series ended
        self.series_open = False
        self.reconnects = 0
        self.bad_messages = 0
        self.last_error: Optional[str] = None
        self.last_message_t: Optional[float] = None
        self.started_t = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"peaknet-stream {feed.description}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.ring.wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=timeout)
        self.state = "closed"

    # --- the thread -------------------------------------------------------------------------------------
    def _run(self) -> None:
        opened = False
        while not self._stop.is_set():
            if not opened:
                try:
                    self.feed.open()
                    opened = True
                except Exception as e:  # noqa: BLE001 -- any failure of a library: retry later
                    self._failed(f"cannot connect: {type(e).__name__}: {e}")
                    self._stop.wait(self.reconnect_s)
                    continue
            room = 64
            if self.consumer_lag is not None:
                room = min(room, self.ring.capacity - self.consumer_lag())
                if room <= 0:
                    self._stop.wait(0.02)  # every frame is wanted: let the sender's queue fill instead
                    continue
            try:
                msgs = self.feed.receive(0.1, room)
            except StreamProtocolError as e:
                self.bad_messages += 1
                self.last_error = str(e)
                if self.bad_messages <= 5:
                    log.warning("%s: message skipped: %s", self.feed.description, e)
                continue
            except Exception as e:  # noqa: BLE001 -- the connection itself failed: open it again
                self._failed(f"{type(e).__name__}: {e}")
                try:
                    self.feed.close()
                except Exception:  # noqa: BLE001
                    pass
                opened = False
                self._stop.wait(self.reconnect_s)
                continue
            now = time.monotonic()
            for m in msgs:
                self._handle(m, now)
            if not msgs:
                self._idle(now)
        try:
            self.feed.close()
        except Exception:  # noqa: BLE001
            pass
        self.state = "closed"

    def _failed(self, why: str) -> None:
        if why != self.last_error:
            log.warning("%s: %s (reconnecting)", self.feed.description, why)
        self.last_error = why
        self.reconnects += 1
        self.state = "reconnecting"

    def _handle(self, m, now: float) -> None:
        self.last_message_t = now
        if isinstance(m, SeriesHeader):
            self.header = m
            self.series_open = True
            self.state = "receiving"
            if self.on_header is not None:
                self.on_header(m)
        elif isinstance(m, ImageMessage):
            self.ring.append((m, self.header), m.nbytes)
            self.series_open = True
            self.state = "receiving"
        elif isinstance(m, SeriesEnd):
            self.end_marks.append(len(self.ring))
            self.series_ends += 1
            self.series_open = False
            self.state = "series ended"
            self.ring.wake()
        elif isinstance(m, Ignored):
            pass

    def _idle(self, now: float) -> None:
        peer = self.feed.peer_state()
        if self.state == "series ended":
            return
        if peer is False and self.last_message_t is not None:
            self.state = "reconnecting"
            return
        if self.last_message_t is None:
            self.state = "waiting"
        elif now - self.last_message_t > self.stall_s:
            self.state = "stalled" if self.series_open else "waiting"
        elif self.state == "reconnecting" and peer:
            self.state = "receiving"
