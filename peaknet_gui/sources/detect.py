"""``open_run``: one entry point for every kind of run the application reads.

``inputs`` may be a file, a directory, a glob pattern, or a list of any of these:

* an HDF5 file (recognised by its signature, whatever its name): CXI, Cheetah, NeXus, Eiger
  master -> :class:`~.hdf5.HDF5Source`;
* any other file: an image read by fabio (CBF, ``.cbf.gz``/``.bz2``, MarCCD, EDF, TIFF, ADSC) ->
  :class:`~.fabio_series.FabioSeries`;
* a directory or a glob: its image files in natural order, followed (``refresh()`` adds files
  that appear) -> :class:`~.follow.FollowedRun`;
* several HDF5 files -> :class:`~.chain.HDF5Chain`;
* a stream address: ``tcp://HOST:PORT`` (a DECTRIS Eiger's SIMPLON stream) or
  ``karabo-bridge://HOST:PORT[/SOURCE]`` (European XFEL) -> a live
  :class:`~.live.run.StreamRun` (``stream_options``: window size, every_frame, ...).
"""

from __future__ import annotations

import glob as _glob
import os
from pathlib import Path
from typing import Optional, Union

from ..errors import InputError
from .base import RunSource
from .chain import HDF5Chain
from .fabio_series import FabioSeries
from .follow import FollowedRun, Watcher, drop_linked_data_files, image_kind, list_directory, list_glob, natural_key
from .h5util import is_hdf5
from .hdf5 import HDF5Source
from .live.run import is_stream_url

_GLOB_CHARS = set("*?[")


def _is_glob(s: str) -> bool:
    return any(c in s for c in _GLOB_CHARS) and not os.path.exists(s)


def _load_geometry(geometry):
    if geometry is None or not isinstance(geometry, (str, os.PathLike)):
        return geometry
    from ..geometry.crystfel_geom import read_geom

    return read_geom(geometry)


def _kind_of_file(path: str) -> str:
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or directory")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied (file is not readable)")
    if is_hdf5(path):
        return "hdf5"
    kind = image_kind(path)
    if kind == "hdf5":  # HDF5 name without HDF5 content
        size = os.path.getsize(path)
        raise InputError(f"{path}: cannot read as HDF5: {'empty file' if size == 0 else 'not an HDF5 file (no HDF5 signature)'}")
    return "fabio"


def _open_files(files: list, dataset, geometry, description: str, growable: bool = False) -> RunSource:
    kinds = {}
    for f in files:
        kinds.setdefault(_kind_of_file(f), []).append(f)
    if len(kinds) > 1:
        raise InputError(f"{description}: mixes HDF5 files ({len(kinds['hdf5'])}) and image files "
                         f"({len(kinds['fabio'])}, e.g. {kinds['fabio'][0]}); open them as separate runs")
    kind = next(iter(kinds))
    if kind == "hdf5":
        if len(files) == 1 and not growable:
            return HDF5Source(files[0], dataset=dataset, geometry=geometry)
        return HDF5Chain(files, dataset=dataset, geometry=geometry, description=description)
    if dataset:
        raise InputError(f"{description}: --dataset applies to HDF5 files only, not to {files[0]}")
    return FabioSeries(files, geometry=geometry, description=description)


def _expand(item: str) -> list:
    if os.path.isdir(item):
        return [f for f in list_directory(item) if os.path.isfile(f)]
    if _is_glob(item):
        return [f for f in list_glob(item) if os.path.isfile(f)]
    return [item]


def open_run(
    inputs: Union[str, os.PathLike, list, tuple],
    dataset: Optional[str] = None,
    geometry=None,
    *,
    settle_s: float = 1.0,
    stream_options: Optional[dict] = None,
) -> RunSource:
    """Open a run lazily (no pixels read).  ``geometry`` is a Geometry (or a ``.geom`` path); it is
    checked against the frame shape and, when it names ``data = /path``, chooses the dataset.

    Raises :class:`InputError` (or a subclass: :class:`GeometryError`,
    :class:`~.h5util.AmbiguousDatasetError`) naming the file and the problem.
    """
    geometry = _load_geometry(geometry)
    if isinstance(inputs, (list, tuple)):
        items = [os.fspath(i) for i in inputs]
        if not items:
            raise InputError("no input files given")
        if len(items) == 1:
            return open_run(items[0], dataset, geometry, settle_s=settle_s, stream_options=stream_options)
        files = []
        for it in items:
            got = _expand(it)
            if not got and (os.path.isdir(it) or _is_glob(it)):
                raise InputError(f"{it}: no image files found")
            files.extend(got)
        files = drop_linked_data_files(files)
        return _open_files(files, dataset, geometry, f"{items[0]} ... ({len(items)} inputs)")
    item = os.fspath(inputs) if isinstance(inputs, (str, os.PathLike, Path)) else None
    if isinstance(item, str) and is_stream_url(item):
        return open_stream(item, geometry=geometry, **(stream_options or {}))
    if item is None:
        raise InputError(f"cannot open a run from {inputs!r}: give a path, a directory, a glob or a list")
    if os.path.isdir(item) or _is_glob(item):
        if os.path.isdir(item):
            lister = lambda d=item: list_directory(d, sort=False)  # noqa: E731
        else:
            parent = os.path.dirname(item) or "."
            if not _glob.has_magic(parent) and not os.path.isdir(parent):
                raise InputError(f"{item}: no such directory {parent}")
            lister = lambda p=item: list_glob(p, sort=False)  # noqa: E731
        watcher = Watcher(lister, settle_s=settle_s)
        return FollowedRun(watcher, lambda files: _open_files(files, dataset, geometry, item, growable=True), item)
    if not os.path.exists(item):
        parent = os.path.dirname(item)
        hint = "" if not parent or os.path.isdir(parent) else f" (directory {parent} does not exist)"
        raise InputError(f"{item}: no such file or directory{hint}")
    return _open_files([item], dataset, geometry, item)


def open_stream(url: str, geometry=None, wait_first_s: float = 30.0, **options) -> RunSource:
    """A live run reading the stream at ``url`` (see the module doc), once its first frame arrived
    (up to ``wait_first_s`` seconds, else InputError; 0: at once, possibly empty)."""
    if url.lower().startswith("karabo-bridge://"):
        from .stream_karabo import open_karabo_stream

        run = open_karabo_stream(url, geometry=geometry, **options)
    else:
        from .stream_eiger import open_eiger_stream

        run = open_eiger_stream(url, geometry=geometry, **options)
    if wait_first_s and wait_first_s > 0:
        if not run.wait(1, wait_first_s):
            status = run.status()
            run.close()
            raise InputError(f"{url}: no frame arrived within {wait_first_s:g} s ({status.line()})")
        run.refresh()
    return run


def sort_naturally(paths: list) -> list:
    return sorted(paths, key=natural_key)
