"""Detector geometry (Qt-free): CrystFEL ``.geom`` files, pixel maps, panel assembly, static masks.

Coordinates everywhere in the program are pixel indices of the frame's 2-D data array with the
*centre* of the first pixel at (fs, ss) = (0, 0).  CrystFEL's corner convention (pixel (0, 0)
spans [0, 1) so its centre is at 0.5) appears only in :mod:`.detector` (``corner_x``/``corner_y``),
in :mod:`.static_mask` (x/y bad regions, tested on pixel corners as CrystFEL does) and in the exporters.
"""

from .detector import BadRegion, Geometry, Panel  # noqa: F401
from .pixelmap import PixelMap, pixel_map  # noqa: F401
from .crystfel_geom import parse_geom_text, read_geom  # noqa: F401
from .geom_writer import format_geom_text, write_geom  # noqa: F401
from .assemble import Assembler  # noqa: F401
from .from_metadata import geometry_from_metadata  # noqa: F401
from .static_mask import geometry_bad_mask  # noqa: F401
