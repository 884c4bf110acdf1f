"""Write a :class:`Geometry` as a CrystFEL ``.geom`` file that CrystFEL 0.12 accepts.

Layout (CrystFEL 0.12 rejects panel-level defaults after the last panel, so every top-level
line comes first):

1. comment lines kept from the file read, then ``photon_energy``, ``bandwidth``, ``clen`` and the
   other top-level values (``peak_list``, ``peak_list_type``...), then unknown top-level lines;
2. panel-level defaults: the panel keys in ``Geometry.globals`` (``data``, ``dim0..``, ``mask``,
   ``mask_file``, ``mask_good``, ``mask_bad``, ``res``...);
3. one block per panel with its position and every setting that differs from those defaults;
4. bad regions, then ``rigid_group*`` and ``group_*`` lines (top-level, allowed after panels).

A per-panel camera length (CrystFEL <= 0.11) is folded into the global ``clen`` plus per-panel
``coffset``, the only form 0.12 accepts.  A panel without ``adu_per_photon``/``adu_per_eV`` gets
``adu_per_photon = 1`` (0.12 requires one of them).  Numbers are written in positional notation
with the shortest digits that read back to the same value (CrystFEL rejects ``1e-05x`` in
directions).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import GeometryError
from .detector import Geometry, Panel
from .geom_syntax import is_panel_key, parse_int

_POSITION_KEYS = ("min_fs", "max_fs", "min_ss", "max_ss", "corner_x", "corner_y", "fs", "ss")
_TOP_TEXT_ORDER = ("peak_list", "peak_list_type", "detector_shift_x", "detector_shift_y", "electron_voltage",
                   "wavelength")
_MASK_DEPENDENT = ("mask_file", "mask_good", "mask_bad")


def num(v) -> str:
    """Shortest positional text that reads back to the same float (``0.130107``, ``1``, ``-0.5``)."""
    v = float(v)
    if not np.isfinite(v):
        raise GeometryError(f"cannot write non-finite number {v} in a geometry file")
    return np.format_float_positional(v, trim="-")


def vector(v) -> str:
    x, y, z = (float(c) for c in v)
    return f"{_signed(x)}x {_signed(y)}y {_signed(z)}z"


def _signed(c: float) -> str:
    t = num(c)
    return t if t.startswith("-") else "+" + t


def _base_clen(geom: Geometry):
    """(clen text for the top, numeric base or None) -- raises when 0.12 cannot express it."""
    paths = {p.clen_path for p in geom.panels if p.clen_path is not None}
    numbers = [p.clen for p in geom.panels if p.clen is not None]
    if geom.clen_path is not None or paths:
        if numbers or len(paths | ({geom.clen_path} if geom.clen_path else set())) > 1:
            raise GeometryError(f"{geom.source or 'geometry'}: panels take their camera length from different "
                                "sources; CrystFEL 0.12 needs one top-level clen")
        return (geom.clen_path or next(iter(paths))), None
    if geom.clen is not None:
        return num(geom.clen), geom.clen
    if numbers:
        return num(numbers[0]), numbers[0]
    if "clen" in geom.globals:
        return str(geom.globals["clen"]), None
    return None, None


def _panel_settings(geom: Geometry, p: Panel, base_clen: Optional[float]) -> dict:
    """Panel-level keys other than position, as text (insertion order = writing order)."""
    out: dict = {"res": num(p.res)}
    coffset = p.coffset
    if base_clen is not None and p.clen is not None:
        coffset = p.clen + p.coffset - base_clen
    if coffset != 0.0:
        out["coffset"] = num(coffset)
    if p.adu_per_ev is not None:
        out["adu_per_eV"] = num(p.adu_per_ev)
    elif p.adu_per_photon is not None:
        out["adu_per_photon"] = num(p.adu_per_photon)
    if p.max_adu is not None and np.isfinite(p.max_adu):
        out["max_adu"] = num(p.max_adu)
    if p.data is not None:
        out["data"] = p.data
    for i, d in enumerate(p.dims or []):
        if d is not None:
            out[f"dim{i}"] = str(d)
    if p.mask is not None:
        out["mask"] = p.mask
    if p.mask_file is not None:
        out["mask_file"] = p.mask_file
    if p.mask_good is not None:
        out["mask_good"] = f"0x{int(p.mask_good):x}"
    if p.mask_bad is not None:
        out["mask_bad"] = f"0x{int(p.mask_bad):x}"
    if p.no_index:
        out["no_index"] = "1"
    for k, v in p.extra.items():
        out[k] = v
    return out


def _global_text(key: str, value) -> str:
    """Globals text normalised like the per-panel text, so equal values compare equal."""
    try:
        if key in ("mask_good", "mask_bad"):
            return f"0x{parse_int(str(value)):x}"
        if key in ("res", "coffset", "adu_per_photon", "adu_per_eV", "max_adu", "corner_x", "corner_y"):
            return num(float(value))
    except ValueError:
        pass
    if isinstance(value, (float, np.floating)):
        return num(value)
    return str(value)


def _same(key: str, default, value) -> bool:
    """Does the panel's value equal the default (numbers compared by value, not by text)?"""
    if default is None:
        return False
    if isinstance(default, list) or isinstance(value, list):
        return default == value
    return _global_text(key, default) == _global_text(key, value)


