"""European XFEL's Karabo bridge as a live run: ``karabo-bridge://HOST:PORT[/SOURCE]``.

* :mod:`.trains` -- a train's detector data -> one frame per pulse (modules stacked along the
  slow-scan axis, CrystFEL's layout for AGIPD, LPD, JUNGFRAU);
* :mod:`.geometry` -- a default geometry for known multi-module detectors (extra-geom);
* :mod:`.feed` -- the connection, through the ``karabo-bridge`` client library.

Needs the ``streams`` extra (``pip install peaknet_gui[streams]``).
"""

from .feed import KaraboFeed, open_karabo_stream, parse_karabo_url

__all__ = ["KaraboFeed", "open_karabo_stream", "parse_karabo_url"]
