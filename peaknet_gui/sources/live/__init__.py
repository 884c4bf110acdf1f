"""Live streams as run sources: frames pushed by a detector over the network (ZeroMQ), not files.

* :mod:`.messages` -- what a protocol decoder hands on (series header, image, series end);
* :mod:`.ring` -- the bounded in-memory window of recent frames (hits kept longer);
* :mod:`.receiver` -- the receiver thread: status, stall detection, reconnects;
* :mod:`.run` -- :class:`StreamRun`, the :class:`~peaknet_gui.sources.base.RunSource` that grows.

Protocols live beside this package: :mod:`peaknet_gui.sources.stream_eiger` (DECTRIS SIMPLON,
legacy JSON and ``stream2`` CBOR) and :mod:`peaknet_gui.sources.stream_karabo` (European XFEL).
"""

from .messages import ImageMessage, SeriesEnd, SeriesHeader
from .ring import FrameRing
from .run import StreamRun, StreamStatus, is_stream_url

__all__ = ["ImageMessage", "SeriesEnd", "SeriesHeader", "FrameRing", "StreamRun", "StreamStatus", "is_stream_url"]
