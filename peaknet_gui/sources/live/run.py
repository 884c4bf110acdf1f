"""``StreamRun``: a live stream as a run that grows (``refresh()`` adds the frames received).

Frame ``i`` is the ``i``-th image received (indices never move); its event is
``EventId(url, i)``.  The last ``capacity`` frames stay readable (hits marked with
:meth:`StreamRun.keep` longer, see :mod:`.ring`); an older frame raises InputError saying it
left the window.  Pixels are decoded when a frame is read, in the reader's thread.
The geometry comes from the series header (pixel size, distance, beam centre, photon energy),
or from the ``geometry`` given (a user's ``--geom`` wins); the header's pixel mask marks bad
pixels, as do Eiger's marker value ``2**bits - 1`` (unsigned data) and negative values (signed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...errors import GeometryError, InputError
from ...frame import EventId, FrameMetadata
from ..base import RunSource
from ..frames import PixelRules, make_frame
from .receiver import Feed, Receiver
from .ring import DEFAULT_CAPACITY, DEFAULT_KEEP, DEFAULT_MAX_BYTES, FrameRing

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("tcp://", "karabo-bridge://")


def is_stream_url(text) -> bool:
    return isinstance(text, str) and text.lower().startswith(STREAM_SCHEMES)


@dataclass(frozen=True)
class StreamStatus:
    """Where a stream stands (shown by the window, printed by ``peaknet find``)."""

    state: str
    received: int
    held: int
    left_window: int
    series_ended: int
    reconnects: int
    bad_messages: int
    seconds_since_message: Optional[float]
    error: Optional[str] = None

    def line(self) -> str:
        age = "" if self.seconds_since_message is None else f", last message {self.seconds_since_message:.1f} s ago"
        err = f" ({self.error})" if self.error and self.state in ("reconnecting", "waiting") else ""
        return f"{self.state}{err}: {self.received} frames received, {self.held} held{age}"


class StreamRun(RunSource):
    """A live stream (see the module doc).  ``feed`` is the protocol's connection."""

    def __init__(self, url: str, feed: Feed, *, geometry=None, capacity: int = DEFAULT_CAPACITY,
                 keep_capacity: int = DEFAULT_KEEP, max_bytes: int = DEFAULT_MAX_BYTES, stall_s: float = 2.0,
                 every_frame: bool = False):
        self.description = url
        self.url = url
        self.user_geometry = geometry
        self.ring = FrameRing(capacity, keep_capacity=keep_capacity, max_bytes=max_bytes)
        self.every_frame = bool(every_frame)
        self.consumed = 0  # every_frame: frames handed out in order so far (the receiver waits for them)
        self._known = 0
        self._geometry_cache: dict = {}
        self._warned_no_header = False
        self.warnings: list = []
        self.receiver = Receiver(feed, self.ring, stall_s=stall_s,
                                 consumer_lag=(lambda: len(self.ring) - self.consumed) if every_frame else None)
        self.receiver.start()

    # --- growth ----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._known

    def refresh(self) -> int:
        n = len(self.ring)
        new, self._known = n - self._known, n
        return new

    def wait(self, count: int, timeout_s: float) -> bool:
        """Block (not in the GUI thread) until ``count`` frames were received or ``timeout_s`` passed."""
        return self.ring.wait_for(count, timeout_s)

    def status(self) -> StreamStatus:
        r = self.receiver
        age = None if r.last_message_t is None else time.monotonic() - r.last_message_t
        return StreamStatus(state=r.state, received=len(self.ring), held=self.ring.held, left_window=self.ring.evicted,
                            series_ended=r.series_ends, reconnects=r.reconnects, bad_messages=r.bad_messages,
                            seconds_since_message=age, error=r.last_error)

    @property
    def series_ended(self) -> int:
        return self.receiver.series_ends

    def series_end_after(self, index: int) -> Optional[int]:
        """Frames received when the first series that ended after frame ``index`` arrived ended
        (None while none has)."""
        return next((m for m in list(self.receiver.end_marks) if m > index), None)

    def keep(self, index: int) -> bool:
        """Keep frame ``index`` (a hit) beyond the recent window."""
        return self.ring.keep(int(index))

    def release(self, upto: int) -> None:
        """``every_frame``: frames before ``upto`` are done with (the receiver may read on)."""
        self.consumed = max(self.consumed, int(upto))

    def available(self, index: int) -> bool:
        return self.ring.has(int(index))

    # --- frames ----------------------------------------------------------------------------------------
    def event(self, index: int) -> EventId:
        return EventId(self.url, int(index))

    def _item(self, index: int):
        got = self.ring.get(index)
        if got is None:
            raise InputError(f"{self.url}: frame {index} has left the in-memory window (the last {self.ring.capacity} "
                             "frames and the hits are kept; a larger window keeps more)")
        return got

    def _metadata(self, msg, header) -> FrameMetadata:
        base = header.metadata if header is not None else FrameMetadata()
        extra = dict(base.extra)
        extra.update({k: v for k, v in msg.extra.items() if isinstance(v, (int, float, str, bool))})
        if msg.number is not None:
            extra["stream_frame"] = int(msg.number)
        if msg.series is not None:
            extra["stream_series"] = msg.series if isinstance(msg.series, (int, str)) else str(msg.series)
        return FrameMetadata(photon_energy_ev=base.photon_energy_ev, detector_distance_m=base.detector_distance_m,
                             pixel_size_m=base.pixel_size_m, beam_center_fs=base.beam_center_fs,
                             beam_center_ss=base.beam_center_ss, detector=base.detector,
                             exposure_time_s=base.exposure_time_s, extra=extra)

    def read_raw(self, index: int) -> np.ndarray:
        msg, _ = self._item(index)
        return msg.decode()

    def _read(self, index: int):
        msg, header = self._item(index)
        raw = msg.decode()
        if header is None and not self._warned_no_header:
            self._warned_no_header = True
            log.warning("%s: no series header seen (joined mid-series?): no detector geometry or pixel mask "
                        "from the stream", self.url)
        mask = None if header is None else header.pixel_mask
        if mask is not None and mask.shape != raw.shape:
            mask = None
        kind = raw.dtype.kind
        rules = PixelRules(marker_value=float(np.iinfo(raw.dtype).max) if kind == "u" else None,
                           negative_is_bad=kind in "if")
        return make_frame(raw, self.event(index), index, self._metadata(msg, header), rules=rules, static_bad=mask,
                          where=f"{self.url} frame {index}")

    def metadata(self, index: int = 0) -> FrameMetadata:
        msg, header = self._item(index)
        return self._metadata(msg, header)

    def _last_header(self):
        return self.receiver.header

    def frame_shape(self) -> Optional[tuple]:
        h = self._last_header()
        if h is not None and h.shape:
            return tuple(h.shape)
        n = len(self.ring)
        got = self.ring.get(n - 1) if n else None
        return None if got is None or got[0].shape is None else tuple(got[0].shape)

    def raw_dtype(self) -> Optional[str]:
        n = len(self.ring)
        got = self.ring.get(n - 1) if n else None
        return None if got is None else got[0].dtype

    def geometry(self):
        if self.user_geometry is not None:
            return self.user_geometry
        h = self._last_header()
        if h is None:
            return None
        if h.geometry is not None:
            return h.geometry
        key = id(h)
        if key not in self._geometry_cache:
            from ...geometry.from_metadata import geometry_from_metadata

            shape = self.frame_shape()
            try:
                self._geometry_cache = {key: geometry_from_metadata(h.metadata, shape, source=f"{self.url} (series header)")}
            except GeometryError as e:
                log.warning("%s", e)
                self._geometry_cache = {key: None}
        return self._geometry_cache[key]

    def close(self) -> None:
        self.receiver.stop()
