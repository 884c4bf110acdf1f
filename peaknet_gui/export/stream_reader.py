"""The project's own CrystFEL stream reader (format 2.3: ours and indexamajig's).

It follows libcrystfel's reader (``stream_read_chunk``): the audit lines up to the geometry
block, the embedded geometry (its panel names give the ``Panel`` column's indices), an
optional target cell, then chunks.  Inside a chunk it reads the filename, event, serial,
``hit``, ``indexed_by``, photon energy, divergence, bandwidth, average camera length, the
``Peaks from peak search`` list (the line after the marker is the column header) and the
crystals' cells.  Peak positions come back as a :class:`PeakList` in the program's
pixel-index coordinates of the frame's 2-D data array (the stream's corner-convention file
coordinates minus half a pixel, :func:`.stream.from_crystfel_corner`); the (1/d) column
becomes ``resolution`` in inverse Angstrom.

Like CrystFEL, a peak naming a panel the geometry lacks is skipped (logged), and a stream
cut short inside a chunk (indexamajig still running) ends at the last complete chunk
(``StreamFile.truncated``).  Malformed lines raise :class:`InputError` naming file and line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..errors import GeometryError, InputError
from ..peaks.peaklist import PeakList
from .stream import (
    CELL_END, CELL_START, CHUNK_END, CHUNK_START, CRYSTAL_END, CRYSTAL_START, GEOM_END, GEOM_START, PEAKS_END,
    PEAKS_START, StreamChunk, from_crystfel_corner,
)

log = logging.getLogger(__name__)

_VERSION_PREFIX = "CrystFEL stream format 2.3"
_REFLECTIONS_START = "Reflections measured after indexing"
_REFLECTIONS_END = "End of reflections"
_PANEL_LINE = re.compile(r"^\s*([A-Za-z0-9_\-.]+)/([A-Za-z0-9_]+)\s*=")
_NOT_PANELS = ("bad", "rigid_group", "group_")


@dataclass
class Crystal:
    """A crystal block of an indexamajig stream: cell in Angstrom and degrees, reciprocal
    basis vectors in nm^-1 (lab frame)."""

    cell: tuple
    lattice_type: str = ""
    centering: str = ""
    unique_axis: str = ""
    astar: tuple = ()
    bstar: tuple = ()
    cstar: tuple = ()
    num_reflections: Optional[int] = None
    line: int = 0


@dataclass
class StreamFile:
    """A whole stream: header parts and chunks."""

    path: str
    audit_lines: list
    geometry_text: str
    geometry: Optional[object]  # peaknet_gui.geometry.Geometry, None if our parser rejected it
    panel_names: list
    cell_text: Optional[str] = None
    cell: Optional[object] = None  # UnitCell
    chunks: list = field(default_factory=list)
    truncated: bool = False
    geometry_error: Optional[str] = None


class _Lines:
    """Line iterator that counts lines (1-based) and strips the newline."""

    def __init__(self, fh):
        self.fh = fh
        self.n = 0

    def next(self) -> Optional[str]:
        line = self.fh.readline()
        if line == "":
            return None
        self.n += 1
        return line.rstrip("\r\n")


def _panel_names_from_text(text: str) -> list:
    """Panel names in order of first appearance, as CrystFEL numbers them."""
    names: list = []
    for line in text.splitlines():
        line = line.split(";", 1)[0]
        m = _PANEL_LINE.match(line)
        if m and not m.group(1).startswith(_NOT_PANELS) and m.group(1) not in names:
            names.append(m.group(1))
    return names


def _read_header(lines: _Lines, src: str) -> StreamFile:
    first = lines.next()
    if first is None or not first.startswith(_VERSION_PREFIX):
        raise InputError(f"{src}: not a CrystFEL stream (format 2.3) -- first line is {first!r}")
    audit = [first]
    while True:
        line = lines.next()
        if line is None:
            raise InputError(f"{src}: no '{GEOM_START}' block (a stream must embed its geometry)")
        if line == GEOM_START:
            break
        audit.append(line)
    geom_lines = []
    while True:
        line = lines.next()
        if line is None:
            raise InputError(f"{src}: the geometry block is not terminated by '{GEOM_END}'")
        if line == GEOM_END:
            break
        geom_lines.append(line)
    text = "\n".join(geom_lines) + "\n"
    geometry, err = None, None
    try:
        from ..geometry.crystfel_geom import parse_geom_text

        geometry = parse_geom_text(text, source=f"{src} (embedded geometry)")
        names = [p.name for p in geometry.panels]
    except GeometryError as e:
        err = str(e)
        names = _panel_names_from_text(text)
        log.warning("%s: embedded geometry not understood (%s); using its panel names only", src, e)
    return StreamFile(path=src, audit_lines=audit, geometry_text=text, geometry=geometry, panel_names=names,
                      geometry_error=err)


def _float_after(line: str, prefix: str, src: str, n: int) -> float:
    try:
        return float(line[len(prefix):].split()[0])
    except (ValueError, IndexError):
        raise InputError(f"{src}, line {n}: invalid number in {line!r}") from None


def _read_peaks(lines: _Lines, src: str, panel_index: dict) -> Optional[PeakList]:
    header = lines.next()  # the column header line, skipped as CrystFEL does
    if header is None:
        return None
    fs, ss, q, inten, pan = [], [], [], [], []
    unknown: set = set()
    while True:
        line = lines.next()
        if line is None:
            return None
        if line == PEAKS_END:
            break
        parts = line.split()
        try:
            if len(parts) < 5:
                raise ValueError
            x, y, d, i = (float(v) for v in parts[:4])
        except ValueError:
            raise InputError(f"{src}, line {lines.n}: cannot read peak line {line!r}") from None
        p = panel_index.get(parts[4])
        if p is None:
            unknown.add(parts[4])
            continue
        fs.append(x)
        ss.append(y)
        q.append(d)
        inten.append(i)
        pan.append(p)
    if unknown:
        log.warning("%s, before line %d: peaks on unknown panel(s) %s skipped", src, lines.n, ", ".join(sorted(unknown)))
    f, s = from_crystfel_corner(np.array(fs), np.array(ss))
    return PeakList(fs=f, ss=s, intensity=np.array(inten), panel=np.array(pan, dtype=np.int32),
                    resolution=np.array(q) / 10.0)


def _vector(line: str) -> tuple:
    return tuple(float(v) for v in line.split("=", 1)[1].split()[:3])


def _read_crystal(lines: _Lines, src: str, start: int) -> Optional[Crystal]:
    cr = Crystal(cell=(), line=start)
    while True:
        line = lines.next()
        if line is None:
            return None
        if line.startswith(CRYSTAL_END):
            return cr
        try:
            if line.startswith("Cell parameters"):
                nums = re.findall(r"[-+]?\d+\.?\d*(?:[eE][-+]?\d+)?", line)
                a, b, c, al, be, ga = (float(v) for v in nums[:6])
                cr.cell = (10 * a, 10 * b, 10 * c, al, be, ga)
            elif line.startswith("astar = "):
                cr.astar = _vector(line)
            elif line.startswith("bstar = "):
                cr.bstar = _vector(line)
            elif line.startswith("cstar = "):
                cr.cstar = _vector(line)
            elif line.startswith("lattice_type = "):
                cr.lattice_type = line.split("=", 1)[1].strip()
            elif line.startswith("centering = "):
                cr.centering = line.split("=", 1)[1].strip()
            elif line.startswith("unique_axis = "):
                cr.unique_axis = line.split("=", 1)[1].strip()
            elif line.startswith("num_reflections = "):
                cr.num_reflections = int(line.split("=", 1)[1])
            elif line == _REFLECTIONS_START:
                while True:
                    line = lines.next()
                    if line is None:
                        return None
                    if line == _REFLECTIONS_END:
                        break
        except ValueError:
            raise InputError(f"{src}, line {lines.n}: cannot read crystal line {line!r}") from None


def _read_chunk(lines: _Lines, src: str, panel_index: dict) -> Optional[StreamChunk]:
    start = lines.n
    ch = StreamChunk(filename="", event="//", serial=0, hit=False, line=start)
    have_filename = have_energy = False
    while True:
        line = lines.next()
        if line is None:
            return None  # truncated
        n = lines.n
        if line.startswith("Image filename: "):
            ch.filename = line[16:]
            have_filename = True
        elif line.startswith("Event: "):
            ch.event = line[7:].strip()
        elif line.startswith("Image serial number: "):
            try:
                ch.serial = int(line[21:].strip())
            except ValueError:
                raise InputError(f"{src}, line {n}: invalid serial number {line!r}") from None
        elif line.startswith("hit = "):
            ch.hit = _float_after(line, "hit = ", src, n) != 0
        elif line.startswith("indexed_by = "):
            ch.indexed_by = line[13:].strip()
        elif line.startswith("photon_energy_eV = "):
            ch.photon_energy_ev = _float_after(line, "photon_energy_eV = ", src, n)
            have_energy = True
        elif line.startswith("beam_divergence = "):
            ch.beam_divergence = _float_after(line, "beam_divergence = ", src, n)
        elif line.startswith("beam_bandwidth = "):
            ch.beam_bandwidth = _float_after(line, "beam_bandwidth = ", src, n)
        elif line.startswith("average_camera_length = "):
            ch.camera_length_m = _float_after(line, "average_camera_length = ", src, n)
        elif line.startswith("peak_resolution = "):
            ch.peak_resolution_nm = _float_after(line, "peak_resolution = ", src, n)
        elif line == PEAKS_START:
            peaks = _read_peaks(lines, src, panel_index)
            if peaks is None:
                return None
            ch.peaks = peaks
        elif line.startswith(CRYSTAL_START):
            cr = _read_crystal(lines, src, n)
            if cr is None:
                return None
            ch.crystals.append(cr)
        elif line == CHUNK_END:
            if not (have_filename and have_energy):
                missing = "'Image filename'" if not have_filename else "'photon_energy_eV'"
                raise InputError(f"{src}, line {start}: incomplete chunk (no {missing} line)")
            return ch


def _open(path):
    p = Path(path)
    try:
        return open(p, "r", encoding="utf-8", errors="replace", newline=None)
    except FileNotFoundError:
        raise InputError(f"{p}: stream file not found") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read stream ({e.strerror or e})") from e


def _iter_body(lines: _Lines, sf: StreamFile) -> Iterator[StreamChunk]:
    panel_index = {name: i for i, name in enumerate(sf.panel_names)}
    while True:
        line = lines.next()
        if line is None:
            return
        if line == CELL_START and sf.cell_text is None and not sf.chunks:
            cell_lines = []
            while True:
                line = lines.next()
                if line is None or line == CELL_END:
                    break
                cell_lines.append(line)
            sf.cell_text = "\n".join(cell_lines) + "\n"
            try:
                from .cellfile import parse_cell_text

                sf.cell = parse_cell_text(sf.cell_text, source=f"{sf.path} (unit cell block)")
            except InputError as e:
                log.warning("%s", e)
        elif line == CHUNK_START:
            ch = _read_chunk(lines, sf.path, panel_index)
            if ch is None:
                sf.truncated = True
                log.warning("%s: the stream ends inside the chunk starting at line %d (ignored)", sf.path, lines.n)
                return
            yield ch


def iter_stream(path) -> Iterator[StreamChunk]:
    """Chunks of a stream one at a time (for large streams)."""
    with _open(path) as fh:
        lines = _Lines(fh)
        sf = _read_header(lines, str(path))
        yield from _iter_body(lines, sf)


def read_stream_file(path) -> StreamFile:
    """The whole stream: header, geometry, cell and every complete chunk."""
    with _open(path) as fh:
        lines = _Lines(fh)
        sf = _read_header(lines, str(path))
        for ch in _iter_body(lines, sf):
            sf.chunks.append(ch)
    return sf


def read_stream(path) -> list:
    """The chunks of a stream (:class:`StreamChunk`, peaks in pixel-index coordinates)."""
    return read_stream_file(path).chunks
