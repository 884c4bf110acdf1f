"""Reading CXI peak lists (``/entry_1/result_1``: Cheetah's and this program's ``hits.cxi``)."""

from __future__ import annotations

import contextlib
from typing import Optional

import numpy as np

from ..errors import InputError
from ..peaks.peaklist import PeakList
from .cxi import PEAK_DATASETS
from .geom_export import CXI_DATA, CXI_PEAKS, CXI_PHOTON_ENERGY_EV


def _open_h5(path):
    import h5py

    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as e:
        raise InputError(f"{path}: not a readable HDF5/CXI file ({e})") from e


def _peaks_row(g, i: int, geometry, energy: Optional[float]) -> PeakList:
    n = int(g["nPeaks"][i])
    kw = {}
    for name, attr in PEAK_DATASETS.items():
        if name in g:
            ds = g[name]
            if ds.shape[1] < n:
                raise InputError(f"{g.file.filename}: {g.name}/{name} has {ds.shape[1]} columns but nPeaks[{i}] = {n}")
            kw[attr] = np.asarray(ds[i, :n], dtype=np.float64)
    if "fs" not in kw or "ss" not in kw:
        raise InputError(f"{g.file.filename}: {g.name} lacks peakXPosRaw/peakYPosRaw")
    if "npix" in kw:
        kw["npix"] = np.rint(kw["npix"]).astype(np.int32)
    peaks = PeakList(**kw)
    if geometry is not None and n:
        peaks.panel = geometry.panel_at(peaks.fs, peaks.ss).astype(np.int32)
        if energy:
            with contextlib.suppress(Exception):
                peaks.resolution = np.asarray(geometry.resolution(peaks.fs, peaks.ss, energy), dtype=np.float64)
    return peaks


def read_cxi_peaks(path, index: Optional[int] = None, *, group: str = CXI_PEAKS, geometry=None):
    """Peaks of frame ``index`` (a PeakList), or of every frame (a list) when ``index`` is None.

    Positions are the file's raw pixel indices.  With a ``geometry``, panels are assigned and
    1/d computed (from ``photon_energy_eV`` in the file when present)."""
    with _open_h5(path) as f:
        if group not in f or "nPeaks" not in f[group]:
            raise InputError(f"{path}: no CXI peak list at {group} (nPeaks missing)")
        g = f[group]
        n_frames = g["nPeaks"].shape[0]
        energies = f[CXI_PHOTON_ENERGY_EV][()] if CXI_PHOTON_ENERGY_EV in f else None

        def energy(i):
            if energies is None or i >= len(energies) or not np.isfinite(energies[i]):
                return None
            return float(energies[i])

        if index is None:
            return [_peaks_row(g, i, geometry, energy(i)) for i in range(n_frames)]
        if not -n_frames <= index < n_frames:
            raise InputError(f"{path}: frame {index} out of range ({n_frames} frames)")
        index = index % n_frames
        return _peaks_row(g, index, geometry, energy(index))


def cxi_frame_count(path, dataset: str = CXI_DATA) -> int:
    with _open_h5(path) as f:
        if dataset not in f:
            raise InputError(f"{path}: no dataset {dataset}")
        return int(f[dataset].shape[0])
