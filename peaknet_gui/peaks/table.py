"""One frame's peaks as a table (Qt-free): the GUI's peak table, its clipboard text and CSV export.

Columns: ``peak`` (shown as ``#``: the peak's index in the frame's :class:`~peaknet_gui.peaks.peaklist.PeakList`),
``fs``/``ss`` (pixel indices of the data array, centre of the first pixel at 0), ``panel`` (the
geometry's panel name), ``d_A`` (d-spacing in Angstrom, empty when the geometry or the photon
energy is unknown), ``intensity`` (background-subtracted total), ``snr`` (of the total),
``pixel_snr`` (the brightest pixel over the local background sigma), ``confidence`` (the model's
highest peak probability in the peak; empty for peakfinder8) and ``pixels``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..errors import ExportError
from .peaklist import PeakList

COLUMNS = ("peak", "fs", "ss", "panel", "d_A", "intensity", "snr", "pixel_snr", "confidence", "pixels")
HEADERS = ("#", "fs", "ss", "panel", "d (\u00c5)", "intensity", "SNR", "pixel SNR", "confidence", "pixels")
_DECIMALS = {"fs": 2, "ss": 2, "d_A": 3, "intensity": 1, "snr": 2, "pixel_snr": 2, "confidence": 3}


@dataclass
class PeakTable:
    """``values``: (n, len(COLUMNS)) float array (NaN = unknown; the panel column holds the panel
    index, -1 unknown); ``panel_names`` maps panel indices to names."""

    values: np.ndarray
    panel_names: tuple = ()

    def __len__(self) -> int:
        return len(self.values)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, COLUMNS.index(name)]

    def text(self, row: int, col: int) -> str:
        """The cell as shown and written (empty when unknown)."""
        name = COLUMNS[col]
        v = float(self.values[row, col])
        if name == "panel":
            i = int(v)
            return self.panel_names[i] if 0 <= i < len(self.panel_names) else ("" if i < 0 else str(i))
        if not math.isfinite(v):
            return "\u221e" if name == "d_A" and v > 0 else ""
        if name in ("peak", "pixels"):
            return str(int(v))
        return f"{v:.{_DECIMALS.get(name, 3)}f}"

    def sort_order(self, col: int, descending: bool = False) -> np.ndarray:
        """Row order sorted by a column (unknown values last either way; ties keep peak order)."""
        v = self.values[:, col].copy()
        if COLUMNS[col] == "panel":
            keys = np.array([self.text(r, col) for r in range(len(self))], dtype=object)
            order = np.array(sorted(range(len(self)), key=lambda r: (keys[r] == "", keys[r])), dtype=np.int64)
            return order[::-1] if descending else order
        unknown = np.isnan(v) if COLUMNS[col] == "d_A" else ~np.isfinite(v)  # d = inf (at the beam) is known
        key = np.where(unknown, 0.0, -v if descending else v)
        return np.lexsort((np.arange(len(v)), key, unknown))

    def rows_text(self, rows: Optional[Sequence[int]] = None, sep: str = "\t", header: bool = True) -> str:
        """The rows (default all) as delimited text with a header line (for the clipboard)."""
        rows = range(len(self)) if rows is None else rows
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=sep, lineterminator="\n")
        if header:
            w.writerow(COLUMNS)
        for r in rows:
            w.writerow([self.text(r, c) for c in range(len(COLUMNS))])
        return buf.getvalue()


def peak_table(peaks: PeakList, geometry=None) -> PeakTable:
    """The table of ``peaks``; ``geometry`` names the panels."""
    n = len(peaks)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(peaks.resolution > 0, 1.0 / peaks.resolution, np.where(peaks.resolution == 0, np.inf, np.nan))
    values = np.column_stack([np.arange(n, dtype=np.float64), peaks.fs, peaks.ss, peaks.panel.astype(np.float64), d,
                              peaks.intensity, peaks.snr, peaks.max_snr, peaks.confidence,
                              peaks.npix.astype(np.float64)]) if n else np.zeros((0, len(COLUMNS)))
    names = tuple(p.name for p in geometry.panels) if geometry is not None else ()
    return PeakTable(values=values, panel_names=names)


def write_peak_csv(path, table: PeakTable, rows: Optional[Sequence[int]] = None, comment: Optional[str] = None) -> None:
    """Write the table (or some rows) as CSV, atomically; ``comment`` becomes leading ``# ...``
    lines (e.g. the frame; the header line never starts with ``#``).  Raises :class:`ExportError` naming the file."""
    from ..export.atomic import atomic_write

    text = table.rows_text(rows, sep=",")
    if comment:
        text = "".join(f"# {line}\n" for line in comment.splitlines()) + text
    try:
        with atomic_write(path) as fh:
            fh.write(text)
    except OSError as e:
        raise ExportError(f"{path}: cannot write the peak table ({e.strerror or e})") from e
