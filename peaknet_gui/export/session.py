"""ExportSession: write a run's results for CrystFEL frame by frame, safely.

Files in ``out_dir`` (``formats`` picks them; ``summary.json`` is always written)::

    peaks.stream      "stream": every frame, its peaks (CrystFEL stream 2.3, indexamajig's layout)
    hits.lst          "lst":    one line per hit.  With "cxi": ``hits.cxi //k`` -- the list that
                                ``peaks.geom`` reads; without: the original ``file //event`` lines
    hits_source.lst   "lst" + "cxi": the hits as original ``file //event`` lines
    hits.cxi          "cxi":    hit frames, per-frame masks (1 = bad), peaks (raw pixel indices)
    peaks.geom        "cxi":    the geometry that points CrystFEL at hits.cxi (data, peak list,
                                mask, energy, camera length); hits.geom is the same file under
                                hits.cxi's stem (CONTRACTS: a .geom beside a CXI run)
    mask.h5           "mask":   run mask: pixels masked in >= ``mask_fraction`` of the frames
    mask.geom         "mask":   the run's geometry plus mask lines using mask.h5
    summary.json      always:   per-frame event, peaks, hit, ms; totals and hit rate

Paths inside the files (lists, stream filenames, ``mask_file``) are relative to ``out_dir``
(``paths="relative"``; see :mod:`.lst`), so CrystFEL runs from the output directory::

    cd OUT && indexamajig -i hits.lst -g peaks.geom --peaks=cxi --indexing=xgandalf -p my.cell -o indexed.stream

The set is a transaction (:mod:`.transaction`): every file is written into a staging
directory beside ``out_dir`` (``.OUT.staging-*``) and :meth:`ExportSession.close` replaces
``out_dir`` as a whole, so it holds the complete old set or the complete new one, never a mix.
``close`` is what the run loop calls at the end, on Ctrl-C/SIGTERM (``status="interrupted"``)
and on an error that is not a write error (``status="failed"``): the files hold exactly the
frames added.  A write error (no space, I/O error) calls :meth:`ExportSession.abort`: nothing
is replaced.  A lock refuses a second session on the same ``out_dir``; a hard kill (SIGKILL,
power loss) leaves the previous set untouched and a staging directory the next run removes.
``summary.json`` is the manifest: ``status``, every file's size and sha256, and the inputs
skipped (``skipped: [{input, event, reason}]``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ExportError, GeometryError, PeakNetError, WriteError
from ..frame import Frame
from .cxi import MAXPEAKS, CxiFrameInfo, CxiHitWriter
from .frame_values import (
    beam_center, frame_clen, frame_geometry, frame_photon_energy, geometry_reads_clen_from_file, mean_camera_length,
    pixel_size, placeholder_geometry,
)
from .geom_export import run_cxi_geometry
from .lst import lst_line, output_path
from .stream import DEFAULT_BANDWIDTH, StreamChunk, StreamWriter, event_text
from .summary import FrameRecord, SummaryDocument, write_summary
from ..interrupts import deferred
from .textfile import IncrementalText
from .transaction import OutputTransaction, manifest, os_error_message

log = logging.getLogger(__name__)

FORMATS = ("stream", "lst", "cxi", "mask")
STREAM_NAME = "peaks.stream"
HITS_LST = "hits.lst"
HITS_SOURCE_LST = "hits_source.lst"
HITS_CXI = "hits.cxi"
PEAKS_GEOM = "peaks.geom"
HITS_GEOM = "hits.geom"
MASK_H5 = "mask.h5"
MASK_GEOM = "mask.geom"
SUMMARY = "summary.json"
SET_NAMES = (STREAM_NAME, HITS_LST, HITS_SOURCE_LST, HITS_CXI, PEAKS_GEOM, HITS_GEOM, MASK_H5, MASK_GEOM, SUMMARY)
STATUSES = ("complete", "interrupted", "failed")


class ExportSession:
    """Incremental export of a run (see the module doc).

    ``geometry``: the detector geometry the frames were analysed with (None: from the first
    frame's metadata, else a placeholder).  ``cell``: optional target cell for the stream
    (:class:`.cellfile.UnitCell`, or a path to a CrystFEL cell file).  ``command_line``: written
    into the stream's audit lines.  ``settings``: a JSON-able dict stored in summary.json.
    """

    def __init__(self, out_dir, geometry=None, formats=FORMATS, *, cell=None, command_line: Optional[str] = None,
                 paths: str = "relative", compression: Optional[str] = "gzip", max_peaks: int = MAXPEAKS,
                 mask_fraction: float = 0.5, settings: Optional[dict] = None):
        formats = {str(f).lower() for f in formats}
        unknown = formats - set(FORMATS)
        if unknown:
            raise ValueError(f"unknown export format(s) {sorted(unknown)}; choose from {FORMATS}")
        if not 0.0 < mask_fraction <= 1.0:
            raise ValueError(f"mask_fraction must be in (0, 1], not {mask_fraction}")
        if not formats:
            raise ValueError("no export format chosen")
        self.out_dir = Path(out_dir)
        parent = Path(os.path.abspath(self.out_dir)).parent
        if parent.is_dir() and not os.access(parent, os.W_OK):
            raise ExportError(f"{self.out_dir}: output directory is not writable ({parent} is not writable)")
        self._txn = OutputTransaction(self.out_dir, SET_NAMES)
        self._dir = self._txn.begin()  # where the files are written until close()
        self.formats = formats
        self.geometry = geometry
        self.paths = paths
        output_path(".", self.out_dir, paths)  # validates the mode
        self.compression = compression
        self.mask_fraction = float(mask_fraction)
        self.settings = settings or {}
        self.command_line = command_line
        if cell is not None and not hasattr(cell, "format"):
            from .cellfile import read_cell_file

            cell = read_cell_file(cell)
        self.cell = cell
        self.summary = SummaryDocument()
        self._lock = threading.RLock()
        self._closed = False
        self._started = False
        self._shape: Optional[tuple] = None
        self._stream: Optional[StreamWriter] = None
        self._stream_file: Optional[IncrementalText] = None
        self._lst: Optional[IncrementalText] = None
        self._lst_source: Optional[IncrementalText] = None
        self._cxi: Optional[CxiHitWriter] = None
        self._cxi_lines: list = []  # hits_source.lst lines, in hits.cxi order
        self._cxi_energy: list = []
        self._cxi_clen: list = []
        self._mask_counts: Optional[np.ndarray] = None
        self._mask_frames = 0
        self._warned: set = set()
        self.skipped: list = []  # {input, event, reason} of every input not analysed
        self.files: dict = {}  # format -> path, filled by close()
        try:
            if "cxi" in formats:
                from .. import __version__

                self._cxi = CxiHitWriter(self._dir / HITS_CXI, compression=compression, max_peaks=max_peaks,
                                         attrs={"creator": f"peaknet_gui {__version__}"},
                                         space_check=lambda n: self._txn.ensure_space(n, self.out_dir / HITS_CXI))
            if "lst" in formats:
                self._lst = IncrementalText(self._dir / HITS_LST, self.out_dir / HITS_LST)
                if "cxi" in formats:
                    self._lst_source = IncrementalText(self._dir / HITS_SOURCE_LST, self.out_dir / HITS_SOURCE_LST)
        except BaseException:
            self.abort()
            raise

    # --- helpers -----------------------------------------------------------------------------
    def _warn_once(self, key: str, msg: str, *args) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)

    def _path_text(self, path) -> str:
        return output_path(path, self.out_dir, self.paths)

    def _start(self, frame: Optional[Frame]) -> None:
        """Resolve the geometry and write the stream header (first frame, or close)."""
        self._started = True
        if self.geometry is None and frame is not None:
            try:
                from ..geometry.from_metadata import geometry_from_metadata

                self.geometry = geometry_from_metadata(frame.metadata, frame.shape, source=frame.event.path)
            except GeometryError as e:
                log.warning("no detector geometry (%s): the stream gets a placeholder geometry", e)
                self.geometry = placeholder_geometry(frame)
        if self._cxi is not None:
            if frame is not None:
                self._cxi.pixel_size_m = pixel_size(frame, self.geometry)
            elif self.geometry is not None:
                self._cxi.pixel_size_m = self.geometry.panels[0].pixel_size
        if "stream" in self.formats and self.geometry is not None:
            self._stream_file = IncrementalText(self._dir / STREAM_NAME, self.out_dir / STREAM_NAME)
            try:
                self._stream = StreamWriter(self._stream_file.fh, self.geometry, cell=self.cell,
                                            command_line=self.command_line)
            except (GeometryError, OSError) as e:
                self._stream_file.abort()
                self._stream_file = None
                raise ExportError(f"{self.out_dir / STREAM_NAME}: cannot write the stream header ({e})") from e

    # --- adding frames -------------------------------------------------------------------------
    def add(self, frame: Frame, result) -> None:
        """Export one analysed frame (``result``: :class:`peaknet_gui.pipeline.result.FrameResult`)."""
        t0 = time.perf_counter()
        with self._lock, deferred():  # Ctrl-C/SIGTERM wait for the frame to be written whole
            if self._closed:
                raise ExportError(f"{self.out_dir}: export session already closed")
            if not self._started:
                self._start(frame)
            if self._shape is None:
                self._shape = tuple(frame.shape[-2:])
            self._txn.ensure_space(self._frame_bytes(frame, result), self.out_dir)
            geom = self.geometry
            path_text = self._path_text(frame.event.path)
            energy = frame_photon_energy(frame, geom)
            if energy is None:
                self._warn_once("energy", "%s: photon energy unknown (neither the geometry nor the file has it); "
                                "NaN written", frame.event.lst_line())
            cxi_index = None
            if result.hit:  # the CXI first: if it fails, nothing else records the frame
                if self._cxi is not None:
                    cxi_index = self._add_cxi(frame, result, path_text, energy)
                    if self._lst is not None:
                        self._lst.write(lst_line(HITS_CXI, cxi_index) + "\n")
                        self._lst_source.write(lst_line(path_text, frame.event.index) + "\n")
                        self._cxi_lines.append(lst_line(path_text, frame.event.index))
                elif self._lst is not None:
                    self._lst.write(lst_line(path_text, frame.event.index) + "\n")
            if self._stream is not None:
                in_memory = cxi_index is not None and "://" in path_text  # a live stream's frame: hits.cxi holds it
                chunk = StreamChunk(
                    filename=HITS_CXI if in_memory else path_text,
                    event=f"//{cxi_index}" if in_memory else event_text(frame.event), serial=frame.serial, hit=bool(result.hit),
                    peaks=result.peaks, photon_energy_ev=energy, camera_length_m=mean_camera_length(frame, geom),
                    beam_bandwidth=geom.bandwidth if geom.bandwidth is not None else DEFAULT_BANDWIDTH,
                )
                fgeom = frame_geometry(frame, geom)
                try:
                    self._stream.write(chunk, fgeom if fgeom is not None else geom)
                except OSError as e:
                    raise WriteError(os_error_message(self.out_dir / STREAM_NAME, e)) from e
            if "mask" in self.formats:
                self._add_mask(frame, result)
            timings = dict(result.timings_ms)
            timings["export"] = 1e3 * (time.perf_counter() - t0)
            self.summary.add(FrameRecord(
                serial=int(frame.serial), event=lst_line(path_text, frame.event.index), file=path_text,
                index=frame.event.index, n_peaks=len(result.peaks), hit=bool(result.hit),
                ms=float(sum(timings.values())), timings_ms=timings, cxi_index=cxi_index,
                ring_spots=len(result.ring_spots), gain_warning=getattr(result, "gain_warning", ""),
            ), algorithm=getattr(result, "algorithm", ""), device=getattr(result, "device", ""))

    def _frame_bytes(self, frame: Frame, result) -> int:
        """An upper bound of the bytes one frame adds to the set besides its pixels (its stream
        chunk, list lines, the CXI rows of a hit); the CXI writer checks the pixels' compressed
        size itself before writing them."""
        n = 4096 + 160 * len(result.peaks)
        if result.hit and self._cxi is not None:
            n += 4 * self._cxi.max_peaks * 6 + 1024
        return n

    def add_skipped(self, input: str, event, reason: str) -> None:
        """Record an input (file or frame) that was not analysed; summary.json lists it."""
        with self._lock:
            self.skipped.append({"input": self._path_text(input) if input else "", "event": event,
                                 "reason": str(reason)})

    def _frame_mask(self, frame: Frame, result) -> Optional[np.ndarray]:
        m = result.artifact_mask
        if frame.bad is not None:
            m = frame.bad if m is None else (np.asarray(m, dtype=bool) | np.asarray(frame.bad, dtype=bool))
        return None if m is None else np.asarray(m, dtype=bool)

    def _add_cxi(self, frame: Frame, result, path_text: str, energy: Optional[float]) -> int:
        geom = self.geometry
        bc_fs, bc_ss = beam_center(frame, geom)
        clen = frame_clen(frame, geom) if geometry_reads_clen_from_file(geom) else None
        if clen is None and geom is not None:
            try:
                clen = geom.clen if geom.clen is not None else geom.mean_camera_length()
            except GeometryError:
                clen = None
        if clen is None:
            clen = frame.metadata.detector_distance_m
        info = CxiFrameInfo(source_file=path_text, source_index=frame.event.index, serial=int(frame.serial),
                            photon_energy_ev=energy, distance_m=clen, beam_center_fs=bc_fs, beam_center_ss=bc_ss)
        k = self._cxi.append(frame.data, self._frame_mask(frame, result), result.peaks, info)
        self._cxi_energy.append(np.nan if energy is None else float(energy))
        self._cxi_clen.append(np.nan if clen is None else float(clen))
        return k

    def _add_mask(self, frame: Frame, result) -> None:
        m = self._frame_mask(frame, result)
        shape = tuple(frame.shape[-2:])
        if self._mask_counts is None:
            self._mask_counts = np.zeros(shape, dtype=np.uint32)
        elif self._mask_counts.shape != shape:
            raise ExportError(f"{frame.event.lst_line()}: frame shape {shape} differs from the run's {self._mask_counts.shape}")
        if m is not None:
            self._mask_counts += m
        self._mask_frames += 1

    # --- closing -----------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def n_frames(self) -> int:
        return len(self.summary.frames)

    @property
    def n_hits(self) -> int:
        return sum(1 for r in self.summary.frames if r.hit)

    def run_mask(self) -> Optional[np.ndarray]:
        """Pixels masked in at least ``mask_fraction`` of the frames so far (None before any)."""
        if self._mask_counts is None or self._mask_frames == 0:
            return None
        need = max(1, int(np.ceil(self.mask_fraction * self._mask_frames - 1e-9)))
        return self._mask_counts >= need

    def close(self, interrupted: bool = False, status: Optional[str] = None) -> dict:
        """Finish every file and put the set in place (idempotent).  Returns {name: path} of the
        files written.  ``status``: "complete" (default), "interrupted" (default when
        ``interrupted``) or "failed".  When a file cannot be written nothing is replaced and
        ExportError says why."""
        status = status or ("interrupted" if interrupted else "complete")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        with self._lock, deferred():
            if self._closed:
                return dict(self.files)
            self._closed = True
            errors: list = []

            def step(fn):
                try:
                    fn()
                except PeakNetError as e:
                    errors.append(str(e))
                except OSError as e:
                    errors.append(os_error_message(self.out_dir, e))
                except Exception as e:  # noqa: BLE001 -- h5py raises RuntimeError/ValueError on failed writes
                    errors.append(f"{self.out_dir}: cannot write ({type(e).__name__}: {e})")

            if not self._started:
                step(lambda: self._start(None))
            step(self._close_stream)
            step(self._close_cxi)
            step(self._close_lists)
            step(self._close_mask)
            if not errors:
                step(lambda: self._write_summary(status, errors))
            if errors:
                self.abort()
                raise ExportError(errors[0] + ("" if "previous output" in errors[0] else
                                               "; the previous output is left as it was"))
            try:
                self._txn.commit()
            except ExportError:
                self.abort()
                raise
            self.files = {k: self.out_dir / Path(v).name for k, v in self.files.items()}
            return dict(self.files)

    def abort(self) -> None:
        """Drop everything written (no file is replaced; the previous set stays)."""
        with self._lock, deferred():
            self._closed = True
            self._txn.release_reserve()  # room for HDF5 to close its file cleanly
            for t in (self._stream_file, self._lst, self._lst_source):
                if t is not None:
                    t.abort()
            if self._cxi is not None:
                self._cxi.abort()
            self._txn.abort()

    def _close_stream(self) -> None:
        if self._stream_file is not None:
            self._stream_file.commit()
            self.files["stream"] = self._dir / STREAM_NAME
        elif "stream" in self.formats:
            log.warning("%s: no stream written (no frames and no geometry)", self.out_dir)

    def _close_lists(self) -> None:
        if self._lst_source is not None and len(self._cxi_lines) > self._cxi.n_frames:
            n = self._cxi.n_frames  # hits.cxi lost its last frames (a write failed): list what it has
            self._lst.rewrite("".join(lst_line(HITS_CXI, k) + "\n" for k in range(n)))
            self._lst_source.rewrite("".join(line + "\n" for line in self._cxi_lines[:n]))
            for r in self.summary.frames:
                if r.cxi_index is not None and r.cxi_index >= n:
                    r.cxi_index = None
        if self._lst is not None:
            self._lst.commit()
            self.files["lst"] = self._dir / HITS_LST
        if self._lst_source is not None:
            self._lst_source.commit()
            self.files["lst_source"] = self._dir / HITS_SOURCE_LST

    def _close_cxi(self) -> None:
        if self._cxi is None:
            return
        shape = self._shape or (self.geometry.data_shape if self.geometry is not None else None)
        self._txn.ensure_space(32 * 1024 + (24 * self._cxi.max_peaks + 64) * len(self._cxi._rows),
                               self.out_dir / HITS_CXI)
        written = self._cxi.close(shape=shape)
        if written is None:
            log.warning("%s: no hits.cxi written (no frames and no geometry)", self.out_dir)
            return
        self.files["cxi"] = written
        if self.geometry is None:
            return
        from ..geometry.geom_writer import write_geom

        g = run_cxi_geometry(self.geometry, self._cxi_energy[: self._cxi.n_frames], self._cxi_clen[: self._cxi.n_frames],
                             cxi_name=HITS_CXI, lst_name=HITS_LST, geom_name=PEAKS_GEOM)
        from ..geometry.sanity import crystfel_gaps

        for gap in crystfel_gaps(g):
            self._warn_once(f"geom:{gap}", "%s: %s (give --geom with clen/photon_energy, or fix the file's metadata)",
                            self.out_dir / PEAKS_GEOM, gap)
        try:
            write_geom(g, self._dir / PEAKS_GEOM)
            write_geom(g, self._dir / HITS_GEOM)
        except GeometryError as e:
            raise ExportError(f"{self.out_dir / PEAKS_GEOM}: cannot write ({e})") from e
        self.files["peaks_geom"] = self._dir / PEAKS_GEOM

    def _close_mask(self) -> None:
        if "mask" not in self.formats:
            return
        mask = self.run_mask()
        if mask is None:
            if self.geometry is None:
                return
            mask = np.zeros(self.geometry.data_shape, dtype=bool)
            counts = np.zeros(mask.shape, dtype=np.uint32)
        else:
            counts = self._mask_counts
        from .mask_h5 import MASK_DATASET, mask_geometry, write_mask_h5

        import zlib

        packed = len(zlib.compress(np.asarray(mask, np.uint16).tobytes(), 1)) + len(zlib.compress(counts.tobytes(), 1))
        self._txn.ensure_space(32 * 1024 + 2 * packed, self.out_dir / MASK_H5)  # gzip'd as in the file
        write_mask_h5(self._dir / MASK_H5, mask, counts=counts, n_frames=self._mask_frames, fraction=self.mask_fraction,
                      description=f"run mask: pixels masked in at least {self.mask_fraction:g} of {self._mask_frames} "
                                  "frames; 1 = bad, 0 = good; CrystFEL: mask_good = 0x0, mask_bad = 0x1")
        self.files["mask"] = self._dir / MASK_H5
        if self.geometry is not None:
            from ..geometry.geom_writer import write_geom

            g, _ = mask_geometry(self.geometry, self._path_text(self.out_dir / MASK_H5), MASK_DATASET)
            try:
                write_geom(g, self._dir / MASK_GEOM)
            except GeometryError as e:
                raise ExportError(f"{self.out_dir / MASK_GEOM}: cannot write ({e})") from e
            self.files["mask_geom"] = self._dir / MASK_GEOM

    def _write_summary(self, status: str, errors: list) -> None:
        from .. import __version__

        header = {
            "software": f"peaknet_gui {__version__}",
            "status": status,
            "complete": status == "complete" and not errors and not self.skipped,  # every input analysed
            "interrupted": status == "interrupted",
            "skipped": list(self.skipped),
            "manifest": [e.as_dict() for e in manifest(self._dir)],
            "output_dir": str(self.out_dir.resolve()),
            "formats": sorted(self.formats),
            "paths": self.paths,
            "files": {k: os.path.basename(str(v)) for k, v in self.files.items()},
            "geometry": getattr(self.geometry, "source", None) if self.geometry is not None else None,
            "settings": self.settings,
        }
        if "cxi" in self.formats and "lst" in self.formats:
            header["crystfel_command"] = (f"cd {self.out_dir.resolve()} && indexamajig -i {HITS_LST} -g {PEAKS_GEOM} "
                                          "--peaks=cxi --indexing=xgandalf -p CELL -o indexed.stream")
        if errors:
            header["errors"] = list(errors)
        self._txn.ensure_space(4096 + 400 * len(self.summary.frames), self.out_dir / SUMMARY)
        write_summary(self._dir / SUMMARY, self.summary.as_dict(**header))
        self.files["summary"] = self._dir / SUMMARY

    # --- context manager -------------------------------------------------------------------------
    def __enter__(self) -> "ExportSession":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and issubclass(exc_type, WriteError):
            self.abort()
        elif exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
            self.close(status="failed")
        else:
            self.close(interrupted=exc_type is not None)
