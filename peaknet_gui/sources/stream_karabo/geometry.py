"""A default geometry for a Karabo bridge detector, when no ``--geom`` is given.

EXtra-geom knows the modules of European XFEL's detectors; without the experiment's own
geometry file only the nominal layout of an AGIPD-1M (EXtra-geom's documented example quadrant
positions) is offered, and it is approximate: the window and ``peaknet find`` warn to give the
real one with ``--geom``.  Other slab shapes get no geometry (peaks without resolution).
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Optional

log = logging.getLogger(__name__)

AGIPD_1M_QUADS = [(-525, 625), (-550, -10), (520, -160), (542.5, 475)]  # EXtra-geom's example positions (mm)


def default_geometry(shape: tuple, where: str) -> Optional[object]:
    """A Geometry for a slab of ``shape`` (ss, fs), or None."""
    if tuple(shape) != (16 * 512, 128):
        return None
    try:
        import extra_geom
    except ImportError:
        log.warning("%s: AGIPD-1M frames and no --geom; install extra-geom for a default geometry", where)
        return None
    from ...geometry.crystfel_geom import read_geom

    geom = extra_geom.AGIPD_1MGeometry.from_quad_positions(quad_pos=AGIPD_1M_QUADS)
    fd, path = tempfile.mkstemp(suffix=".geom", prefix="peaknet-agipd-")
    os.close(fd)
    try:
        geom.write_crystfel_geom(path, dims=("frame", "ss", "fs"), adu_per_ev=1.0, clen=0.2, photon_energy=9300)
        g = read_geom(path)
    finally:
        os.unlink(path)
    log.warning("%s: AGIPD-1M with EXtra-geom's nominal quadrant positions, 200 mm, 9.3 keV: approximate; "
                "give the experiment's geometry with --geom", where)
    return g
