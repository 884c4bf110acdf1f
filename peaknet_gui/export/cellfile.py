"""CrystFEL unit cell files (``CrystFEL unit cell file version 1.0``), as ``-p cell.cell`` takes
them and as a stream's ``----- Begin unit cell -----`` block holds them.

Layout (CrystFEL's ``write_cell``)::

    CrystFEL unit cell file version 1.0

    lattice_type = tetragonal
    unique_axis = c            (monoclinic, tetragonal and hexagonal only)
    centering = P
    a = 79.10 A
    ...
    al = 90.00 deg
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import InputError

CELL_FILE_HEADER = "CrystFEL unit cell file version 1.0"
LATTICE_TYPES = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "rhombohedral", "hexagonal", "cubic")
CENTERINGS = ("P", "A", "B", "C", "I", "F", "R", "H")
_HAS_UNIQUE_AXIS = ("monoclinic", "tetragonal", "hexagonal")


@dataclass(frozen=True)
class UnitCell:
    """Cell lengths in Angstrom, angles in degrees."""

    a: float
    b: float
    c: float
    alpha: float = 90.0
    beta: float = 90.0
    gamma: float = 90.0
    lattice_type: str = "triclinic"
    centering: str = "P"
    unique_axis: Optional[str] = None

    def __post_init__(self):
        if self.lattice_type not in LATTICE_TYPES:
            raise ValueError(f"unknown lattice type {self.lattice_type!r} (one of {', '.join(LATTICE_TYPES)})")
        if self.centering not in CENTERINGS:
            raise ValueError(f"unknown centering {self.centering!r} (one of {', '.join(CENTERINGS)})")
        if self.unique_axis not in (None, "a", "b", "c", "*", "?"):
            raise ValueError(f"unknown unique axis {self.unique_axis!r}")
        for v in (self.a, self.b, self.c, self.alpha, self.beta, self.gamma):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"invalid cell parameter {v}")

    @property
    def parameters(self) -> tuple:
        return (self.a, self.b, self.c, self.alpha, self.beta, self.gamma)

    def format(self) -> str:
        """The text of a CrystFEL unit cell file."""
        lines = [CELL_FILE_HEADER, "", f"lattice_type = {self.lattice_type}"]
        if self.lattice_type in _HAS_UNIQUE_AXIS:
            lines.append(f"unique_axis = {self.unique_axis or 'c'}")
        lines.append(f"centering = {self.centering}")
        lines += [f"a = {self.a:.2f} A", f"b = {self.b:.2f} A", f"c = {self.c:.2f} A",
                  f"al = {self.alpha:.2f} deg", f"be = {self.beta:.2f} deg", f"ga = {self.gamma:.2f} deg"]
        return "\n".join(lines) + "\n"


def _length_a(value: str) -> float:
    parts = value.split()
    v = float(parts[0])
    unit = parts[1] if len(parts) > 1 else "A"
    if unit == "nm":
        return 10.0 * v
    if unit == "A":
        return v
    raise ValueError(f"unknown length unit {unit!r}")


def _angle_deg(value: str) -> float:
    parts = value.split()
    v = float(parts[0])
    unit = parts[1] if len(parts) > 1 else "deg"
    if unit == "deg":
        return v
    if unit == "rad":
        return math.degrees(v)
    raise ValueError(f"unknown angle unit {unit!r}")


def parse_cell_text(text: str, source: str = "<cell text>") -> UnitCell:
    """Parse a CrystFEL unit cell file's text.  InputError names ``source`` and the problem."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != CELL_FILE_HEADER:
        raise InputError(f"{source}: not a CrystFEL unit cell file (first line must be {CELL_FILE_HEADER!r})")
    values: dict = {}
    for n, line in enumerate(lines[1:], start=2):
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise InputError(f"{source}, line {n}: expected 'key = value', got {line!r}")
        key, value = (s.strip() for s in line.split("=", 1))
        values[key] = (value, n)
    try:
        kw = {}
        for key, name, conv in (("a", "a", _length_a), ("b", "b", _length_a), ("c", "c", _length_a),
                                ("al", "alpha", _angle_deg), ("be", "beta", _angle_deg), ("ga", "gamma", _angle_deg)):
            if key not in values:
                raise InputError(f"{source}: unit cell parameter {key} is missing")
            text_value, n = values[key]
            try:
                kw[name] = conv(text_value)
            except ValueError as e:
                raise InputError(f"{source}, line {n}: invalid {key} {text_value!r} ({e})") from None
        return UnitCell(
            lattice_type=values.get("lattice_type", ("triclinic", 0))[0],
            centering=values.get("centering", ("P", 0))[0],
            unique_axis=values.get("unique_axis", (None, 0))[0],
            **kw,
        )
    except ValueError as e:
        raise InputError(f"{source}: {e}") from None


def read_cell_file(path) -> UnitCell:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise InputError(f"{path}: cannot read unit cell file ({e.strerror or e})") from e
    return parse_cell_text(text, source=str(path))


def write_cell_file(cell: UnitCell, path) -> None:
    from .atomic import atomic_write

    with atomic_write(path) as fh:
        fh.write(cell.format())
