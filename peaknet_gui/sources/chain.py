"""A run made of several HDF5 files, one after another (a list, a glob or a directory of them).

Files are opened when needed and at most ``max_open`` stay open.  When the first file holds a
single 2-D image (Cheetah-style one-frame files) every file is taken to hold one frame without
opening it; otherwise each file is opened once to count its frames.
"""

from __future__ import annotations

import bisect
import os
from collections import OrderedDict
from typing import Optional

from ..errors import InputError
from ..frame import EventId, Frame, FrameMetadata
from .base import RunSource
from .hdf5 import HDF5Source


class HDF5Chain(RunSource):
    def __init__(self, files, dataset: Optional[str] = None, geometry=None, description: Optional[str] = None,
                 max_open: int = 16):
        self.files = [os.fspath(f) for f in files]
        if not self.files:
            raise InputError(f"{description or 'run'}: no HDF5 files")
        self.description = description or f"{len(self.files)} HDF5 files"
        self.dataset = dataset
        self._geometry = geometry
        self.max_open = max(1, max_open)
        self._open: OrderedDict = OrderedDict()
        self.warnings: list = []
        self.skipped: list = []  # (file, reason) of files left out because they cannot be read
        while True:  # the first readable file sets the run's dataset and shape
            try:
                first = self._source(0)
                break
            except InputError as e:
                if len(self.files) == 1:
                    if not self.skipped:
                        raise
                    raise InputError(f"{self.description}: no readable HDF5 file ({len(self.skipped) + 1} unreadable, "
                                     f"e.g. {self.skipped[0][1]})") from e
                self.skipped.append((self.files.pop(0), str(e)))
        self.dataset = first.dataset
        self._shape = first.frame_shape()
        self._dtype = first.raw_dtype()
        self._single = len(first) == 1 and not first.blocks[0].stacked
        self.counts: list = []
        self._starts: list = []
        self._count_from(0)

    def _count_from(self, k0: int) -> None:
        k = k0
        while k < len(self.files):
            if self._single:
                self.counts.append(1)
            else:
                try:
                    self.counts.append(len(self._source(k)))
                except InputError as e:  # one bad file among good ones: reported, the others read
                    self.skipped.append((self.files.pop(k), str(e)))
                    continue
            k += 1
        self._starts, total = [], 0
        for c in self.counts:
            self._starts.append(total)
            total += c
        self._len = total

    def _source(self, k: int) -> HDF5Source:
        src = self._open.get(k)
        if src is not None:
            self._open.move_to_end(k)
            return src
        ds = self.dataset
        src = HDF5Source(self.files[k], dataset=ds, geometry=self._geometry)
        if k > 0 and src.frame_shape() != self._shape:
            shape = src.frame_shape()
            src.close()
            raise InputError(f"{self.files[k]}:{ds}: frame shape {'x'.join(map(str, shape or ()))} differs from the "
                             f"run's {'x'.join(map(str, self._shape))} (first file {self.files[0]})")
        self._open[k] = src
        while len(self._open) > self.max_open:
            _k, old = self._open.popitem(last=False)
            old.close()
        return src

    def __len__(self) -> int:
        return self._len

    def _locate(self, index: int) -> tuple:
        asked = index = int(index)
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise InputError(f"{self.description}: event index {asked} is out of range (run has {n} frames)")
        k = bisect.bisect_right(self._starts, index) - 1
        return k, index - self._starts[k]

    def event(self, index: int) -> EventId:
        k, local = self._locate(index)
        if self._single:
            return EventId(self.files[k], None)
        return self._source(k).event(local)

    def _read(self, index: int) -> Frame:
        k, local = self._locate(index)
        src = self._source(k)
        if self._single and len(src) != 1:
            raise InputError(f"{self.files[k]}:{src.dataset}: holds {len(src)} frames, the other files of the run "
                             f"one each")
        fr = src.frame(local)
        fr.serial = index
        return fr

    def metadata(self, index: int = 0) -> FrameMetadata:
        k, local = self._locate(index)
        return self._source(k).metadata(local)

    def frame_shape(self):
        return self._shape

    def raw_dtype(self):
        return self._dtype

    def refresh(self) -> int:
        """New frames appended to the last file (files added by a directory follower: add_files)."""
        if not self.files:
            return 0
        before = len(self)
        if not self._single:
            last = len(self.files) - 1
            self._source(last).refresh()
            self.counts[last] = len(self._source(last))
            self.counts = self.counts[: last + 1]
            self._count_from(len(self.counts))
        return len(self) - before

    def add_files(self, files) -> int:
        before = len(self)
        k0 = len(self.files)
        self.files.extend(os.fspath(f) for f in files)
        self._count_from(k0)
        return len(self) - before

    def geometry(self):
        if self._geometry is not None:
            return self._geometry
        return self._source(0).geometry()

    @property
    def geometry_origin(self):
        return "given" if self._geometry is not None else self._source(0).geometry_origin

    def close(self) -> None:
        while self._open:
            _k, src = self._open.popitem()
            src.close()
