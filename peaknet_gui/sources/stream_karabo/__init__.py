"""European XFEL's Karabo bridge as a live run: ``karabo-bridge://HOST:PORT[/SOURCE]``.

* :mod:`.trains` -- a train's detector data -> one frame per pulse (modules stacked along the
  slow-scan axis, CrystFEL's layout for AGIPD, LPD, JUNGFRAU);
* :mod:`.modules` -- detectors sent one source per module (JUNGFRAU's ``JNGFR01`` ...);
* :mod:`.geometry` -- EXtra-geom's nominal layout for AGIPD-1M, LPD-1M and JUNGFRAU 4M;
* :mod:`.feed` -- the connection, through the ``karabo-bridge`` client library.

Needs the ``streams`` extra (``pip install peaknet_gui[streams]``).
"""

from .feed import KaraboFeed, open_karabo_stream, parse_karabo_url

__all__ = ["KaraboFeed", "open_karabo_stream", "parse_karabo_url"]
