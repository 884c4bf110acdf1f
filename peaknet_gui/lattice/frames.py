"""Real frames as indexamajig reads them: an HDF5 file per frame (``/data/data`` float32,
``/data/mask`` uint8 with 1 = bad) and a one-panel CrystFEL geometry, or the frame's own HDF5
file with the user's geometry when one is given (multi-panel raw layouts such as CSPAD).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from ..errors import GeometryError, InputError


@dataclass
class PreparedFrame:
    """One frame ready for indexamajig: ``input_line`` (list-file line), ``geometry_path``,
    the program's :class:`~peaknet_gui.geometry.Geometry`, the frame's ``name`` as the other
    finders know it (the source file), and the data shape."""

    name: str
    source: str
    input_line: str
    geometry_path: str
    geometry: object
    shape: tuple
    median: float
    noise: float


def single_panel_geom_text(geometry, shape: tuple) -> str:
    """CrystFEL 0.10 geometry text of a one-panel ``geometry`` reading ``/data/data`` + mask."""
    if len(geometry.panels) != 1:
        raise GeometryError(f"{geometry.source or 'geometry'}: {len(geometry.panels)} panels; give the frame's own .geom")
    p = geometry.panels[0]
    energy = geometry.photon_energy_ev
    if not energy:
        raise GeometryError(f"{geometry.source or 'geometry'}: photon energy is unknown")
    clen = p.distance(geometry.clen)
    h, w = shape
    return "\n".join([
        "; written by peaknet evaluate --lattice for indexamajig",
        f"photon_energy = {energy:.3f}",
        f"clen = {clen:.6f}",
        f"res = {p.res:.4f}",
        "adu_per_photon = 1",
        "data = /data/data",
        "mask = /data/mask",
        "mask_good = 0x0",
        "mask_bad = 0x1",
        "",
        f"p0/min_fs = 0", f"p0/max_fs = {w - 1}", f"p0/min_ss = 0", f"p0/max_ss = {h - 1}",
        f"p0/corner_x = {p.corner_x:.4f}", f"p0/corner_y = {p.corner_y:.4f}",
        f"p0/fs = {p.fs[0]:+.6f}x {p.fs[1]:+.6f}y {p.fs[2]:+.6f}z",
        f"p0/ss = {p.ss[0]:+.6f}x {p.ss[1]:+.6f}y {p.ss[2]:+.6f}z",
        "",
    ])


def _robust(data: np.ndarray, bad: Optional[np.ndarray]) -> tuple:
    v = data[~bad] if bad is not None else data.ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    v = v[:: max(1, v.size // 200000)]
    med = float(np.median(v))
    mad = float(np.median(np.abs(v - med))) * 1.4826
    return med, max(mad, 1e-3)


def prepare_frames(paths: List[Path], workdir: Path, geometry=None, geometry_path: Optional[str] = None) -> List[PreparedFrame]:
    """Frames of ``paths`` made ready for indexamajig (see the module doc).  With a multi-panel
    ``geometry`` (from ``geometry_path``) HDF5 frames are used in place."""
    import h5py

    from ..model.realframes import read_real_frames

    workdir.mkdir(parents=True, exist_ok=True)
    out: List[PreparedFrame] = []
    for path in paths:
        for name, data, bad, geom in read_real_frames(path, geometry):
            if geom is None:
                raise GeometryError(f"{path}: the file does not say its geometry; give --geom")
            data = np.asarray(data, dtype=np.float32)
            med, noise = _robust(data, bad)
            multi = len(geom.panels) > 1
            if multi:
                if geometry_path is None or path.suffix.lower() not in (".h5", ".hdf5", ".cxi"):
                    raise InputError(f"{path}: a multi-panel frame needs its HDF5 file and --geom")
                out.append(PreparedFrame(path.name, str(path), str(path.resolve()), str(Path(geometry_path).resolve()),
                                         geom, data.shape, med, noise))
                continue
            stem = path.name.split(".")[0] + ("_" + name.rsplit("//", 1)[1] if "//" in name else "")
            h5 = workdir / f"{stem}.h5"
            with h5py.File(h5, "w") as f:
                f.create_dataset("/data/data", data=np.where(bad, 0, data) if bad is not None else data)
                f.create_dataset("/data/mask", data=(bad if bad is not None else np.zeros(data.shape, bool)).astype(np.uint8))
            text = single_panel_geom_text(geom, data.shape)
            gpath = workdir / f"frames_{hashlib.sha1(text.encode()).hexdigest()[:10]}.geom"
            gpath.write_text(text)
            out.append(PreparedFrame(path.name, str(path), str(h5.resolve()), str(gpath.resolve()), geom, data.shape,
                                     med, noise))
    return out
