"""The chunks of an indexamajig stream with their peak lists, crystals and reflection lists.

The project's :mod:`peaknet_gui.export.stream_reader` reads peaks and cells but skips the
reflection lists; this reader keeps them.  Positions come back in the program's pixel-index
convention of the frame's data array (the stream's corner-convention ``fs/px ss/px`` minus half
a pixel, as :func:`peaknet_gui.export.stream.from_crystfel_corner`).

Reflection lines (CrystFEL 0.9-0.12)::

       h    k    l          I   sigma(I)       peak background  fs/px  ss/px panel
      -1  -15  -33      27.34      31.09      20.00       1.49  599.8  1082.2 p0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import numpy as np

from ..errors import InputError

CHUNK_START = "----- Begin chunk -----"
CHUNK_END = "----- End chunk -----"
PEAKS_START = "Peaks from peak search"
PEAKS_END = "End of peak list"
CRYSTAL_START = "--- Begin crystal"
CRYSTAL_END = "--- End crystal"
REFL_START = "Reflections measured after indexing"
REFL_END = "End of reflections"


@dataclass
class Reflections:
    """Predicted reflections of one crystal: Miller indices (n, 3), integrated intensity and its
    sigma, and the predicted position (pixel indices of the data array) and panel name."""

    hkl: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    fs: np.ndarray
    ss: np.ndarray
    panel: List[str]

    def __len__(self) -> int:
        return len(self.fs)

    @property
    def i_over_sigma(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.sigma > 0, self.intensity / np.where(self.sigma > 0, self.sigma, 1.0), 0.0)

    @classmethod
    def empty(cls) -> "Reflections":
        z = np.zeros(0)
        return cls(np.zeros((0, 3), dtype=int), z, z, z, z, [])


@dataclass
class IndexedCrystal:
    cell: tuple  # a, b, c (Angstrom), alpha, beta, gamma (degrees)
    reflections: Reflections


@dataclass
class Chunk:
    """One frame of the stream: filename, event text (``//3`` or ``""``), the peak-search list
    (pixel indices) and the crystals found."""

    filename: str
    event: str
    peaks_fs: np.ndarray
    peaks_ss: np.ndarray
    indexed_by: str = "none"
    crystals: List[IndexedCrystal] = field(default_factory=list)

    @property
    def indexed(self) -> bool:
        return len(self.crystals) > 0

    @property
    def key(self) -> tuple:
        return (self.filename, self.event)


def _floats(parts, n, src, lineno):
    try:
        return [float(v) for v in parts[:n]]
    except ValueError:
        raise InputError(f"{src}, line {lineno}: malformed numbers in {' '.join(parts)!r}") from None


def _cell(line: str, src: str, lineno: int) -> tuple:
    # "Cell parameters 7.84 7.84 3.79 nm, 90.00 90.00 90.00 deg"
    parts = line.replace(",", " ").split()
    v = _floats(parts[2:5] + parts[6:9], 6, src, lineno)
    return (10 * v[0], 10 * v[1], 10 * v[2], v[3], v[4], v[5])


def read_chunks(path) -> List[Chunk]:
    """All complete chunks of an indexamajig stream (a chunk cut short at the end is dropped)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise InputError(f"{path}: cannot read the stream ({e.strerror or e})") from e
    src = str(path)
    chunks: List[Chunk] = []
    cur = None
    mode = None
    peaks: list = []
    refl: list = []
    cell = None
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if line == CHUNK_START:
            cur = Chunk("", "", np.zeros(0), np.zeros(0))
            peaks, mode = [], None
            continue
        if cur is None:
            continue
        if line == CHUNK_END:
            chunks.append(cur)
            cur = None
            continue
        if mode == "peaks":
            if line == PEAKS_END:
                a = np.asarray(peaks, dtype=float).reshape(-1, 2)
                cur.peaks_fs, cur.peaks_ss = a[:, 0] - 0.5, a[:, 1] - 0.5
                mode = None
            elif not line.startswith("fs/px"):
                peaks.append(_floats(line.split(), 2, src, n))
            continue
        if mode == "refl":
            if line == REFL_END:
                cur.crystals.append(IndexedCrystal(cell or (0,) * 6, _reflections(refl, src, n)))
                mode = None
            elif not line.startswith("h "):
                refl.append((line.split(), n))
            continue
        if line.startswith("Image filename:"):
            cur.filename = line.split(":", 1)[1].strip()
        elif line.startswith("Event:"):
            cur.event = line.split(":", 1)[1].strip()
        elif line.startswith("indexed_by ="):
            cur.indexed_by = line.split("=", 1)[1].strip()
        elif line == PEAKS_START:
            mode, peaks = "peaks", []
        elif line == CRYSTAL_START:
            cell = None
        elif line.startswith("Cell parameters"):
            cell = _cell(line, src, n)
        elif line == REFL_START:
            mode, refl = "refl", []
    return chunks


def _reflections(rows, src: str, lineno: int) -> Reflections:
    if not rows:
        return Reflections.empty()
    hkl, vals, panels = [], [], []
    for parts, n in rows:
        if len(parts) < 10:
            raise InputError(f"{src}, line {n}: a reflection line needs 10 columns, got {len(parts)}")
        try:
            hkl.append([int(v) for v in parts[:3]])
        except ValueError:
            raise InputError(f"{src}, line {n}: malformed Miller indices {' '.join(parts[:3])!r}") from None
        vals.append(_floats(parts[3:9], 6, src, n))
        panels.append(parts[9])
    v = np.asarray(vals, dtype=float)
    return Reflections(np.asarray(hkl, dtype=int), v[:, 0], v[:, 1], v[:, 4] - 0.5, v[:, 5] - 0.5, panels)
