"""Opening HDF5 files safely and finding the image datasets in them.

Every h5py/OSError is turned into :class:`InputError` naming the file.  Files are opened for
SWMR reading when the library allows it (so a run that is still being written can be followed),
with the hdf5plugin filters (bitshuffle, LZ4, ...) registered.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InputError

# Readers never lock a run: a reader's lock makes a writer that does not use SWMR (Cheetah, OM,
# the simulator, a detector's file writer) fail to open the file it is still writing.  Files are
# opened with ``locking=False``; ``peaknet_gui/__init__.py`` also sets HDF5_USE_FILE_LOCKING=FALSE
# before h5py loads, so plain ``h5py.File(path)`` calls elsewhere in the process use the same
# flags (HDF5 refuses to open one file twice with different locking flags).

try:  # registers the bitshuffle / LZ4 / Blosc / Zstd filters with HDF5
    import hdf5plugin  # noqa: F401
except ImportError:  # pragma: no cover - hdf5plugin is an install requirement
    hdf5plugin = None

import h5py

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".cxi", ".nxs", ".nx5", ".nexus", ".nx")

#: well-known image stack locations, tried in this order before searching the file
KNOWN_IMAGE_PATHS = (
    "/entry_1/data_1/data",  # CXI (Cheetah, CrystFEL, OM, our simulator)
    "/entry_1/instrument_1/detector_1/data",
    "/data/data",  # Cheetah "raw layout" single-frame files
    "/entry/data/data",  # NeXus NXdata
    "/entry/instrument/detector/data",
)

#: dataset names that are never the image stack (masks, labels, calibration constants)
_NOT_IMAGES = re.compile(
    r"(^|/)(mask|pixel_mask|labels?|flatfield|flat_field|trimbit|gain|pedestal|dark|"
    r"countrate_correction\w*|peak\w*|bad_pixels?|powder\w*|sum\w*|mean\w*|std\w*|"
    r"sigma\w*|background\w*)$",
    re.IGNORECASE,
)
_NOT_IMAGE_GROUPS = re.compile(r"(^|/)(detectorSpecific|result_\d+|calibration\w*)(/|$)", re.IGNORECASE)

MIN_IMAGE_SIDE = 8


@dataclass(frozen=True)
class DatasetInfo:
    """One image-like dataset of an HDF5 file: ``path`` (absolute), ``shape``, ``dtype`` (str)."""

    path: str
    shape: tuple
    dtype: str

    @property
    def n_frames(self) -> int:
        return int(self.shape[0]) if len(self.shape) == 3 else 1

    def __str__(self) -> str:
        return f"{self.path} {'x'.join(map(str, self.shape))} {self.dtype}"


class AmbiguousDatasetError(InputError):
    """More than one dataset could be the image stack; ``candidates`` lists them."""

    def __init__(self, message: str, candidates: list):
        super().__init__(message)
        self.candidates = list(candidates)


def is_hdf5(path) -> bool:
    """True when the file starts with the HDF5 signature (also at the 512/1024/... user-block offsets)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if head == HDF5_SIGNATURE:
                return True
            size = os.fstat(fh.fileno()).st_size
            off = 512
            while off + 8 <= min(size, 1 << 20):
                fh.seek(off)
                if fh.read(8) == HDF5_SIGNATURE:
                    return True
                off *= 2
    except OSError:
        return False
    return False


