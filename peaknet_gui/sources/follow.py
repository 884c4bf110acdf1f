"""Follow a directory or glob: files that appear become new frames on ``refresh()``.

A file is taken only once it is complete: a plain CBF when its binary section is all there; any
other file when its size has not changed between two looks at least ``settle_s`` apart (or it
was last modified more than ``settle_s`` ago).  New files are appended in natural order after
the frames already known (indices never move).
"""

from __future__ import annotations

import glob
import os
import re
import stat
import time
from typing import Callable, Optional

from ..errors import InputError
from .base import RunSource
from .cbf import compression_of, parse_head, read_bytes
from .fabio_series import FABIO_SUFFIXES, base_suffix, is_cbf
from .h5util import HDF5_SUFFIXES


def natural_key(path: str):
    """Sort key: digit runs compare as numbers (``img_2`` before ``img_10``)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", os.path.basename(path))] + [path]


def image_kind(path: str) -> Optional[str]:
    """``"hdf5"``, ``"fabio"`` or None (not an image file we read) from the file name."""
    low = path.lower()
    if low.endswith(HDF5_SUFFIXES):
        return "hdf5"
    if base_suffix(path) in FABIO_SUFFIXES:
        return "fabio"
    return None


_EIGER_DATA = re.compile(r"_data_\d+\.(h5|hdf5|nxs)$", re.IGNORECASE)


def drop_linked_data_files(files: list) -> list:
    """Eiger directories: keep ``*_master.h5`` and drop the ``*_data_NNNNNN.h5`` they link to."""
    if any(re.search(r"_master\.(h5|hdf5|nxs)$", f, re.IGNORECASE) for f in files):
        return [f for f in files if not _EIGER_DATA.search(f)]
    return files


def list_directory(directory: str, sort: bool = True) -> list:
    try:
        names = os.listdir(directory)
    except OSError as e:
        raise InputError(f"{directory}: cannot list the directory ({e.strerror})") from e
    files = [os.path.join(directory, n) for n in names if not n.startswith(".")]
    files = drop_linked_data_files([f for f in files if image_kind(f)])
    return sorted(files, key=natural_key) if sort else files


def list_glob(pattern: str, sort: bool = True) -> list:
    files = drop_linked_data_files(glob.glob(pattern))
    return sorted(files, key=natural_key) if sort else files


def cbf_complete(path: str) -> bool:
    """A plain CBF holds its whole binary section (compressed ones: False, decided by stability)."""
    if compression_of(path) is not None:
        return False
    try:
        size = os.path.getsize(path)
        head, start = parse_head(read_bytes(path, 1 << 16), path)
    except (InputError, OSError):
        return False
    return start >= 0 and head.binary_size is not None and size >= start + head.binary_size


def readable(path: str) -> bool:
    """True when the whole file can be read (used for young files found when a run is opened)."""
    return unreadable_reason(path) is None


def unreadable_reason(path: str) -> Optional[str]:
    """None when the whole file can be read, else why not (one line)."""
    try:
        kind = image_kind(path)
        if kind == "hdf5":
            from .h5util import open_h5

            open_h5(path).close()
        elif is_cbf(path):
            from .cbf import read_cbf

            read_cbf(path)
        else:
            from .fabio_series import read_fabio

            read_fabio(path)
    except InputError as e:
        return str(e)
    return None


def incomplete_cbf_reason(path: str) -> str:
    """Why a plain CBF is not complete (its binary section is shorter than its header says)."""
    try:
        size = os.path.getsize(path)
        head, start = parse_head(read_bytes(path, 1 << 16), path)
    except (InputError, OSError) as e:
        return f"not a readable CBF ({e})"
    if start < 0 or head.binary_size is None:
        return "not a complete CBF (no binary section found)"
    return (f"truncated CBF: the binary section holds {max(0, size - start)} of its {head.binary_size} bytes "
            "(still being written, or cut short)")


class Watcher:
    """Finds files that are new and complete since the last look.

    Complete means: a plain CBF whose binary section is all there, or any file not modified for
    ``settle_s`` seconds.  When the run is opened (``initial=True``) younger files are taken if
    they can be read whole; later they wait until they settle.  Files seen but not taken are
    in ``waiting`` ({path: reason}) until they are: a one-shot run (``peaknet find``) reports
    them as skipped, whatever their age, so no file is left out without a word.
    """

    def __init__(self, lister: Callable[[], list], known=(), settle_s: float = 1.0):
        self.lister = lister
        self.known = set(known)
        self.settle_s = settle_s
        self.waiting: dict = {}

    def new_files(self, initial: bool = False) -> list:
        now = time.time()
        ready = []
        for f in self.lister():
            if f in self.known:
                continue
            try:
                st = os.stat(f)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_size == 0:
                self.waiting[f] = "empty file (0 bytes)"
                continue
            reason = None
            if is_cbf(f) and compression_of(f) is None:
                ok = cbf_complete(f)
                if not ok:
                    reason = incomplete_cbf_reason(f)
            else:
                ok = now - st.st_mtime >= self.settle_s
                if not ok and initial:
                    reason = unreadable_reason(f)
                    ok = reason is None
                elif not ok:
                    reason = f"modified less than {self.settle_s:g} s ago (still being written?)"
            if ok:
                ready.append(f)
                self.waiting.pop(f, None)
            else:
                self.waiting[f] = reason or "incomplete"
        ready.sort(key=natural_key)
        self.known.update(ready)
        return ready


class FollowedRun(RunSource):
    """A run of files from a directory or glob that grows as files appear (``refresh()``).

    ``make_inner(files)`` builds the source for the first files found (an image series or an HDF5
    chain); later files are handed to its ``add_files``.  Until a first file exists the run is empty.
    """

    def __init__(self, watcher: Watcher, make_inner: Callable[[list], RunSource], description: str):
        self.watcher = watcher
        self.make_inner = make_inner
        self.description = description
        self.inner: Optional[RunSource] = None
        self.warnings: list = []
        self._grow(watcher.new_files(initial=True))

    def _grow(self, files: list) -> int:
        if not files:
            return 0
        if self.inner is None:
            self.inner = self.make_inner(files)
            self.warnings = getattr(self.inner, "warnings", [])
            return len(self.inner)
        return self.inner.add_files(files)

    def __len__(self) -> int:
        return 0 if self.inner is None else len(self.inner)

    def _need(self) -> RunSource:
        if self.inner is None:
            raise InputError(f"{self.description}: no image files (yet)")
        return self.inner

    def event(self, index: int):
        if self.inner is None:
            self._check_empty(index)
        return self.inner.event(index)

    def _check_empty(self, index) -> None:
        raise InputError(f"{self.description}: event index {index} is out of range (run has 0 frames)")

    def _read(self, index: int):
        return self._need().frame(index)

    def frame(self, index: int):
        if self.inner is None:
            self._check_empty(index)
        return self.inner.frame(index)

    def metadata(self, index: int = 0):
        if self.inner is None:
            self._check_empty(index)
        return self.inner.metadata(index)

    def frame_shape(self):
        return None if self.inner is None else self.inner.frame_shape()

    def raw_dtype(self):
        return None if self.inner is None else self.inner.raw_dtype()

    def read_raw(self, index: int):
        return self._need().read_raw(index)

    def geometry(self):
        return None if self.inner is None else self.inner.geometry()

    @property
    def files(self) -> list:
        return [] if self.inner is None else list(getattr(self.inner, "files", []))

    @property
    def skipped(self) -> list:
        """(file, reason) of the files seen but not read: not (yet) complete, or unreadable."""
        inner = list(getattr(self.inner, "skipped", [])) if self.inner is not None else []
        return sorted(self.watcher.waiting.items(), key=lambda x: natural_key(x[0])) + inner

    def refresh(self) -> int:
        n = self.inner.refresh() if self.inner is not None else 0
        return n + self._grow(self.watcher.new_files())

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
