"""Image series of single-image files: CBF (``.gz``/``.bz2``), MarCCD, EDF, TIFF, ADSC ``.img``...

One frame per file (multi-frame EDF/TIFF files give one frame per image they hold, when the
first file of the series has several).  CBF files are read by :mod:`.cbf` (header-only reads for
metadata and shape; strict checks for truncation); the other formats through fabio.  Every frame
must have the shape of the first one, else :class:`InputError` names the odd file.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

import numpy as np

from ..errors import GeometryError, InputError
from ..frame import EventId, Frame, FrameMetadata
from .base import RunSource
from .cbf import read_cbf, read_head
from .frames import PixelRules, make_frame
from .metadata_cbf import cbf_metadata
from .metadata_fabio import fabio_metadata
from .prefetch import Prefetcher

log = logging.getLogger(__name__)

COMPRESSIONS = (".gz", ".bz2")
FABIO_SUFFIXES = (".cbf", ".mccd", ".edf", ".tif", ".tiff", ".img", ".smv", ".mar3450", ".mar2300", ".sfrm", ".osc",
                  ".mar1200", ".mar1600", ".mar2000", ".mar2560", ".mar3000", ".mar3600", ".msk", ".npy", ".gfrm",
                  ".kccd", ".raw", ".pnm", ".xml", ".dm3", ".h5img")


def base_suffix(path: str) -> str:
    low = path.lower()
    for c in COMPRESSIONS:
        if low.endswith(c):
            low = low[: -len(c)]
    return os.path.splitext(low)[1]


def is_cbf(path: str) -> bool:
    return base_suffix(path) == ".cbf"


def read_fabio(path: str, index: Optional[int] = None) -> tuple:
    """(pixels, header dict, fabio class name) of one image of a fabio-readable file."""
    import fabio

    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    try:
        img = fabio.open(path)
        if index:
            img = img.getframe(index)
        data = np.asarray(img.data)
        header = dict(img.header)
        kind = type(img).__name__
    except InputError:
        raise
    except Exception as e:  # fabio raises anything from OSError to ValueError on bad files
        raise InputError(f"{path}: cannot read the image: corrupt, truncated or unknown format ({e})") from e
    if data is None or data.ndim != 2:
        raise InputError(f"{path}: the image is not 2-D (shape {None if data is None else data.shape})")
    return data, header, kind


def fabio_nframes(path: str) -> int:
    import fabio

    try:
        with fabio.open(path) as img:
            return max(1, int(getattr(img, "nframes", 1) or 1))
    except Exception as e:
        raise InputError(f"{path}: cannot read the image: corrupt, truncated or unknown format ({e})") from e


class FabioSeries(RunSource):
    """Frames of a list of image files (kept in the given order)."""

    #: decoded frames kept (current, neighbours, prefetched), bounded by bytes too
    CACHE_BYTES = 256 * 2**20

    def __init__(self, files, geometry=None, description: Optional[str] = None, cache_frames: int = 4,
                 prefetch: bool = True):
        self.files: list = []
        self.frames: list = []  # (file index, image index inside the file or None)
        self.description = description or (files[0] if len(files) == 1 else f"{len(files)} image files")
        self.warnings: list = []
        self._geometry = geometry
        self._shape: Optional[tuple] = None
        self._dtype: Optional[str] = None
        self._shape_from: Optional[str] = None
        self._multi = False
        self._headers: dict = {}  # file -> (FrameMetadata, hints)
        self._frames_cache = Prefetcher(self._decode, key=lambda i: self.frames[i], nbytes=lambda item: item[0].nbytes,
                                        max_items=cache_frames, max_bytes=self.CACHE_BYTES, enabled=prefetch)
        self.skipped: list = []  # (file, reason) of files left out because they cannot be read
        files = [os.fspath(f) for f in files]
        while files:
            first = files[0]
            try:
                if not is_cbf(first) and base_suffix(first) in (".edf", ".tif", ".tiff"):
                    self._multi = fabio_nframes(first) > 1
                self._probe_shape(first)
                break
            except InputError as e:  # one bad file among good ones is reported, not fatal
                if len(files) == 1:
                    if not self.skipped:
                        raise
                    raise InputError(f"{self.description}: no readable image file ({len(self.skipped) + 1} "
                                     f"unreadable, e.g. {self.skipped[0][1]})") from e
                self.skipped.append((first, str(e)))
                files = files[1:]
        self.add_files(files)
        if geometry is not None and self._shape is not None:
            from .geometry_link import check_geometry

            check_geometry(geometry, self._shape, f"{self._shape_from}")

    # --- building ------------------------------------------------------------------------------
    def add_files(self, files) -> int:
        n0 = len(self.frames)
        for f in files:
            f = os.fspath(f)
            try:
                count = fabio_nframes(f) if self._multi else 1
            except InputError as e:
                self.skipped.append((f, str(e)))
                continue
            self.files.append(f)
            k = len(self.files) - 1
            if count == 1:
                self.frames.append((k, None))
            else:
                self.frames.extend((k, j) for j in range(count))
        return len(self.frames) - n0

    def _probe_shape(self, path: str) -> None:
        if is_cbf(path):
            head = read_head(path)
            self._shape, self._dtype = head.shape, str(head.dtype) if head.dtype is not None else None
        else:
            raw, _h, _k = read_fabio(path)
            self._shape, self._dtype = tuple(raw.shape), str(raw.dtype)
        self._shape_from = path

    # --- RunSource -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frames)

    def event(self, index: int) -> EventId:
        k, j = self.frames[self._check(index)]
        return EventId(self.files[k], j)

    def _check(self, index) -> int:
        asked = index = int(index)
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise InputError(f"{self.description}: event index {asked} is out of range (run has {n} frames)")
        return index

    def _load(self, index: int) -> tuple:
        return self._frames_cache.get(index)

    def _decode(self, index: int) -> tuple:
        k, j = self.frames[index]
        path = self.files[k]
        if is_cbf(path):
            raw, head = read_cbf(path)
            md, hints = cbf_metadata(head.text)
            self._headers[path] = (md, hints)
        else:
            raw, header, kind = read_fabio(path, j)
            md, hints = fabio_metadata(kind, header), {}
        if self._shape is not None and tuple(raw.shape) != tuple(self._shape):
            raise InputError(
                f"{path}: frame shape {raw.shape[0]}x{raw.shape[1]} differs from the run's "
                f"{self._shape[0]}x{self._shape[1]} (first file {self._shape_from}); frames of different shapes "
                f"cannot be one run"
            )
        return raw, md, hints

    def read_raw(self, index: int) -> np.ndarray:
        return self._load(self._check(index))[0]

    def _read(self, index: int) -> Frame:
        raw, md, hints = self._load(index)
        self._frames_cache.hint(index, len(self.frames))
        rules = PixelRules(negative_is_bad=raw.dtype.kind == "i", max_valid=hints.get("count_cutoff"))
        md = _copy_md(md)
        return make_frame(raw, self.event(index), index, md, rules=rules)

    def metadata(self, index: int = 0) -> FrameMetadata:
        index = self._check(index)
        k, j = self.frames[index]
        path = self.files[k]
        if is_cbf(path):
            if path not in self._headers:
                md, hints = cbf_metadata(read_head(path).text)
                self._headers[path] = (md, hints)
            return _copy_md(self._headers[path][0])
        return _copy_md(self._load(index)[1])

    def frame_shape(self) -> Optional[tuple]:
        return self._shape

    def raw_dtype(self) -> Optional[str]:
        return self._dtype

    def geometry(self):
        if self._geometry is not None:
            return self._geometry
        if not self.frames or self._shape is None:
            return None
        from ..geometry.from_metadata import geometry_from_metadata

        try:
            return geometry_from_metadata(self.metadata(0), self._shape, source=self.files[0])
        except (GeometryError, InputError):
            return None

    def close(self) -> None:
        self._frames_cache.close()


def _copy_md(md: FrameMetadata) -> FrameMetadata:
    return FrameMetadata(
        photon_energy_ev=md.photon_energy_ev, detector_distance_m=md.detector_distance_m, pixel_size_m=md.pixel_size_m,
        beam_center_fs=md.beam_center_fs, beam_center_ss=md.beam_center_ss, detector=md.detector,
        exposure_time_s=md.exposure_time_s, extra=dict(md.extra),
    )
