"""HDF5 / CXI / NeXus run sources: image stacks read lazily, one frame at a time.

A run is one dataset of one file -- an ``(N, ss, fs)`` stack or a single ``(ss, fs)`` image -- or
(NeXus/Eiger master files) the ordered list of ``/entry/data/data_NNNNNN`` external links, each
an ``(n, ss, fs)`` block in its own data file (see :mod:`.nexus`).  Files are opened for SWMR
reading where possible, so :meth:`HDF5Source.refresh` picks up frames a writer appended.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from dataclasses import dataclass
from typing import Optional

import h5py
import numpy as np

from ..errors import GeometryError, InputError
from ..frame import EventId, Frame, FrameMetadata
from .base import RunSource
from .frames import PixelRules, make_frame
from .h5direct import direct_reader
from .h5util import check_frame_size, check_image_dataset, choose_image_dataset, describe_h5_error, get_dataset, open_h5
from .geometry_link import beside_geometry, check_geometry, geometry_data_path
from .metadata_h5 import H5Metadata
from .prefetch import Prefetcher

log = logging.getLogger(__name__)


@dataclass
class Block:
    """A run of consecutive frames stored in one dataset."""

    ds: h5py.Dataset
    path: str  # file holding the pixels (what a CrystFEL .lst names)
    dataset: str  # dataset path inside that file
    n: int  # frames (1 for a 2-D dataset)
    stacked: bool  # True: (N, ss, fs); False: a single 2-D image
    link: Optional[str] = None  # master-file link (``/entry/data/data_000001``) it was reached through
    own_file: Optional[h5py.File] = None  # a linked data file this block opened (closed with the source)

    def __post_init__(self):
        self.fast_read = direct_reader(self.ds)  # gzip frames inflated with ISA-L, when possible

    def read(self, local: int) -> np.ndarray:
        if self.fast_read is not None:
            out = self.fast_read(local)
            if out is not None:
                return out
        return self.ds[local] if self.stacked else self.ds[()]

    def current_length(self) -> int:
        if not self.stacked:
            return 1
        try:
            self.ds.refresh()
        except (AttributeError, RuntimeError, OSError, ValueError):
            pass
        try:
            return int(self.ds.shape[0])
        except (OSError, RuntimeError):
            return self.n


class HDF5Source(RunSource):
    """Frames of one HDF5 file (CXI, Cheetah, NeXus, Eiger master with linked data files)."""

    def __init__(self, path, dataset: Optional[str] = None, geometry=None, *, require_data: bool = True):
        self.path = os.fspath(path)
        self.description = self.path
        self.warnings: list = []
        self._geometry = geometry
        self.file = open_h5(self.path)
        self.swmr = bool(getattr(self.file, "swmr_mode", False))
        self._stat = _stat(self.path)
        self.blocks: list = []
        self._starts: list = []
        self.rules = PixelRules()
        self.static_bad: Optional[np.ndarray] = None
        # frames inflated with ISA-L (gzip) are decoded one ahead in the background
        self._lock = threading.RLock()
        self._raw_cache = Prefetcher(self._read_block, key=lambda i: i, nbytes=lambda a: a.nbytes, max_items=3)
        try:
            self.dataset = dataset or geometry_data_path(geometry, self.path) or self._choose()
            self._open_blocks(require_data)
            self._file_state()
            if geometry is not None and self.blocks:
                check_geometry(geometry, self.frame_shape(), f"{self.path}:{self.dataset}")
        except BaseException:
            self.close()
            raise

    def _file_state(self) -> None:
        """Metadata reader, pixel rules and masks of the open file (again after a re-open)."""
        self.metadata_reader = H5Metadata(self.file, self.dataset if not self._is_master else self.image_path,
                                          self._geometry)
        self._detector_rules()
        self._frame_mask = None
        if not self._is_master and self.blocks and self.blocks[0].stacked and self.static_bad is None:
            from .nexus import per_frame_mask

            self._frame_mask = per_frame_mask(self.file, self.blocks[0].ds.shape)
            self._mask_fast = direct_reader(self._frame_mask) if self._frame_mask is not None else None

    # --- opening -------------------------------------------------------------------------------
    _is_master = False
    _frame_mask = None
    _mask_fast = None
    image_path = ""

    def _choose(self) -> str:
        from .nexus import eiger_data_links

        if eiger_data_links(self.file):
            return "/entry/data"
        return choose_image_dataset(self.file, self.path)

    def _open_blocks(self, require_data: bool) -> None:
        from .nexus import eiger_data_links, open_eiger_blocks

        links = eiger_data_links(self.file) if self.dataset.rstrip("/") in ("/entry/data", "entry/data") else []
        if links:
            self._is_master = True
            self.image_path = links[0]
            self.blocks, problems = open_eiger_blocks(self.file, self.path, links)
            self.warnings.extend(problems)
            if problems and require_data and not self.blocks:
                raise InputError("; ".join(problems) + "; no frames can be read (the master file's metadata "
                                 "is still readable: peaknet info shows it)")
            if problems and require_data:
                log.warning("%s", "; ".join(problems))
        else:
            ds = get_dataset(self.file, self.dataset, self.path)
            check_image_dataset(ds, self.path)
            self.dataset = ds.name
            self.image_path = ds.name
            stacked = ds.ndim == 3
            self.blocks = [Block(ds, self.path, ds.name, int(ds.shape[0]) if stacked else 1, stacked)]
        self._reindex()

    def _reindex(self) -> None:
        starts, total = [], 0
        for b in self.blocks:
            starts.append(total)
            total += b.n
        self._starts, self._len = starts, total  # swapped in whole: readers on other threads

    def _detector_rules(self) -> None:
        from .nexus import detector_rules

        self.rules, self.static_bad = detector_rules(self.file, self.frame_shape(), self.blocks)

    # --- RunSource --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._len

    def _locate(self, index: int) -> tuple:
        k = bisect.bisect_right(self._starts, index) - 1
        return self.blocks[k], index - self._starts[k]

    def event(self, index: int) -> EventId:
        index = self._check_index(index)
        block, local = self._locate(index)
        return EventId(block.path, local if block.stacked else None)

    def _check_index(self, index) -> int:
        asked = index = int(index)
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise InputError(f"{self.description}: event index {asked} is out of range (run has {n} frames)")
        return index

    def read_raw(self, index: int) -> np.ndarray:
        """The stored pixels of frame ``index`` (file dtype), without any conversion."""
        self._ensure_open()
        index = self._check_index(index)
        block, _local = self._locate(index)
        if block.fast_read is None:
            return self._read_block(index)
        raw = self._raw_cache.get(index)
        self._raw_cache.hint(index, len(self))
        return raw

    def _read_block(self, index: int) -> np.ndarray:
        with self._lock:  # not while refresh() swaps blocks or re-opens the file
            block, local = self._locate(index)
            check_frame_size(block.path, block.dataset, block.ds)
            try:
                return block.read(local)
            except (OSError, RuntimeError, ValueError, KeyError) as e:
                raise InputError(describe_h5_error(block.path, block.dataset, e, block.ds)) from e

    def _read(self, index: int) -> Frame:
        raw = self.read_raw(index)
        block, local = self._locate(index)
        where = f"{block.path}:{block.dataset}" + (f" frame {local}" if block.stacked else "")
        md = self.metadata(index)
        with self._lock:
            static, fmask, fast = self.static_bad, self._frame_mask, self._mask_fast
            if fmask is not None:
                try:
                    if local < fmask.shape[0] or self._refresh_mask() > local:
                        m = fast(local) if fast is not None else None
                        static = (np.asarray(fmask[local] if m is None else m) & 1) != 0
                except (OSError, RuntimeError, ValueError) as e:
                    raise InputError(describe_h5_error(block.path, fmask.name, e)) from e
        return make_frame(raw, self.event(index), index, md, rules=self.rules, static_bad=static, where=where)

    def _refresh_mask(self) -> int:
        try:
            self._frame_mask.refresh()
        except (AttributeError, RuntimeError, OSError, ValueError):
            pass
        return int(self._frame_mask.shape[0])

    def metadata(self, index: int = 0) -> FrameMetadata:
        self._ensure_open()
        md = self.metadata_reader.get(int(index))
        if self._is_master:
            md.extra["master_file"] = self.path
        return md

    def frame_shape(self) -> Optional[tuple]:
        if not self.blocks:
            if self._is_master:  # data files missing: the detector size the master file states
                spec = "/entry/instrument/detector/detectorSpecific"
                try:
                    ny = int(np.asarray(self.file[f"{spec}/y_pixels_in_detector"][()]).ravel()[0])
                    nx = int(np.asarray(self.file[f"{spec}/x_pixels_in_detector"][()]).ravel()[0])
                    return (ny, nx)
                except (KeyError, OSError, ValueError, IndexError, TypeError):
                    return None
            return None
        return tuple(int(s) for s in self.blocks[0].ds.shape[-2:])

    def raw_dtype(self) -> Optional[str]:
        return str(self.blocks[0].ds.dtype) if self.blocks else None

    def refresh(self) -> int:
        """Pick up frames appended since the last look (SWMR writers; or re-open a closed file).

        Safe to call from one thread while others read frames (the GUI's worker does this)."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> int:
        before = len(self)
        if self.file is None:
            self._reopen()
            return len(self) - before
        for b in self.blocks:
            if b.stacked:
                b.n = max(b.n, b.current_length())
        self._reindex()
        if len(self) == before and self.blocks and self.blocks[-1].stacked and _stat(self.path) != self._stat:
            self._reopen()  # a writer without SWMR changed the file: look again from scratch
        if self._is_master:  # data files written after the master (in link order)
            from .nexus import eiger_data_links, open_eiger_blocks

            last = self.blocks[-1].link if self.blocks else None
            links = [ln for ln in eiger_data_links(self.file) if last is None or ln > last]
            for ln in links:
                new, problems = open_eiger_blocks(self.file, self.path, [ln])
                if not new:
                    break
                self.blocks.extend(new)
        self._reindex()
        return len(self) - before

    def _reopen(self) -> bool:
        """A file written without SWMR changed: close it and open it again to see its new size.

        The old handle is closed first (HDF5 would otherwise hand back the same, stale, open file).
        When the file cannot be opened right now (being rewritten) the source retries on the next
        read or refresh.
        """
        if self._is_master:
            return False
        self._raw_cache.clear()  # not close(): a background read may be waiting for our lock
        try:
            self.file.close()
        except Exception:  # pragma: no cover
            pass
        self.file = None
        try:
            f = open_h5(self.path)
        except InputError:
            return False
        try:
            ds = f[self.dataset]
            stacked = ds.ndim == 3
            n = int(ds.shape[0]) if stacked else 1
        except (KeyError, OSError, RuntimeError):
            f.close()
            return False
        self.file = f
        self.swmr = bool(getattr(f, "swmr_mode", False))
        self._stat = _stat(self.path)
        b = self.blocks[0]
        self.blocks = [Block(ds, b.path, b.dataset, max(n, 0), stacked)]
        self._file_state()
        self._reindex()
        return True

    def _ensure_open(self) -> None:
        with self._lock:
            if self.file is None and not self._reopen():
                raise InputError(f"{self.path}: the file cannot be opened again (is it being rewritten?)")

    #: where :meth:`geometry` came from ("given", "beside", "headers" or None)
    geometry_origin: Optional[str] = None

    def geometry(self):
        """The geometry given to open_run; else ``<stem>.geom`` beside the file (as the simulator and
        the CXI exporter write it) when it fits the frames; else one from the file's metadata."""
        if self._geometry is not None:
            self.geometry_origin = "given"
            return self._geometry
        shape = self.frame_shape()
        beside = beside_geometry(self.path, shape)
        if beside is not None:
            self.geometry_origin = "beside"
            return beside
        from ..geometry.from_metadata import geometry_from_metadata

        if shape is None:
            return None
        try:
            geom = geometry_from_metadata(self.metadata(0), shape, source=self.path)
        except GeometryError:
            return None
        self.geometry_origin = "headers"
        if not self._is_master:  # where CrystFEL finds the frames of this file
            stacked = self.blocks[0].stacked
            geom.globals.setdefault("data", self.dataset)
            dims = ["%", "ss", "fs"] if stacked else ["ss", "fs"]
            for k, d in enumerate(dims):
                geom.globals.setdefault(f"dim{k}", d)
        return geom

    def close(self) -> None:
        cache = getattr(self, "_raw_cache", None)
        if cache is not None:
            cache.close()
        for b in getattr(self, "blocks", ()):
            if b.own_file is not None:
                try:
                    b.own_file.close()
                except Exception:  # pragma: no cover
                    pass
        f = getattr(self, "file", None)
        if f is not None:
            try:
                f.close()
            except Exception:  # pragma: no cover
                pass


def _stat(path: str) -> tuple:
    try:
        st = os.stat(path)
        return (st.st_size, st.st_mtime_ns)
    except OSError:
        return (None, None)
