"""How a run source and a CrystFEL geometry meet: the dataset a geometry names, the check that
its panels fit the frames, and the ``<stem>.geom`` found beside a data file."""

from __future__ import annotations

import logging
import os
from typing import Optional

from ..errors import GeometryError

log = logging.getLogger(__name__)


def geometry_data_path(geometry, where: str) -> Optional[str]:
    """The ``data = /path`` a CrystFEL geometry names (one path for every panel), else None."""
    if geometry is None:
        return None
    paths = {geometry.panel_setting(p, "data") for p in geometry.panels}
    paths.discard(None)
    if not paths:
        return None
    if len(paths) > 1:
        raise GeometryError(f"{geometry.source or 'geometry'}: panels read different datasets "
                            f"({', '.join(sorted(paths))}); one dataset per run is supported")
    path = paths.pop()
    if "%" in path:
        raise GeometryError(f"{geometry.source or 'geometry'}: data = {path} uses a placeholder in the dataset "
                            f"path, which is not supported for {where}; give --dataset")
    return path


def check_geometry(geometry, shape: Optional[tuple], what: str) -> None:
    """GeometryError naming the .geom when its panels do not fit frames of ``shape``."""
    if shape is None:
        return
    need = geometry.data_shape
    src = geometry.source or "geometry"
    if shape[0] < need[0] or shape[1] < need[1]:
        raise GeometryError(
            f"{src}: does not match the data: its panels need frames of at least {need[0]}x{need[1]} "
            f"(ss x fs) but {what} holds {shape[0]}x{shape[1]} frames"
        )
    if shape != tuple(need):
        log.info("%s: panels cover %dx%d of the %dx%d frames of %s", src, need[0], need[1], shape[0], shape[1], what)


def beside_geometry(path: str, shape: Optional[tuple]):
    """``<stem>.geom`` beside ``path`` when it exists, parses and fits frames of ``shape``."""
    geom_path = os.path.splitext(path)[0] + ".geom"
    if not os.path.isfile(geom_path):
        return None
    from ..geometry.crystfel_geom import read_geom

    try:
        geom = read_geom(geom_path)
        check_geometry(geom, shape, path)
    except GeometryError as e:
        log.warning("%s: not used (%s)", geom_path, e)
        return None
    return geom