def open_h5(path, swmr: bool = True) -> h5py.File:
    """Open ``path`` read-only; SWMR reading when possible.  InputError on any failure."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not an HDF5 file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied (file is not readable)")
    errors = []
    # SWMR reading when the file allows it; default locking flags last, for a file this process
    # already holds open with them
    attempts = ([{"swmr": True, "locking": False}] if swmr else []) + [{"locking": False}]
    attempts += ([{"swmr": True}] if swmr else []) + [{}]
    for kw in attempts:
        try:
            return h5py.File(path, "r", **kw)
        except (OSError, ValueError, TypeError, RuntimeError) as e:  # h5py raises OSError for bad files
            errors.append(str(e))
    if not is_hdf5(path):
        size = os.path.getsize(path)
        what = "empty file" if size == 0 else "not an HDF5 file (no HDF5 signature)"
        raise InputError(f"{path}: cannot read as HDF5: {what}")
    raise InputError(f"{path}: corrupt or truncated HDF5 file ({errors[-1]})")


#: the largest frame read (bytes): a bigger dataset is refused before numpy tries to allocate it
MAX_FRAME_BYTES = 8 << 30


def check_frame_size(path: str, dataset: str, ds) -> None:
    """InputError when one frame of ``ds`` would not fit in memory (checked before reading)."""
    try:
        shape = tuple(int(s) for s in ds.shape[-2:])
        nbytes = int(np.prod(shape, dtype=np.int64)) * int(ds.dtype.itemsize)
    except (TypeError, ValueError, AttributeError, OSError, RuntimeError):
        return
    if nbytes > MAX_FRAME_BYTES:
        raise InputError(f"{path}:{dataset}: one frame of {'x'.join(map(str, shape))} {ds.dtype} is too large to read "
                         f"({nbytes / 2**30:.1f} GiB; at most {MAX_FRAME_BYTES / 2**30:.0f} GiB)")


def _filters_available(ds) -> Optional[bool]:
    """True when every filter of ``ds``'s pipeline is available (None: unknown)."""
    try:
        from h5py import h5z

        plist = ds.id.get_create_plist()
        return all(h5z.filter_avail(plist.get_filter(k)[0]) for k in range(plist.get_nfilters()))
    except Exception:  # noqa: BLE001 -- a damaged header: unknown
        return None


def describe_h5_error(path: str, dataset: str, e: Exception, ds=None) -> str:
    """A user-facing message for a failure while reading ``dataset`` (``ds``: the dataset, to
    tell a missing filter from corrupt compressed data)."""
    msg = " ".join(str(e).split())
    low = msg.lower()
    if "filter" in low or "plugin" in low or "can't open directory" in low:
        if ds is not None and _filters_available(ds):
            return (f"{path}:{dataset}: corrupt compressed data (the compression filter is installed but failed "
                    f"to decode a chunk: {msg})")
        return f"{path}:{dataset}: cannot decompress the data (missing HDF5 compression filter: {msg})"
    if "external" in low or "unable to open file" in low:
        return f"{path}:{dataset}: data lives in a linked file that cannot be opened ({msg})"
    return f"{path}:{dataset}: cannot read the data; the file is corrupt or truncated ({msg})"


def get_dataset(f: h5py.File, path: str, where: str) -> h5py.Dataset:
    """Dataset ``path`` of ``f`` or InputError (missing, group, broken external link)."""
    try:
        link = f.get(path, getlink=True)
    except (KeyError, ValueError, OSError, RuntimeError):
        link = None
    if link is None:
        hint = ", ".join(str(d.path) for d in image_datasets(f)[:6])
        raise InputError(f"{where}: dataset {path} not found" + (f" (image datasets in the file: {hint})" if hint else ""))
    try:
        obj = f[path]
    except (KeyError, OSError, RuntimeError, ValueError) as e:
        if isinstance(link, h5py.ExternalLink):
            target = os.path.join(os.path.dirname(f.filename), link.filename)
            raise InputError(
                f"{where}: dataset {path} is an external link to {link.filename}:{link.path}, "
                f"which cannot be opened ({'the file is missing' if not os.path.exists(target) else e})"
            ) from e
        raise InputError(f"{where}: dataset {path} cannot be opened ({e})") from e
    if not isinstance(obj, h5py.Dataset):
        raise InputError(f"{where}: {path} is a group, not a dataset")
    return obj


def check_image_dataset(ds: h5py.Dataset, where: str) -> None:
    """InputError unless ``ds`` holds 2-D images (a single image or an (N, ss, fs) stack)."""
    if ds.dtype.kind not in "iufb":
        raise InputError(f"{where}:{ds.name}: holds {ds.dtype} values, not pixel intensities")
    if ds.ndim not in (2, 3):
        kind = {0: "a scalar (0-d)", 1: "a 1-d array"}.get(ds.ndim, f"{ds.ndim}-d")
        raise InputError(
            f"{where}:{ds.name}: is {kind} of shape {ds.shape}, not an image (need 2-d (ss, fs) or "
            f"3-d (frames, ss, fs))"
        )
    if min(ds.shape[-2:]) < 1:
        raise InputError(f"{where}:{ds.name}: empty image dimensions {ds.shape}")


