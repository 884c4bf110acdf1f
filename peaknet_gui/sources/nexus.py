"""NeXus / Dectris Eiger master files and detector pixel conventions of HDF5 runs.

An Eiger master file holds the metadata and a group ``/entry/data`` of external links
``data_000001``, ``data_000002``... each pointing at ``/entry/data/data`` (n, ss, fs) of a data
file beside the master.  The run is their concatenation, in link-name order; a frame's event id
names the data file and its index in it (what CrystFEL reads with ``data = /entry/data/data``).

Pixel conventions: the detector's ``pixel_mask`` (non-zero = bad) and, for unsigned Dectris
data, the marker value ``2**bit_depth_image - 1`` are bad pixels; CXI files may hold a mask
dataset beside the data (``/entry_1/data_1/mask``, bit 0x1 = bad, per frame or one 2-D mask);
negative values of 32-bit signed data are bad (photon counters: Pilatus gaps -1, bad pixels -2),
those of 16-bit signed data are not (dark-subtracted integrating detectors such as the CSPAD).
"""

from __future__ import annotations

import os
import re
from typing import Optional

import h5py
import numpy as np

from ..errors import InputError
from .frames import PixelRules
from .h5util import check_image_dataset, open_h5

_DATA_LINK = re.compile(r"^data_\d+$")


def eiger_data_links(f: h5py.File) -> list:
    """Absolute paths ``/entry/data/data_NNNNNN`` of an Eiger/NeXus master file, sorted."""
    g = f.get("/entry/data")
    if not isinstance(g, h5py.Group):
        return []
    try:
        names = [n for n in g if _DATA_LINK.match(n)]
    except (OSError, RuntimeError):
        return []
    return [f"/entry/data/{n}" for n in sorted(names)]


def open_eiger_blocks(f: h5py.File, master_path: str, links: list) -> tuple:
    """(blocks, problems): one :class:`~.hdf5.Block` per readable linked dataset."""
    from .hdf5 import Block

    blocks, problems, missing = [], [], []
    base = os.path.dirname(os.path.abspath(master_path))
    for link_path in links:
        link = f.get(link_path, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            target = link.filename if os.path.isabs(link.filename) else os.path.join(base, link.filename)
            if not os.path.exists(target):
                missing.append(f"{link.filename} ({link_path})")
                continue
            try:
                df = open_h5(target)
                ds = df.get(link.path)
            except InputError as e:
                problems.append(str(e))
                continue
            if not isinstance(ds, h5py.Dataset):
                problems.append(f"{target}: no dataset {link.path} (linked from {master_path}:{link_path})")
                df.close()
                continue
            file_path, ds_path, own = target, link.path, df
        else:  # data stored in the master itself (hard link) or a soft link
            try:
                ds = f[link_path]
            except (KeyError, OSError, RuntimeError) as e:
                problems.append(f"{master_path}:{link_path}: cannot be opened ({e})")
                continue
            file_path, ds_path, own = master_path, ds.name, None
        try:
            check_image_dataset(ds, file_path)
        except InputError as e:
            problems.append(str(e))
            if own is not None:
                own.close()
            continue
        stacked = ds.ndim == 3
        blocks.append(Block(ds, file_path, ds_path, int(ds.shape[0]) if stacked else 1, stacked, link=link_path,
                            own_file=own))
    if missing:
        problems.insert(0, f"{master_path}: the linked data file{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing)} {'are' if len(missing) > 1 else 'is'} missing beside the master file")
    shapes = {tuple(b.ds.shape[-2:]) for b in blocks}
    if len(shapes) > 1:
        raise InputError(f"{master_path}: the linked data files hold frames of different shapes "
                         f"({', '.join('x'.join(map(str, s)) for s in sorted(shapes))})")
    return blocks, problems


def _read_2d(f: h5py.File, path: str, shape: tuple) -> Optional[np.ndarray]:
    try:
        ds = f.get(path)
        if isinstance(ds, h5py.Dataset) and ds.ndim == 2 and tuple(ds.shape) == tuple(shape) and ds.dtype.kind in "iub":
            return np.asarray(ds[()])
    except (OSError, RuntimeError, ValueError):
        return None
    return None


def detector_rules(f: h5py.File, shape: Optional[tuple], blocks: list) -> tuple:
    """(PixelRules, static bad mask or None) for an HDF5 run."""
    rules = PixelRules()
    static_bad = None
    if shape is None:
        return rules, None
    is_dectris = "/entry/instrument/detector/detectorSpecific" in f
    if is_dectris:
        for p in ("/entry/instrument/detector/pixel_mask", "/entry/instrument/detector/detectorSpecific/pixel_mask"):
            m = _read_2d(f, p, shape)
            if m is not None:
                static_bad = m != 0
                break
        dtype = blocks[0].ds.dtype if blocks else None
        if dtype is not None and dtype.kind == "u":
            bits = None
            try:
                bits = int(np.asarray(f["/entry/instrument/detector/bit_depth_image"][()]).ravel()[0])
            except (KeyError, OSError, ValueError, IndexError, TypeError):
                pass
            bits = bits if bits and bits <= dtype.itemsize * 8 else dtype.itemsize * 8
            rules = PixelRules(marker_value=float(2**bits - 1))
    else:
        dtype = blocks[0].ds.dtype if blocks else None
        if dtype is not None and dtype.kind == "i" and dtype.itemsize >= 4:
            # 32-bit signed pixels come from photon counters (Pilatus: -1 gaps, -2 bad pixels); 16-bit
            # signed data (CSPAD, dark-subtracted) has real negative values and is left alone
            rules = PixelRules(negative_is_bad=True)
        for p in ("/entry_1/data_1/mask", "/entry_1/instrument_1/detector_1/mask"):
            m = _read_2d(f, p, shape)
            if m is not None:
                static_bad = (m & 1) != 0
                break
    return rules, static_bad


def per_frame_mask(f: h5py.File, stack_shape: tuple) -> Optional[h5py.Dataset]:
    """The CXI per-frame mask dataset (N, ss, fs) beside an image stack, if any."""
    for p in ("/entry_1/data_1/mask",):
        ds = f.get(p)
        if isinstance(ds, h5py.Dataset) and ds.ndim == 3 and tuple(ds.shape[1:]) == tuple(stack_shape[-2:]) \
                and ds.dtype.kind in "iub":
            return ds
    return None