def _lines(key: str, value) -> list:
    if isinstance(value, (list, tuple)):
        return [f"{key} = {v}" for v in value]
    return [f"{key} = {value}"]


def format_geom_text(geom: Geometry) -> str:
    """The ``.geom`` text of ``geom`` (see the module doc for the layout)."""
    clen_text, base_clen = _base_clen(geom)
    top: list = [c if c.startswith(";") else "; " + c for c in geom.comments]
    if geom.photon_energy_ev is not None:
        top.append(f"photon_energy = {num(geom.photon_energy_ev)}")
    elif geom.photon_energy_path is not None:
        top.append(f"photon_energy = {geom.photon_energy_path}")
    elif "photon_energy" in geom.globals:
        top.append(f"photon_energy = {geom.globals['photon_energy']}")
    if geom.photon_energy_scale is not None:
        top.append(f"photon_energy_scale = {num(geom.photon_energy_scale)}")
    if geom.bandwidth is not None:
        top.append(f"bandwidth = {num(geom.bandwidth)}")
    if clen_text is not None:
        top.append(f"clen = {clen_text}")

    handled = {"photon_energy", "clen", "bandwidth", "photon_energy_scale"}
    for key in _TOP_TEXT_ORDER:
        if key in geom.globals and not (key == "wavelength" and geom.photon_energy_ev is not None):
            top.append(f"{key} = {geom.globals[key]}")
    for key, value in geom.globals.items():
        if key not in handled and key not in _TOP_TEXT_ORDER and not is_panel_key(key):
            top.extend(_lines(key, value))
    for key, value in geom.unknown_lines:
        top.append(f"{key} = {value}")

    # --- panel-level defaults and per-panel differences
    settings = [_panel_settings(geom, p, base_clen) for p in geom.panels]
    defaults: dict = {}
    for key, value in geom.globals.items():
        if is_panel_key(key):  # text kept verbatim; numbers formatted
            defaults[key] = value if isinstance(value, (str, list)) else _global_text(key, value)
    has_adu = ("adu_per_photon" in defaults) or ("adu_per_eV" in defaults)
    for s in settings:
        if not has_adu and "adu_per_photon" not in s and "adu_per_eV" not in s:
            s["adu_per_photon"] = "1"
    if not has_adu and all(s.get("adu_per_photon") == "1" for s in settings):
        defaults["adu_per_photon"] = "1"
    if "mask" not in defaults and not any("mask" in s for s in settings):
        for key in _MASK_DEPENDENT:  # CrystFEL 0.12 rejects mask bits / file without a mask dataset
            defaults.pop(key, None)
            for s in settings:
                s.pop(key, None)

    out = top + [""] if top else []
    for key, value in defaults.items():
        out.extend(_lines(key, value))
    if defaults:
        out.append("")
    for p, s in zip(geom.panels, settings):
        n = p.name
        out += [f"{n}/min_fs = {p.min_fs}", f"{n}/max_fs = {p.max_fs}",
                f"{n}/min_ss = {p.min_ss}", f"{n}/max_ss = {p.max_ss}",
                f"{n}/corner_x = {num(p.corner_x)}", f"{n}/corner_y = {num(p.corner_y)}",
                f"{n}/fs = {vector(p.fs)}", f"{n}/ss = {vector(p.ss)}"]
        for key, value in s.items():
            if not _same(key, defaults.get(key), value):
                out.extend(_lines(f"{n}/{key}", value))
        out.append("")
    for b in geom.bad_regions:
        if b.is_xy:
            out += [f"{b.name}/min_x = {num(b.min_x)}", f"{b.name}/max_x = {num(b.max_x)}",
                    f"{b.name}/min_y = {num(b.min_y)}", f"{b.name}/max_y = {num(b.max_y)}"]
        else:
            if b.panel is not None:
                out.append(f"{b.name}/panel = {b.panel}")
            out += [f"{b.name}/min_fs = {b.min_fs}", f"{b.name}/max_fs = {b.max_fs}",
                    f"{b.name}/min_ss = {b.min_ss}", f"{b.name}/max_ss = {b.max_ss}"]
        out += [f"{b.name}/{k} = {v}" for k, v in b.extra.items()]
        out.append("")
    for name, members in geom.rigid_groups.items():
        out.append(f"rigid_group_{name} = {','.join(members)}")
    for name, members in geom.rigid_group_collections.items():
        out.append(f"rigid_group_collection_{name} = {','.join(members)}")
    for name, members in geom.panel_groups.items():
        out.append(f"group_{name} = {','.join(members)}")
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def write_geom(geom: Geometry, path) -> None:
    """Write ``geom`` to ``path`` atomically (temporary file + rename)."""
    from ..export.atomic import atomic_write

    text = format_geom_text(geom)
    with atomic_write(path) as fh:
        fh.write(text)
