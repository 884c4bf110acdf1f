"""Calling CrystFEL: finding its programs, cell specifications, running ``indexamajig``.

CrystFEL is never bundled: its programs are used when they are on ``PATH`` (or in the folder
named by ``$CRYSTFEL_BIN``).  :func:`find_tool` says whether one is there; callers skip what
needs it otherwise.

A cell is given either as a CrystFEL unit cell file (``.cell``) or as a compact spec::

    "tetragonal P c 58.4 58.4 152.3 90 90 90"     lattice type, centering, unique axis, a b c al be ga
    "hexagonal P c 93.4 93.4 131.2 90 90 120"
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ..errors import InputError, PeakNetError
from ..export.cellfile import LATTICE_TYPES, UnitCell, read_cell_file


class ToolError(PeakNetError):
    """A CrystFEL program is missing or failed."""


def find_tool(name: str) -> Optional[str]:
    """Full path of CrystFEL program ``name`` (``$CRYSTFEL_BIN`` first, then ``PATH``), or None."""
    folder = os.environ.get("CRYSTFEL_BIN")
    if folder:
        p = Path(folder) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return shutil.which(name)


def require_tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        raise ToolError(f"{name}: not found on PATH (build CrystFEL from its public source; see README)")
    return path


def parse_cell_spec(spec: str) -> UnitCell:
    """A :class:`UnitCell` from a ``.cell`` file path or a compact spec (module doc)."""
    p = Path(spec)
    if p.suffix.lower() == ".cell" or p.exists():
        return read_cell_file(p)
    parts = spec.replace(",", " ").split()
    if len(parts) < 9 or parts[0] not in LATTICE_TYPES:
        raise InputError(f"--lattice {spec!r}: give a .cell file or 'LATTICE CENTERING AXIS a b c al be ga' "
                         f"(e.g. 'tetragonal P c 58.4 58.4 152.3 90 90 90')")
    try:
        nums = [float(v) for v in parts[3:9]]
        return UnitCell(*nums, lattice_type=parts[0], centering=parts[1], unique_axis=parts[2])
    except ValueError as e:
        raise InputError(f"--lattice {spec!r}: {e}") from None


@dataclass
class IndexamajigJob:
    """One indexamajig run: ``inputs`` (file or ``file //event`` lines), geometry, cell, peak
    search (``peaks`` = ``peakfinder8`` with its thresholds, or ``cxi`` to read the files' own
    peak lists), ``indexing`` method (``none`` = peak search only)."""

    inputs: Sequence[str]
    geometry: str
    out_stream: str
    cell: Optional[str] = None
    indexing: str = "xgandalf"
    peaks: str = "peakfinder8"
    threshold: float = 100.0
    min_snr: float = 5.0
    min_pix_count: int = 2
    max_pix_count: int = 200
    local_bg_radius: int = 3
    min_res: int = 0
    max_res: int = 5000
    int_radius: str = "3,4,5"
    threads: int = 2
    extra: list = field(default_factory=list)

    def command(self, exe: str, list_file: str) -> list:
        cmd = [exe, "-i", list_file, "-g", self.geometry, "-o", self.out_stream, "-j", str(self.threads),
               f"--peaks={self.peaks}", f"--indexing={self.indexing}", f"--int-radius={self.int_radius}"]
        if self.peaks == "peakfinder8":
            cmd += [f"--threshold={self.threshold:g}", f"--min-snr={self.min_snr:g}",
                    f"--min-pix-count={self.min_pix_count}", f"--max-pix-count={self.max_pix_count}",
                    f"--local-bg-radius={self.local_bg_radius}", f"--min-res={self.min_res}", f"--max-res={self.max_res}"]
        if self.cell and self.indexing != "none":
            cmd += ["-p", self.cell]
        return cmd + list(self.extra)


def run_indexamajig(job: IndexamajigJob, *, log_path: Optional[str] = None, timeout: Optional[float] = None) -> str:
    """Run ``job``; returns the stream path.  ToolError (with the log's last lines) on failure."""
    exe = require_tool("indexamajig")
    out = Path(job.out_stream)
    out.parent.mkdir(parents=True, exist_ok=True)
    list_file = out.with_suffix(".lst")
    list_file.write_text("".join(f"{s}\n" for s in job.inputs))
    log_file = Path(log_path) if log_path else out.with_suffix(".log")
    cmd = job.command(exe, str(list_file))
    with open(log_file, "w") as fh:
        try:
            r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, cwd=str(out.parent))
        except subprocess.TimeoutExpired:
            raise ToolError(f"{out}: indexamajig ran longer than {timeout} s (log {log_file})") from None
    if r.returncode != 0 or not out.exists():
        tail = log_file.read_text(errors="replace").strip().splitlines()[-3:]
        raise ToolError(f"{out}: indexamajig failed (exit {r.returncode}; log {log_file}): {' | '.join(tail)}")
    return str(out)


def write_cell(cell: UnitCell, path) -> str:
    Path(path).write_text(cell.format())
    return str(path)
