"""DECTRIS Eiger streams (SIMPLON stream interface) as live runs: ``tcp://HOST:PORT``.

* :mod:`.codecs` -- pixel decoding by the field's libraries (``dectris-compression``, ``lz4``);
* :mod:`.simplon` -- the legacy multipart JSON messages (``dheader-1.0``, ``dimage-1.0`` ...);
* :mod:`.stream2` -- the CBOR ``stream2`` messages of newer firmware (``start``, ``image``, ``end``);
* :mod:`.feed` -- the ZeroMQ PULL connection; each message's format is recognised on arrival.

``open_eiger_stream(url, ...)`` gives a :class:`~peaknet_gui.sources.live.StreamRun`.
Needs the ``streams`` extra (``pip install peaknet_gui[streams]``).
"""

from .feed import EigerFeed, open_eiger_stream

__all__ = ["EigerFeed", "open_eiger_stream"]