def _looks_like_image(name: str, obj) -> bool:
    return (
        isinstance(obj, h5py.Dataset)
        and obj.ndim in (2, 3)
        and obj.dtype.kind in "iuf"
        and min(obj.shape[-2:]) >= MIN_IMAGE_SIDE
    )


def image_datasets(f: h5py.File) -> list:
    """Every 2-D/3-D numeric dataset with both image sides >= 8 (hard links; each object once)."""
    found = {}

    def visit(name, obj):
        if _looks_like_image(name, obj):
            key = obj.id.addr if hasattr(obj.id, "addr") else name
            if key not in found:
                found[key] = DatasetInfo("/" + name, tuple(obj.shape), str(obj.dtype))

    try:
        f.visititems(visit)
    except (OSError, RuntimeError, KeyError):
        pass
    out = list(found.values())
    # external links (NeXus / Eiger master files): listed without being followed when broken
    for group in ("/entry/data",):
        if group in f:
            for name in sorted(f[group]):
                link = f[group].get(name, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    try:
                        obj = f[group][name]
                        if _looks_like_image(name, obj):
                            out.append(DatasetInfo(f"{group}/{name}", tuple(obj.shape), str(obj.dtype)))
                    except (KeyError, OSError, RuntimeError):
                        out.append(DatasetInfo(f"{group}/{name}", (), "unavailable (linked file missing)"))
    return out


def choose_image_dataset(f: h5py.File, where: str) -> str:
    """The path of the image stack when it is unambiguous; else AmbiguousDatasetError / InputError."""
    for p in KNOWN_IMAGE_PATHS:
        if p in f:
            try:
                obj = f[p]
            except (KeyError, OSError, RuntimeError):
                continue
            if _looks_like_image(p, obj):
                return p
    signal = _nxdata_signal(f)
    if signal:
        return signal
    cands = [d for d in image_datasets(f) if d.shape]
    plausible = [d for d in cands if not _NOT_IMAGES.search(d.path) and not _NOT_IMAGE_GROUPS.search(d.path)]
    if len(plausible) == 1:
        return plausible[0].path
    stacks = [d for d in plausible if len(d.shape) == 3]
    if len(stacks) == 1:
        return stacks[0].path
    if not cands:
        raise InputError(f"{where}: no image dataset (2-d or 3-d numeric array) found in the file")
    pool = plausible or cands
    listing = "; ".join(str(d) for d in pool[:12])
    raise AmbiguousDatasetError(
        f"{where}: cannot tell which dataset holds the images; choose one with --dataset: {listing}", pool
    )


def _nxdata_signal(f: h5py.File) -> Optional[str]:
    """NeXus: the ``signal`` of the entry's default NXdata group, when it is an image dataset."""
    try:
        entry_name = _attr_str(f.attrs.get("default")) or "entry"
        entry = f.get(entry_name)
        if not isinstance(entry, h5py.Group):
            return None
        data_name = _attr_str(entry.attrs.get("default")) or "data"
        data = entry.get(data_name)
        if not isinstance(data, h5py.Group):
            return None
        sig = _attr_str(data.attrs.get("signal"))
        if sig and sig in data and _looks_like_image(sig, data[sig]):
            return data[sig].name
    except (KeyError, OSError, RuntimeError, ValueError):
        return None
    return None


def _attr_str(v) -> Optional[str]:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.ndarray) and v.size == 1:
        return _attr_str(v.ravel()[0])
    return str(v)


def list_image_datasets(h5path) -> list:
    """The image-like datasets of an HDF5 file (for a dataset chooser): list of DatasetInfo."""
    with open_h5(h5path, swmr=False) as f:
        return image_datasets(f)
