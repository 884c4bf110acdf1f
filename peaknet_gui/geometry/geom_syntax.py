"""Syntax of CrystFEL ``.geom`` values: which keys are panel keys, numbers, directions, booleans."""

from __future__ import annotations

import re

# Panel keys CrystFEL knows (also valid at top level as defaults for later panels).
PANEL_KEYS = {
    "min_fs", "max_fs", "min_ss", "max_ss", "corner_x", "corner_y", "fs", "ss", "res", "coffset",
    "adu_per_photon", "adu_per_eV", "max_adu", "data", "mask", "mask_file", "mask_good", "mask_bad",
    "no_index", "saturation_map", "saturation_map_file", "mask_edge_pixels", "flag_equal",
    "flag_lessthan", "flag_morethan", "badrow_direction", "clen_for_centering", "rail_direction",
}
REPEATABLE_KEYS = {"flag_equal", "flag_lessthan", "flag_morethan"}
DIM_RE = re.compile(r"dim(\d+)$")
MASKN_RE = re.compile(r"mask(\d+)_(data|file|goodbits|badbits)$")
TOPLEVEL_TEXT_KEYS = {"peak_list", "peak_list_type", "detector_shift_x", "detector_shift_y", "electron_voltage",
                  "peak_info_location"}
MASK0_ALIAS = {"mask0_data": "mask", "mask0_file": "mask_file", "mask0_goodbits": "mask_good",
                "mask0_badbits": "mask_bad"}
VEC_TERM = re.compile(r"([+-]?)(\d*\.?\d*(?:[eE][+-]?\d+)?)([xyz])")
NUM_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def is_panel_key(key: str) -> bool:
    return key in PANEL_KEYS or bool(DIM_RE.match(key) or MASKN_RE.match(key))


def parse_vector(text: str) -> tuple:
    """``"+0.0x -1.0y +0.0z"``, ``"-x"``, ``"0.9999x+0.003y"`` -> (x, y, z).  ValueError if invalid."""
    s = "".join(text.split())
    if not s:
        raise ValueError("empty direction")
    out = [0.0, 0.0, 0.0]
    pos = 0
    while pos < len(s):
        m = VEC_TERM.match(s, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"invalid direction {text!r}")
        sign, num, axis = m.groups()
        if pos > 0 and not sign:
            raise ValueError(f"invalid direction {text!r} (terms must be separated by + or -)")
        if num in ("", "."):
            if num == ".":
                raise ValueError(f"invalid coefficient in {text!r}")
            val = 1.0
        else:
            val = float(num)
        out["xyz".index(axis)] += -val if sign == "-" else val
        pos = m.end()
    if not any(out):
        raise ValueError(f"direction {text!r} has zero length")
    return tuple(out)


def parse_int(text: str) -> int:
    """Integers as CrystFEL writes them: decimal, ``0x`` hex, or a float with no fraction."""
    t = text.strip()
    try:
        return int(t, 0)
    except ValueError:
        v = float(t)
        if not v.is_integer():
            raise ValueError(f"not an integer: {text!r}") from None
        return int(v)


def is_number(text: str) -> bool:
    return bool(NUM_RE.match(text.strip()))


def parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t == "true":
        return True
    if t == "false":
        return False
    try:
        return int(float(t)) != 0
    except ValueError:
        raise ValueError(f"not a boolean: {text!r}") from None


def split_path_unit(text: str, default_unit: str):
    """Split a data-file reference such as ``"/LCLS/detector_1/EncoderValue m"`` into
    (path, unit); CrystFEL reads a unit-less ``clen`` path as mm and ``photon_energy`` as eV."""
    parts = str(text).split()
    return parts[0], (parts[1] if len(parts) > 1 else default_unit)
