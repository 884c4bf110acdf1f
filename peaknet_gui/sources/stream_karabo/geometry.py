"""A default geometry for a Karabo bridge detector, when no ``--geom`` is given.

EXtra-geom knows the modules of European XFEL's detectors.  Without the experiment's own
geometry file, a slab of a known multi-module detector (modules stacked along slow-scan, as
:mod:`.trains` builds it) gets EXtra-geom's nominal layout -- the example positions its
documentation and tests use:

* AGIPD-1M, 16 x (512 x 128): quadrant positions (-525, 625), (-550, -10), (520, -160),
  (542.5, 475) mm;
* LPD-1M, 16 x (256 x 256): quadrant positions (11.4, 299), (-11.5, 8), (254.5, -16),
  (278.5, 275) mm;
* JUNGFRAU 4M, 8 x (512 x 1024): EXtra-geom's JF4M test layout, two columns of four modules
  with the beam between them, modules 1-4 turned by 180 degrees (:func:`jf4m_module_positions`).

Each is approximate: the window and ``peaknet find`` warn to give the real one with ``--geom``.
Other slab shapes get no geometry (peaks without resolution).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Callable, Optional

log = logging.getLogger(__name__)

AGIPD_1M_QUADS = [(-525, 625), (-550, -10), (520, -160), (542.5, 475)]  # EXtra-geom's example positions (mm)
LPD_1M_QUADS = [(11.4, 299), (-11.5, 8), (254.5, -16), (278.5, 275)]  # EXtra-geom's example positions (mm)


def jf4m_module_positions() -> tuple:
    """(lower-right corners in pixels, orientations) of EXtra-geom's JUNGFRAU 4M layout."""
    x_start, y_start = 1125, 1078
    mod_width, mod_height = 256 * 4 + 2 * 3, 256 * 2 + 2  # with the 2-pixel gaps between ASICs
    pos = ([(x_start - mod_width, y_start - mod_height - i * (mod_height + 33)) for i in range(4)]
           + [(-x_start, -y_start + i * (mod_height + 33)) for i in range(4)])
    return pos, [(-1, -1)] * 4 + [(1, 1)] * 4


@dataclass(frozen=True)
class Nominal:
    name: str
    modules: int
    module_shape: tuple  # (ss, fs)
    build: Callable  # () -> an extra_geom geometry
    clen_m: float
    photon_energy_ev: float

    @property
    def slab_shape(self) -> tuple:
        return (self.modules * self.module_shape[0], self.module_shape[1])


def _agipd():
    import extra_geom
    return extra_geom.AGIPD_1MGeometry.from_quad_positions(quad_pos=AGIPD_1M_QUADS)


def _lpd():
    import extra_geom
    return extra_geom.LPD_1MGeometry.from_quad_positions(quad_pos=LPD_1M_QUADS)


def _jf4m():
    import extra_geom
    pos, orient = jf4m_module_positions()
    return extra_geom.JUNGFRAUGeometry.from_module_positions(pos, orientations=orient)


# distances and photon energies: typical of the instruments (SPB 200 mm; FXE's LPD 275 mm, the
# karabo-bridge simulator's; SPB's JF4M 100 mm), 9.3 keV
NOMINAL = (
    Nominal("AGIPD-1M", 16, (512, 128), _agipd, 0.2, 9300.0),
    Nominal("LPD-1M", 16, (256, 256), _lpd, 0.275, 9300.0),
    Nominal("JUNGFRAU 4M", 8, (512, 1024), _jf4m, 0.1, 9300.0),
)


def nominal_for(shape: tuple) -> Optional[Nominal]:
    """The known detector whose stacked modules make a slab of ``shape`` (ss, fs), or None."""
    return next((n for n in NOMINAL if n.slab_shape == tuple(shape)), None)


def default_geometry(shape: tuple, where: str, source: Optional[str] = None) -> Optional[object]:
    """A Geometry for a slab of ``shape`` (ss, fs) from ``source``, or None."""
    nominal = nominal_for(shape)
    if nominal is None:
        if source and any(t in source.upper() for t in ("JNGFR", "JF4M", "JF1M", "JF500K", "JUNGFRAU")):
            log.warning("%s: %s: no nominal layout for a JUNGFRAU of %s x %s pixels (JUNGFRAU 4M: 8 modules); "
                        "give the experiment's geometry with --geom", where, source, *shape)
        return None
    try:
        import extra_geom  # noqa: F401
    except ImportError:
        log.warning("%s: %s frames and no --geom; install extra-geom for a default geometry", where, nominal.name)
        return None
    from ...geometry.crystfel_geom import read_geom

    geom = nominal.build()
    fd, path = tempfile.mkstemp(suffix=".geom", prefix="peaknet-karabo-")
    os.close(fd)
    try:
        geom.write_crystfel_geom(path, dims=("frame", "ss", "fs"), adu_per_ev=1.0, clen=nominal.clen_m,
                                 photon_energy=nominal.photon_energy_ev)
        g = read_geom(path)
    finally:
        os.unlink(path)
    log.warning("%s: %s%s with EXtra-geom's nominal layout, %g mm, %.1f keV: approximate; "
                "give the experiment's geometry with --geom", where, nominal.name,
                f" ({source})" if source else "", nominal.clen_m * 1000, nominal.photon_energy_ev / 1000)
    return g
