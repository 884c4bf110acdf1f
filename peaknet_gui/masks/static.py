"""Static masks: a user's mask file, the geometry's bad regions, the detector's gaps.

In memory a mask is a bool array of the frame's data shape, ``True`` = masked (bad).  Files
use either polarity, so reading one needs to know which:

* ``"bad_nonzero"``: non-zero = bad (CXI ``/entry_1/data_1/mask``, this program's ``mask.h5``,
  CrystFEL ``mask_bad = 0x1``);
* ``"good_nonzero"``: non-zero = good (Cheetah/psocake/OM pixel masks, CrystFEL ``mask_good``);
* ``"auto"``: an HDF5 attribute (``polarity`` / ``mask_polarity``, or CrystFEL-style
  ``mask_good`` / ``mask_bad``) decides; without one, the value held by the minority of
  pixels is taken as bad (real masks mask a small part of a detector).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError

POLARITIES = ("auto", "bad_nonzero", "good_nonzero")
_H5_SUFFIXES = {".h5", ".hdf5", ".cxi", ".nxs", ".hdf"}
_MASK_DATASETS = ("/mask", "/data/data", "/entry_1/data_1/mask", "/data", "/entry/instrument/detector/pixel_mask")


def _polarity_from_attrs(attrs) -> Optional[str]:
    for key in ("polarity", "mask_polarity", "convention"):
        if key in attrs:
            text = attrs[key]
            text = text.decode() if isinstance(text, bytes) else str(text)
            low = text.lower().replace("-", "_").replace(" ", "_")
            if "bad" in low and ("nonzero" in low or "non_zero" in low or "1" in low or "true" in low):
                return "bad_nonzero"
            if "good" in low and ("nonzero" in low or "non_zero" in low or "1" in low or "true" in low):
                return "good_nonzero"
    if "mask_bad" in attrs:
        return "bad_nonzero"
    if "mask_good" in attrs:
        return "good_nonzero"
    return None


def _read_h5(path: Path, dataset: Optional[str]) -> tuple:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            names = [dataset] if dataset else [d for d in _MASK_DATASETS if d in f]
            if not names:
                found = []
                f.visititems(lambda n, o: found.append("/" + n) if isinstance(o, h5py.Dataset) and o.ndim >= 2 else None)
                if len(found) != 1:
                    raise InputError(
                        f"{path}: cannot tell which dataset holds the mask (give one of: {', '.join(found) or 'none found'})"
                    )
                names = found
            name = names[0]
            if name not in f:
                raise InputError(f"{path}: no dataset {name}")
            ds = f[name]
            arr = ds[()]
            polarity = _polarity_from_attrs(ds.attrs) or _polarity_from_attrs(f.attrs)
    except InputError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise InputError(f"{path}: cannot read the mask ({e})") from e
    return arr, polarity


def read_mask_file(
    path, *, dataset: Optional[str] = None, polarity: str = "auto", shape: Optional[tuple] = None
) -> np.ndarray:
    """Read a mask from HDF5/CXI (``dataset`` or a usual path), ``.npy`` or EDF/any fabio format.

    Returns a bool array, True = masked.  ``shape`` (the frame's) is checked when given; a
    3-D mask with one frame is squeezed.  Raises :class:`InputError` naming the file on missing
    files, unknown datasets, unreadable content or a shape mismatch.
    """
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, not {polarity!r}")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: mask file not found")
    file_polarity = None
    suffix = path.suffix.lower()
    if suffix in _H5_SUFFIXES:
        arr, file_polarity = _read_h5(path, dataset)
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: cannot read the mask ({e})") from e
    else:
        try:
            import fabio

            arr = fabio.open(str(path)).data
        except Exception as e:  # fabio raises many kinds on bad files
            raise InputError(f"{path}: cannot read the mask ({e})") from e
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise InputError(f"{path}: a mask must be 2-D, this one has shape {arr.shape}")
    if shape is not None and tuple(arr.shape) != tuple(shape[-2:]):
        raise InputError(f"{path}: mask shape {arr.shape} does not match the frames' {tuple(shape[-2:])}")
    nonzero = arr != 0
    if polarity == "auto":
        polarity = file_polarity or ("good_nonzero" if nonzero.mean() > 0.5 else "bad_nonzero")
    return nonzero if polarity == "bad_nonzero" else ~nonzero


def geometry_mask(geometry, shape: tuple) -> np.ndarray:
    """The geometry's ``bad_*`` regions, ``no_index`` panels, its mask file and pixels outside
    every panel (True = masked), via :mod:`peaknet_gui.geometry.static_mask`."""
    from ..geometry.static_mask import geometry_bad_mask

    return np.asarray(geometry_bad_mask(geometry, tuple(shape)), dtype=bool)


def static_mask(
    shape: tuple,
    *,
    mask_file=None,
    mask_dataset: Optional[str] = None,
    polarity: str = "auto",
    geometry=None,
) -> Optional[np.ndarray]:
    """Union of a user mask file and the geometry's bad regions; ``None`` when neither is given.

    Detector gaps and negative pixels are per frame (``Frame.bad``); :func:`frame_mask` adds them.
    """
    shape = tuple(shape[-2:])
    mask = None
    if mask_file is not None:
        mask = read_mask_file(mask_file, dataset=mask_dataset, polarity=polarity, shape=shape)
    if geometry is not None:
        g = geometry_mask(geometry, shape)
        mask = g if mask is None else (mask | g)
    return mask
