"""``mask.h5``: a run (or single-frame) mask for CrystFEL, and the geometry that uses it.

File layout::

    /mask     (ss, fs) uint16, 1 = bad pixel, 0 = good        attrs: polarity = "bad_nonzero",
                                                                     mask_good = 0, mask_bad = 1,
                                                                     description
    /counts   (ss, fs) uint32, optional: frames in which each pixel was masked
              attrs: n_frames, fraction (the share of frames that made a pixel bad)

The polarity is explicit three times: the ``polarity`` attribute (read by
:mod:`peaknet_gui.masks.static`), CrystFEL-style ``mask_good``/``mask_bad`` attributes, and
the geometry lines ``mask_good = 0x0`` / ``mask_bad = 0x1`` (CrystFEL: bad if
``value & 0x1``; no good bit is required).  A 2-D mask applies to every frame of a
multi-frame file: CrystFEL skips the ``%`` placeholder dimensions for masks with fewer
dimensions than the data.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import ExportError, InputError
from .geom_export import MASK_BAD_BITS, MASK_GOOD_BITS, mask_geom_lines, with_mask

MASK_DATASET = "/mask"
COUNTS_DATASET = "/counts"
POLARITY = "bad_nonzero"


def write_mask_h5(path, mask: np.ndarray, *, counts: Optional[np.ndarray] = None, n_frames: Optional[int] = None,
                  fraction: Optional[float] = None, description: Optional[str] = None) -> None:
    """Write ``mask`` (bool, True = bad) atomically as ``/mask`` (uint16, 1 = bad)."""
    import h5py

    from .atomic import atomic_path

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ExportError(f"{path}: a mask must be 2-D (ss, fs), not of shape {mask.shape}")
    with atomic_path(path) as tmp:
        try:
            with h5py.File(tmp, "w") as f:
                ds = f.create_dataset(MASK_DATASET, data=mask.astype(bool).astype(np.uint16), compression="gzip",
                                      compression_opts=1, shuffle=True)
                ds.attrs["polarity"] = POLARITY
                ds.attrs["mask_good"] = np.uint16(MASK_GOOD_BITS)
                ds.attrs["mask_bad"] = np.uint16(MASK_BAD_BITS)
                ds.attrs["description"] = description or (
                    "1 = bad pixel, 0 = good; CrystFEL: mask_good = 0x0, mask_bad = 0x1")
                if counts is not None:
                    c = f.create_dataset(COUNTS_DATASET, data=np.asarray(counts, dtype=np.uint32), compression="gzip",
                                         compression_opts=1, shuffle=True)
                    if n_frames is not None:
                        c.attrs["n_frames"] = int(n_frames)
                    if fraction is not None:
                        c.attrs["fraction"] = float(fraction)
                    c.attrs["description"] = "number of frames in which each pixel was masked"
        except OSError as e:
            raise ExportError(f"{path}: cannot write mask ({e})") from e


def read_mask_h5(path, dataset: str = MASK_DATASET) -> np.ndarray:
    """Read a mask written by :func:`write_mask_h5` -> bool array, True = bad.  The file's
    ``polarity`` attribute decides; without one, non-zero = bad."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if dataset not in f:
                raise InputError(f"{path}: no dataset {dataset} (not a peaknet_gui mask file)")
            ds = f[dataset]
            values = ds[()]
            pol = ds.attrs.get("polarity", POLARITY)
    except FileNotFoundError:
        raise InputError(f"{path}: mask file not found") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read mask ({e})") from e
    pol = pol.decode() if isinstance(pol, bytes) else str(pol)
    if pol == "good_nonzero":
        return values == 0
    return values != 0


def mask_geometry(geometry, mask_file: str, dataset: str = MASK_DATASET):
    """``geometry`` plus the lines that make CrystFEL apply ``mask_file`` (as written in the
    geometry: relative to where indexamajig runs, or absolute).  Returns (geometry, slot)."""
    return with_mask(geometry, dataset, mask_file)


__all__ = ["write_mask_h5", "read_mask_h5", "mask_geometry", "mask_geom_lines", "MASK_DATASET", "POLARITY"]
