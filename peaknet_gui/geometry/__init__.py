"""Detector geometry (Qt-free): CrystFEL ``.geom`` files, pixel maps, panel assembly."""

from .detector import BadRegion, Geometry, Panel  # noqa: F401
from .pixelmap import PixelMap, pixel_map  # noqa: F401
