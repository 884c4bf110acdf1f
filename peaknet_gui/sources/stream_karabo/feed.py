"""The Karabo bridge connection, through European XFEL's ``karabo-bridge`` client library.

``karabo-bridge://HOST:PORT[/SOURCE][?sock=REQ|SUB|PULL]``: the bridge serves trains on request
(REQ, its default) or pushes them (SUB, PULL).  SOURCE is a source of the train, or a detector
sent one source per module (``SPB_IRDA_JF4M``, or a glob of its module sources; :mod:`.modules`).
A train that does not arrive within the poll time is simply waited for again (the client keeps
its request open).  The first train, and a change of shape, bring a series header with the
default geometry (:mod:`.geometry`; none when the user gave one).
"""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import parse_qs, unquote

from ...errors import InputError
from ..live.messages import SeriesHeader
from ..live.receiver import Feed, StreamProtocolError
from ..live.ring import DEFAULT_CAPACITY, DEFAULT_KEEP, DEFAULT_MAX_BYTES
from ..live.run import StreamRun
from .geometry import default_geometry
from .trains import train_messages

_URL = re.compile(r"^karabo-bridge://(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s?]+):(?P<port>\d{1,5})(?:/(?P<source>[^?]*))?(?:\?(?P<q>.*))?$")
SOCKETS = ("REQ", "SUB", "PULL")


def parse_karabo_url(url: str) -> tuple:
    """(tcp endpoint, source or None, socket type)."""
    m = _URL.match(url.strip())
    if not m or not 0 < int(m["port"]) < 65536:
        raise InputError(f"{url}: not a Karabo bridge address (karabo-bridge://HOST:PORT[/SOURCE] expected)")
    sock = (parse_qs(m["q"] or "").get("sock") or ["REQ"])[0].upper()
    if sock not in SOCKETS:
        raise InputError(f"{url}: socket type {sock!r} is not one of {', '.join(SOCKETS)}")
    source = unquote(m["source"]) if m["source"] else None
    return f"tcp://{m['host']}:{int(m['port'])}", source or None, sock


class KaraboFeed(Feed):
    def __init__(self, url: str, default_layout: bool = True):
        self.default_layout = default_layout  # False: the user gave a geometry (no nominal one, no warning)
        self.endpoint, self.source, self.sock = parse_karabo_url(url)
        self.url = url.strip()
        self.description = self.url
        try:
            import karabo_bridge  # noqa: F401
        except ImportError as e:
            raise InputError("reading a Karabo bridge needs the 'karabo-bridge' package "
                             "(pip install peaknet_gui[streams])") from e
        self._client = None
        self._shape: Optional[tuple] = None
        self.trains = 0

    def open(self) -> None:
        from karabo_bridge import Client

        self._client = Client(self.endpoint, sock=self.sock, timeout=0.1)

    def receive(self, timeout_s: float, max_messages: int = 64) -> list:
        try:
            data, meta = self._client.next()
        except TimeoutError:
            return []
        self.trains += 1
        try:
            source, msgs = train_messages(data, meta or {}, self.source, self.url)
        except StreamProtocolError:
            raise
        except Exception as e:  # noqa: BLE001 -- a train we cannot take apart
            raise StreamProtocolError(f"{self.url}: train not understood ({type(e).__name__}: {e})") from None
        out = []
        if msgs and msgs[0].shape != self._shape:
            self._shape = msgs[0].shape
            geom = default_geometry(self._shape, self.url, source) if self.default_layout else None
            out.append(SeriesHeader(series=msgs[0].series, shape=self._shape, geometry=geom,
                                    config={"source": source}))
        return out + msgs

    def close(self) -> None:
        if self._client is not None:
            self._client._context.destroy(linger=0)  # the library's own way out (Client.__exit__)
            self._client = None


def open_karabo_stream(url: str, *, geometry=None, capacity: int = DEFAULT_CAPACITY, keep_capacity: int = DEFAULT_KEEP,
                       max_bytes: int = DEFAULT_MAX_BYTES, every_frame: bool = False, stall_s: float = 5.0) -> StreamRun:
    """A live run reading the Karabo bridge at ``url``; one frame per pulse."""
    feed = KaraboFeed(url, default_layout=geometry is None)
    return StreamRun(feed.url, feed, geometry=geometry, capacity=capacity, keep_capacity=keep_capacity,
                     max_bytes=max_bytes, every_frame=every_frame, stall_s=stall_s)
