"""Reading real detector frames for evaluation.

Uses the project's run sources (:func:`peaknet_gui.sources.open_run`: CBF, HDF5/CXI, NeXus, ...)
when they are available, so that evaluation sees frames exactly as ``peaknet find`` does;
otherwise falls back to fabio (CBF/EDF/TIFF...) and h5py (first 2-D/3-D image dataset), with
Pilatus gaps (negative values) and pixels at or above the header's ``Count_cutoff`` flagged bad.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterator, Optional, Tuple

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)


def _beside_geometry(path: Path):
    geoms = sorted(path.parent.glob("*.geom"))
    if len(geoms) == 1:
        from ..geometry import read_geom

        log.info("%s: using geometry %s", path, geoms[0])
        return read_geom(geoms[0])
    return None


def _fallback(path: Path) -> Iterator[Tuple[str, np.ndarray, np.ndarray]]:
    name = path.name.lower()
    if name.endswith((".h5", ".hdf5", ".cxi", ".nxs")):
        import h5py

        with h5py.File(path, "r") as f:
            found = []
            f.visititems(lambda k, v: found.append(k) if isinstance(v, h5py.Dataset) and v.ndim in (2, 3) and v.size > 4096 else None)
            if not found:
                raise InputError(f"{path}: no image dataset found")
            ds = f[found[0]]
            frames = [ds[()]] if ds.ndim == 2 else [ds[i] for i in range(ds.shape[0])]
        for i, d in enumerate(frames):
            d = np.asarray(d)
            bad = ~np.isfinite(d) if d.dtype.kind == "f" else np.zeros(d.shape, bool)
            yield f"{path.name}//{i}", np.where(bad, 0, d).astype(np.float32), bad
        return
    import fabio

    try:
        img = fabio.open(str(path))
    except Exception as e:
        raise InputError(f"{path}: cannot read the frame ({e})") from e
    d = np.asarray(img.data)
    bad = d < 0
    text = " ".join(str(v) for v in img.header.values())
    m = re.search(r"Count_cutoff\s+(\d+)", text)
    if m:
        bad |= d >= int(m.group(1))
    yield path.name, np.where(bad, 0, d).astype(np.float32), bad


def read_real_frames(path, geometry=None) -> Iterator[Tuple[str, np.ndarray, Optional[np.ndarray], object]]:
    """Yield (name, data float32, bad, geometry) for every frame of ``path``."""
    path = Path(path)
    if geometry is None and path.suffix.lower() in (".h5", ".hdf5", ".cxi"):
        geometry = _beside_geometry(path)
    try:
        from ..sources import open_run
    except ImportError:
        open_run = None
    if open_run is not None:
        src = open_run(str(path), geometry=geometry)
        try:
            geom = geometry if geometry is not None else src.geometry()
            for i in range(len(src)):
                fr = src[i]
                yield f"{path.name}//{i}" if len(src) > 1 else path.name, fr.data, fr.bad, geom
        finally:
            src.close()
        return
    for name, d, bad in _fallback(path):
        yield name, d, bad, geometry
