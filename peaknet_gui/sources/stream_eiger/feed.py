"""The ZeroMQ PULL connection to an Eiger's stream interface (``tcp://HOST:PORT``, usually 9999).

The detector binds a PUSH socket; we connect.  Each message's format is recognised when it
arrives: a first part that is a JSON object is the legacy stream, CBOR is ``stream2``.  A socket
monitor tells whether the sender is connected (``peer_state``); ZeroMQ reconnects by itself.
"""

from __future__ import annotations

import logging
import re
from typing import Optional

from ...errors import InputError
from ..live.receiver import Feed, StreamProtocolError
from ..live.ring import DEFAULT_CAPACITY, DEFAULT_KEEP, DEFAULT_MAX_BYTES
from ..live.run import StreamRun
from . import simplon, stream2

log = logging.getLogger(__name__)

_URL = re.compile(r"^tcp://(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):(?P<port>\d{1,5})/?$")


def parse_tcp_url(url: str) -> str:
    m = _URL.match(url.strip())
    if not m or not 0 < int(m["port"]) < 65536:
        raise InputError(f"{url}: not a stream address (tcp://HOST:PORT expected, e.g. tcp://eiger-01:9999)")
    return f"tcp://{m['host']}:{int(m['port'])}"


def _zmq():
    try:
        import zmq
    except ImportError as e:
        raise InputError("reading detector streams needs the 'pyzmq' package (pip install peaknet_gui[streams])") from e
    return zmq


class EigerFeed(Feed):
    def __init__(self, url: str, *, channel: Optional[str] = None, rcvhwm: int = 1000):
        self.url = parse_tcp_url(url)
        self.description = self.url
        self.channel = channel
        self.rcvhwm = int(rcvhwm)
        self._zmq = _zmq()
        self._ctx = None
        self._sock = None
        self._mon = None
        self._poller = None
        self._peer: Optional[bool] = None
        self.messages = 0

    def open(self) -> None:
        zmq = self._zmq
        self._ctx = zmq.Context()
        s = self._ctx.socket(zmq.PULL)
        s.setsockopt(zmq.RCVHWM, self.rcvhwm)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RECONNECT_IVL, 200)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        self._mon = s.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        s.connect(self.url)
        self._sock = s
        self._poller = zmq.Poller()
        self._poller.register(s, zmq.POLLIN)
        self._poller.register(self._mon, zmq.POLLIN)

    def _monitor(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        zmq = self._zmq
        while True:
            try:
                ev = recv_monitor_message(self._mon, flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            if ev["event"] == zmq.EVENT_CONNECTED:
                self._peer = True
            elif ev["event"] == zmq.EVENT_DISCONNECTED:
                self._peer = False

    def peer_state(self) -> Optional[bool]:
        return self._peer

    def receive(self, timeout_s: float, max_messages: int = 64) -> list:
        zmq = self._zmq
        ready = dict(self._poller.poll(int(timeout_s * 1000)))
        if self._mon in ready:
            self._monitor()
        out = []
        for _ in range(max(1, max_messages)):  # drain what is there, a bounded number at a time
            try:
                parts = self._sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self.messages += 1
            out.extend(self.decode([p.buffer for p in parts]))
        return out

    def decode(self, parts: list) -> list:
        if not parts or len(parts[0]) == 0:
            raise StreamProtocolError(f"{self.url}: empty message")
        head = bytes(parts[0][:1])
        if head == b"{":
            return simplon.decode_message(parts, self.url)
        if stream2.is_stream2(parts[0]):
            return stream2.decode_message(parts[0], self.url, self.channel)
        raise StreamProtocolError(f"{self.url}: a message that is neither SIMPLON JSON nor stream2 CBOR "
                                  f"(starts with {bytes(parts[0][:8])!r})")

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.disable_monitor()
            except Exception:  # noqa: BLE001
                pass
        for s in (self._mon, self._sock):
            if s is not None:
                try:
                    s.close(linger=0)
                except Exception:  # noqa: BLE001
                    pass
        self._sock = self._mon = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None


def open_eiger_stream(url: str, *, geometry=None, capacity: int = DEFAULT_CAPACITY, keep_capacity: int = DEFAULT_KEEP,
                      max_bytes: int = DEFAULT_MAX_BYTES, every_frame: bool = False, channel: Optional[str] = None,
                      stall_s: float = 2.0) -> StreamRun:
    """A live run reading the Eiger stream at ``url`` (``tcp://HOST:PORT``)."""
    feed = EigerFeed(url, channel=channel)
    return StreamRun(feed.url, feed, geometry=geometry, capacity=capacity, keep_capacity=keep_capacity,
                     max_bytes=max_bytes, every_frame=every_frame, stall_s=stall_s)
