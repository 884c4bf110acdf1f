"""Read one calibrant frame for ``peaknet calibrate``.

Frames are read through the project's run sources (:func:`peaknet_gui.sources.open_run`) when
they are available; until then (and for files they do not take) a small fallback reads HDF5
(one 2-D image or a frame of a 3-D stack; the dataset found automatically when not given) with
h5py and every other format with fabio.  Pilatus gaps (negative values) and NaN/inf are marked
bad.  Errors name the file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from ..frame import EventId, Frame, FrameMetadata

log = logging.getLogger(__name__)

_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".cxi", ".nxs", ".nx5", ".nexus")


def read_calibrant_frame(path, dataset: Optional[str] = None, index: int = 0) -> Frame:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        from ..sources import open_run  # sources engineer's readers, when present
    except ImportError:
        open_run = None
    if open_run is not None:
        src = open_run(str(path), dataset=dataset)
        try:
            frame = src[index]
        finally:
            src.close()
        if not frame.metadata.photon_energy_ev and path.suffix.lower() in _HDF5_SUFFIXES:
            frame.metadata.photon_energy_ev = _hdf5_energy(path)
        return frame
    if path.suffix.lower() in _HDF5_SUFFIXES:
        return _read_hdf5(path, dataset, index)
    return _read_fabio(path, index)


def _finish(data: np.ndarray, path: Path, index: Optional[int], md: FrameMetadata) -> Frame:
    if data.ndim != 2:
        raise InputError(f"{path}: the image is {data.ndim}-D (shape {data.shape}); give --dataset or --event")
    data = np.asarray(data)
    bad = ~np.isfinite(data) if data.dtype.kind == "f" else np.zeros(data.shape, bool)
    if data.dtype.kind in "if":
        bad |= np.nan_to_num(data, nan=0.0) < 0
    data = np.where(bad, 0, data).astype(np.float32)
    if bad.all():
        raise InputError(f"{path}: every pixel of the frame is invalid (negative, NaN or inf)")
    return Frame(data=data, event=EventId(str(path), index), serial=index or 0, metadata=md, bad=bad)


def _find_image_dataset(f) -> str:
    import h5py

    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.ndim in (2, 3) and obj.dtype.kind in "iuf" and min(obj.shape[-2:]) >= 8:
            found.append((int(np.prod(obj.shape[-2:])), name))

    f.visititems(visit)
    if not found:
        raise InputError(f"{f.filename}: no 2-D or 3-D image dataset found; give --dataset")
    found.sort(key=lambda t: (-t[0], t[1]))
    return found[0][1]


def _read_hdf5(path: Path, dataset: Optional[str], index: int) -> Frame:
    import h5py

    try:
        import hdf5plugin  # noqa: F401  (compression filters)
    except ImportError:  # pragma: no cover
        pass
    try:
        with h5py.File(path, "r") as f:
            name = dataset or _find_image_dataset(f)
            if name not in f or not isinstance(f[name], h5py.Dataset):
                raise InputError(f"{path}: no dataset {name!r}")
            ds = f[name]
            if ds.ndim == 3:
                if not 0 <= index < ds.shape[0]:
                    raise InputError(f"{path}:{name}: event {index} out of range (0..{ds.shape[0] - 1})")
                data, idx = ds[index], index
            elif ds.ndim == 2:
                data, idx = ds[()], None
            else:
                raise InputError(f"{path}:{name}: not an image (shape {ds.shape})")
            md = _nexus_metadata(f)
    except OSError as e:
        raise InputError(f"{path}: not a readable HDF5 file ({e})") from e
    return _finish(data, path, idx, md)


def _scalar(f, *names):
    for n in names:
        if n in f:
            try:
                v = np.asarray(f[n][()]).ravel()
                return float(v[0]) if v.size else None
            except (TypeError, ValueError):
                continue
    return None


def _nexus_metadata(f) -> FrameMetadata:
    """Wavelength from standard NeXus fields (beam centre and distance are left to the user:
    their units and axes are too often inconsistent to serve as a start without a check)."""
    wl = _scalar(f, "entry/instrument/monochromator/wavelength", "entry/instrument/beam/incident_wavelength")
    energy_kev = _scalar(f, "entry/instrument/monochromator/energy")
    e = 12398.419843320026 / wl if wl else (energy_kev * 1e3 if energy_kev else None)
    return FrameMetadata(photon_energy_ev=e)


def _hdf5_energy(path: Path) -> Optional[float]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return _nexus_metadata(f).photon_energy_ev
    except OSError:
        return None


def _read_fabio(path: Path, index: int) -> Frame:
    import fabio

    try:
        img = fabio.open(str(path))
        if index:
            img = img.getframe(index)
        data = img.data
        header = dict(img.header)
    except Exception as e:  # fabio raises many kinds on bad files
        raise InputError(f"{path}: cannot read the image ({e})") from e
    return _finish(np.asarray(data), path, None if not index else index, FrameMetadata(extra={"header": str(header)[:200]}))
