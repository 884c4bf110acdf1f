"""``hits.cxi``: the hit frames, their masks and peaks in Cheetah's CXI layout, as CrystFEL's
``--peaks=cxi`` reads them (``image_hdf5_read_peaks_cxi``).

Layout (CONTRACTS.md, "CXI run layout"), N = number of frames written::

    /cxi_version                                   150
    /entry_1/data_1/data        (N, ss, fs) float32, one frame per chunk, compressed
    /entry_1/data_1/mask        (N, ss, fs) uint16, 1 = bad pixel (CrystFEL mask_bad = 0x1)
    /entry_1/result_1/nPeaks    (N,) int32
    /entry_1/result_1/peakXPosRaw, peakYPosRaw, peakTotalIntensity, peakNPixels,
                      peakMaximumValue, peakSNR     (N, MAXPEAKS) float32, zero-padded as Cheetah
    /entry_1/instrument_1/source_1/energy            (N,) J
    /entry_1/instrument_1/source_1/photon_energy_eV  (N,) eV
    /entry_1/instrument_1/detector_1/distance        (N,) m
    /entry_1/instrument_1/detector_1/x_pixel_size, y_pixel_size   scalar, m
    /entry_1/instrument_1/detector_1/beam_center_x, beam_center_y (N,) pixel indices
    /entry_1/instrument_1/detector_1/data   -> soft link to /entry_1/data_1/data
    /entry_1/peaknet/source_file (N,) str, source_index (N,) int64 (-1: single image), serial (N,)

``peakXPosRaw``/``peakYPosRaw`` are **raw pixel indices** (fs, ss) of the 2-D frame (centre of
the first pixel at 0): CrystFEL adds the half pixel itself (``--no-half-pixel-shift`` turns
that off) and finds the panel from the slab coordinates.  MAXPEAKS is 2048 as in Cheetah;
a frame with more peaks widens the arrays (CrystFEL only needs ``nPeaks`` <= width).

The writer appends one frame at a time to a temporary file beside the target and renames it
on :meth:`CxiHitWriter.close`: an interrupted run gets a complete file holding exactly the
frames appended (a frame that failed half-way is trimmed off).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ExportError, WriteError
from ..peaks.peaklist import PeakList
from .atomic import make_readable
from .geom_export import CXI_DATA, CXI_DISTANCE, CXI_MASK, CXI_PEAKS, CXI_PHOTON_ENERGY_EV

log = logging.getLogger(__name__)

MAXPEAKS = 2048
EV_TO_J = 1.602176634e-19
BEAM_CENTER_CONVENTION = "pixel index; centre of first pixel at 0"
PEAK_DATASETS = {  # CXI name -> PeakList field
    "peakXPosRaw": "fs",
    "peakYPosRaw": "ss",
    "peakTotalIntensity": "intensity",
    "peakNPixels": "npix",
    "peakMaximumValue": "max_intensity",
    "peakSNR": "snr",
}
PEAK_NAMES = tuple(PEAK_DATASETS)
_DET = "/entry_1/instrument_1/detector_1"
_SRC = "/entry_1/instrument_1/source_1"
_PER_FRAME_1D = {
    f"{_SRC}/energy": np.float64,
    CXI_PHOTON_ENERGY_EV: np.float64,
    CXI_DISTANCE: np.float64,
    f"{_DET}/beam_center_x": np.float64,
    f"{_DET}/beam_center_y": np.float64,
    "/entry_1/peaknet/source_index": np.int64,
    "/entry_1/peaknet/serial": np.int64,
    f"{CXI_PEAKS}/nPeaks": np.int32,
}


@dataclass
class CxiFrameInfo:
    """What the CXI file records about one frame besides pixels and peaks."""

    source_file: str
    source_index: Optional[int]
    serial: int
    photon_energy_ev: Optional[float] = None
    distance_m: Optional[float] = None
    beam_center_fs: float = math.nan
    beam_center_ss: float = math.nan


def _nan(v) -> float:
    return math.nan if v is None else float(v)


def _shuffle_deflate(arr: np.ndarray, level: int) -> bytes:
    """One chunk encoded exactly as HDF5's shuffle + deflate filters would (zlib releases the
    GIL, so this runs in parallel with the caller)."""
    a = np.ascontiguousarray(arr)
    return zlib.compress(a.view(np.uint8).reshape(-1, a.itemsize).T.tobytes(), level)


class CxiHitWriter:
    """Append frames to a CXI file (see the module doc).  One writer per file, one thread.

    Speed: with gzip, the frame and mask chunks are shuffled and deflated in a background
    thread and stored with HDF5's direct chunk write (the same bytes the filter pipeline would
    produce), so the caller goes on with the next frame; the small per-frame rows (peaks,
    energies...) are buffered and written ``flush_every`` frames at a time and at close.
    """

    GZIP_LEVEL = 1

    def __init__(self, path, *, compression: Optional[str] = "gzip", max_peaks: int = MAXPEAKS,
                 pixel_size_m: Optional[float] = None, attrs: Optional[dict] = None, background: bool = True,
                 flush_every: int = 64, space_check=None):
        if compression not in (None, "gzip", "lz4"):
            raise ValueError(f"compression must be None, 'gzip' or 'lz4', not {compression!r}")
        self.path = Path(path)
        self.compression = compression
        self.max_peaks = int(max_peaks)
        self.pixel_size_m = pixel_size_m
        self.attrs = dict(attrs or {})
        self.background = bool(background) and compression == "gzip"
        self.flush_every = max(1, int(flush_every))
        self.n_frames = 0  # frames appended (pixels queued or written, rows buffered or written)
        self.shape: Optional[tuple] = None
        self._tmp: Optional[Path] = None
        self._f = None
        self._closed = False
        self._rows: list = []  # buffered (index, row dict)
        self._rows_written = 0
        self._pending: list = []  # (index, future of (data bytes, mask bytes))
        self._pool = None
        self._failed: Optional[str] = None
        # space_check(nbytes): raises ExportError when nbytes would not fit on the disk -- called
        # before each write, because HDF5 cannot close a file whose writes failed (it crashes)
        self.space_check = space_check

    # --- file handling -------------------------------------------------------------------------
    def _compression_kwargs(self) -> dict:
        if self.compression == "gzip":
            return {"compression": "gzip", "compression_opts": self.GZIP_LEVEL, "shuffle": True}
        if self.compression == "lz4":
            import hdf5plugin

            return dict(hdf5plugin.LZ4())
        return {}

    def _create(self, shape: tuple) -> None:
        import h5py

        self.shape = tuple(int(s) for s in shape)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            os.close(fd)
            self._tmp = Path(tmp)
            f = self._f = h5py.File(self._tmp, "w")
        except OSError as e:
            raise ExportError(f"{self.path}: cannot create ({e})") from e
        ss, fs = self.shape
        comp = self._compression_kwargs()
        f["/cxi_version"] = np.int32(150)
        for k, v in self.attrs.items():
            f.attrs[k] = v
        d = f.create_dataset(CXI_DATA, shape=(0, ss, fs), maxshape=(None, ss, fs), chunks=(1, ss, fs),
                             dtype=np.float32, **comp)
        d.attrs["axes"] = "experiment_identifier:y:x"
        m = f.create_dataset(CXI_MASK, shape=(0, ss, fs), maxshape=(None, ss, fs), chunks=(1, ss, fs),
                             dtype=np.uint16, **comp)
        m.attrs["polarity"] = "bad_nonzero"
        m.attrs["mask_good"] = np.uint16(0)
        m.attrs["mask_bad"] = np.uint16(1)
        m.attrs["description"] = "1 = bad pixel, 0 = good; CrystFEL: mask_good = 0x0, mask_bad = 0x1"
        rows = min(self.flush_every, 64)
        for name in PEAK_DATASETS:
            f.create_dataset(f"{CXI_PEAKS}/{name}", shape=(0, self.max_peaks), maxshape=(None, None),
                             chunks=(1, self.max_peaks), dtype=np.float32)
        f[CXI_PEAKS].attrs["coordinates"] = "peakXPosRaw/peakYPosRaw: raw pixel indices (fs, ss), centre of first pixel at 0"
        for name, dtype in _PER_FRAME_1D.items():
            f.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(rows,), dtype=dtype)
        f[f"{_SRC}/energy"].attrs["units"] = "J"
        f[CXI_PHOTON_ENERGY_EV].attrs["units"] = "eV"
        f[CXI_DISTANCE].attrs["units"] = "m"
        for axis in ("x", "y"):
            f[f"{_DET}/beam_center_{axis}"].attrs["convention"] = BEAM_CENTER_CONVENTION
            f[f"{_DET}/{axis}_pixel_size"] = np.float64(_nan(self.pixel_size_m))
            f[f"{_DET}/{axis}_pixel_size"].attrs["units"] = "m"
        f.create_dataset("/entry_1/peaknet/source_file", shape=(0,), maxshape=(None,), chunks=(rows,),
                         dtype=h5py.string_dtype("utf-8"))
        f["/entry_1/peaknet/source_index"].attrs["description"] = "frame index in source_file; -1 for a single-image file"
        f[f"{_DET}/data"] = h5py.SoftLink(CXI_DATA)

    def _row_datasets(self) -> list:
        f = self._f
        names = ["/entry_1/peaknet/source_file", *_PER_FRAME_1D] + [f"{CXI_PEAKS}/{n}" for n in PEAK_DATASETS]
        return [f[n] for n in names]

    # --- appending -----------------------------------------------------------------------------
    def append(self, data: np.ndarray, mask: Optional[np.ndarray], peaks: PeakList, info: CxiFrameInfo) -> int:
        """Append one frame; returns its index in the file (CrystFEL event ``//index``)."""
        where = f"{info.source_file} //{info.source_index}"
        if self._closed:
            raise ExportError(f"{self.path}: writer already closed")
        if self._failed:
            raise ExportError(self._failed)
        data = np.asarray(data)
        if data.ndim != 2:
            raise ExportError(f"{self.path}: frame {where} is not 2-D ({data.shape})")
        if self._f is None:
            self._create(data.shape)
        if tuple(data.shape) != self.shape:
            raise ExportError(f"{self.path}: frame {where} has shape {data.shape}, the file's frames are {self.shape}")
        m = np.zeros(self.shape, dtype=np.uint16) if mask is None else np.asarray(mask)
        if m.shape != self.shape:
            raise ExportError(f"{self.path}: mask of frame {where} has shape {m.shape}, not {self.shape}")
        m = m.astype(bool).astype(np.uint16)
        row = self._row(peaks, info)
        n = self.n_frames
        f = self._f
        try:
            for name in (CXI_DATA, CXI_MASK):
                f[name].resize(n + 1, axis=0)
            frame32 = data.astype(np.float32, copy=True)
            if self.background:
                if self._pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cxi-deflate")
                lvl = self.GZIP_LEVEL
                fut = self._pool.submit(lambda a=frame32, b=m: (_shuffle_deflate(a, lvl), _shuffle_deflate(b, lvl)))
                self._pending.append((n, fut))
            else:
                if self.space_check is not None:
                    self.space_check(frame32.nbytes + m.nbytes)
                f[CXI_DATA][n] = frame32
                f[CXI_MASK][n] = m
        except (OSError, ValueError, TypeError) as e:
            raise ExportError(f"{self.path}: cannot write frame {where} ({e})") from e
        self._rows.append((n, row))
        self.n_frames = n + 1
        self._drain(wait_for=len(self._pending) - 2)
        if len(self._rows) >= self.flush_every:
            self._flush_rows()
        return n

    @staticmethod
    def _row(peaks: PeakList, info: CxiFrameInfo) -> dict:
        row = {}
        for name, attr in PEAK_DATASETS.items():
            vals = np.asarray(getattr(peaks, attr), dtype=np.float64)
            row[name] = np.where(np.isfinite(vals), vals, 0.0).astype(np.float32)
        e = _nan(info.photon_energy_ev)
        row.update({
            f"{CXI_PEAKS}/nPeaks": len(peaks),
            CXI_PHOTON_ENERGY_EV: e,
            f"{_SRC}/energy": e * EV_TO_J,
            CXI_DISTANCE: _nan(info.distance_m),
            f"{_DET}/beam_center_x": float(info.beam_center_fs),
            f"{_DET}/beam_center_y": float(info.beam_center_ss),
            "/entry_1/peaknet/source_file": str(info.source_file),
            "/entry_1/peaknet/source_index": -1 if info.source_index is None else int(info.source_index),
            "/entry_1/peaknet/serial": int(info.serial),
        })
        return row

    def _drain(self, wait_for: int = 0) -> None:
        """Store the chunks compressed so far; wait for the oldest ``wait_for`` jobs."""
        while self._pending:
            n, fut = self._pending[0]
            if wait_for <= 0 and not fut.done():
                return
            try:
                data_bytes, mask_bytes = fut.result()
                if self.space_check is not None:
                    self.space_check(len(data_bytes) + len(mask_bytes))
                self._f[CXI_DATA].id.write_direct_chunk((n, 0, 0), data_bytes)
                self._f[CXI_MASK].id.write_direct_chunk((n, 0, 0), mask_bytes)
            except Exception as e:  # noqa: BLE001 - any failure to store a frame is an export error
                # keep frames 0..n-1 (a consistent file); later frames are dropped, no more appends
                self._failed = f"{self.path}: cannot write frame {n} ({e}); the file keeps frames 0..{n - 1}"
                for _, later in self._pending:
                    later.cancel()
                self._pending = []
                self._rows = [r for r in self._rows if r[0] < n]
                self.n_frames = n
                raise (WriteError if isinstance(e, (OSError, WriteError)) else ExportError)(self._failed) from e
            self._pending.pop(0)
            wait_for -= 1

    def _flush_rows(self) -> None:
        if not self._rows:
            return
        f = self._f
        first = self._rows[0][0]
        count = len(self._rows)
        try:
            need = max(len(r[PEAK_NAMES[0]]) for _, r in self._rows)
            width = f[f"{CXI_PEAKS}/peakXPosRaw"].shape[1]
            if need > width:
                log.info("%s: a frame with %d peaks: widening the peak arrays from %d", self.path, need, width)
                for name in PEAK_DATASETS:
                    f[f"{CXI_PEAKS}/{name}"].resize(need, axis=1)
                width = need
            for ds in self._row_datasets():
                ds.resize(first + count, axis=0)
            for name in PEAK_DATASETS:
                block = np.zeros((count, width), dtype=np.float32)
                for k, (_, r) in enumerate(self._rows):
                    block[k, : len(r[name])] = r[name]
                f[f"{CXI_PEAKS}/{name}"][first:first + count] = block
            for name, dtype in _PER_FRAME_1D.items():
                f[name][first:first + count] = np.array([r[name] for _, r in self._rows], dtype=dtype)
            f["/entry_1/peaknet/source_file"][first:first + count] = [r["/entry_1/peaknet/source_file"] for _, r in self._rows]
        except (OSError, ValueError, TypeError) as e:
            raise ExportError(f"{self.path}: cannot write the peak lists ({e})") from e
        self._rows = []
        self._rows_written = first + count

    # --- finishing ----------------------------------------------------------------------------
    def close(self, shape: Optional[tuple] = None) -> Optional[Path]:
        """Store everything appended, close, rename over the target.  Without any frame, an
        empty file is written when ``shape`` (ss, fs) is given, else nothing.  Returns the path
        written (or None)."""
        if self._closed:
            return self.path if self._tmp is None and self.shape is not None else None
        self._closed = True
        if self._f is None:
            if shape is None:
                self._shutdown()
                return None
            self._create(tuple(shape[-2:]))
        try:
            try:
                self._drain(wait_for=len(self._pending))
            except ExportError as e:  # the frames before the failure are still written
                log.error("%s", e)
            self._flush_rows()
            n = self.n_frames
            for ds in [self._f[CXI_DATA], self._f[CXI_MASK], *self._row_datasets()]:
                if ds.shape[0] != n:
                    ds.resize(n, axis=0)
            self._f.close()
            self._f = None
            self._shutdown()
            make_readable(self._tmp)
            os.replace(self._tmp, self.path)
            self._tmp = None
        except (OSError, ValueError, ExportError) as e:
            self.abort()
            raise e if isinstance(e, ExportError) else ExportError(f"{self.path}: cannot finish writing ({e})") from e
        return self.path

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def abort(self) -> None:
        """Drop the temporary file (nothing is written to the target)."""
        self._closed = True
        self._pending = []
        self._shutdown()
        if self._f is not None:
            with contextlib.suppress(Exception):
                self._f.close()
            self._f = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            self._tmp = None
