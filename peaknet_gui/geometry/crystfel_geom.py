"""Read CrystFEL ``.geom`` files (syntax of CrystFEL 0.9 to 0.12) into a :class:`Geometry`.

Semantics follow CrystFEL's own parser (``libcrystfel/src/datatemplate.c``):

* ``name/key = value`` sets a panel key; a name starting with ``bad`` is a bad region.
* A top-level panel key (``res``, ``data``, ``dim0``, ``mask``, ``adu_per_photon``, ``coffset``...)
  is the *default for panels defined after it*.  Top-level keys seen before the first panel are
  also kept in ``Geometry.globals`` so that writing puts them back at the top.
* ``clen``, ``photon_energy`` (number with optional ``eV``/``keV``, or a data-file path),
  ``wavelength``, ``bandwidth``, ``peak_list``, ``peak_list_type``, ``rigid_group*``, ``group_*``
  are top-level only.  A per-panel ``clen`` (CrystFEL <= 0.11) is accepted.
* ``;`` starts a comment.  Comment lines before the first statement are kept (``comments``).
* Keys we do not interpret are kept (``Panel.extra``, ``BadRegion.extra``,
  ``Geometry.unknown_lines``) and written back by :mod:`.geom_writer`.

Every problem raises :class:`GeometryError` naming the file and the line.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Optional

from ..errors import GeometryError
from .detector import HC_EV_A, BadRegion, Geometry, Panel
from .geom_syntax import (  # noqa: F401  (parse_vector/parse_int/is_panel_key are public here too)
    DIM_RE, MASK0_ALIAS, REPEATABLE_KEYS, TOPLEVEL_TEXT_KEYS, is_number, is_panel_key, parse_bool, parse_int,
    parse_vector,
)
from .geom_writer import format_geom_text, write_geom  # noqa: F401  (public API lives here too)

log = logging.getLogger(__name__)


class _Raw:
    """Key/value text of one panel or bad region, with the line each key came from."""

    def __init__(self, name: str, line: int):
        self.name = name
        self.line = line
        self.items: dict = {}  # key -> (value text or list of texts, line)

    def set(self, key: str, value: str, line: int) -> None:
        if key in REPEATABLE_KEYS and key in self.items:
            old, _ = self.items[key]
            self.items[key] = ((old if isinstance(old, list) else [old]) + [value], line)
        else:
            self.items[key] = (value, line)


def read_geom(path) -> Geometry:
    """Read a CrystFEL geometry file.  GeometryError names the file and line on any problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise GeometryError(f"{path}: geometry file not found") from None
    except OSError as e:
        raise GeometryError(f"{path}: cannot read geometry file ({e.strerror or e})") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        if b"\0" in raw[:4096]:
            raise GeometryError(f"{path}: not a CrystFEL geometry file (binary data)") from None
        text = raw.decode("latin-1")
    geom = parse_geom_text(text, source=str(path))
    from .sanity import check_geometry_sanity

    check_geometry_sanity(geom, str(path))  # a user's file: physical values (clen > 0, no overlapping panels)
    return geom


def parse_geom_text(text: str, source: Optional[str] = None) -> Geometry:
    src = source or "<geometry text>"

    def err(line: int, msg: str) -> GeometryError:
        return GeometryError(f"{src}, line {line}: {msg}")

    defaults = _Raw("(defaults)", 0)
    globals_: dict = {}
    panels: dict = {}
    bads: dict = {}
    unknown: list = []
    rigid: dict = {}
    rigid_coll: dict = {}
    groups: dict = {}
    comments: list = []
    started = False
    unused_defaults: list = []  # top-level panel keys given after the last panel so far
    top = {"photon_energy": None, "clen": None, "bandwidth": None, "photon_energy_scale": None}

    for lineno, line_orig in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        line = line_orig.strip()
        content = line.split(";", 1)[0].strip()
        if not content:
            if not started and line:
                comments.append(line)
            continue
        started = True
        if "=" not in content:
            raise err(lineno, f"expected 'key = value', got {content!r}")
        key, value = (t.strip() for t in content.split("=", 1))
        if not key:
            raise err(lineno, f"missing key before '=' in {content!r}")
        if "/" in key:
            name, _, pkey = key.partition("/")
            name, pkey = name.strip(), pkey.strip()
            if not name or not pkey:
                raise err(lineno, f"invalid key {key!r} (expected 'panel/key')")
            if name.startswith("bad"):
                bads.setdefault(name, _Raw(name, lineno)).set(pkey, value, lineno)
                continue
            if name not in panels:
                p = _Raw(name, lineno)
                for k, (v, ln) in defaults.items.items():
                    p.items[k] = (list(v) if isinstance(v, list) else v, ln)
                panels[name] = p
                unused_defaults = []
            panels[name].set(pkey, value, lineno)
            continue
        # --- top-level
        if key in ("photon_energy", "wavelength"):
            top["photon_energy"] = (key, value, lineno)
        elif key == "clen":
            top["clen"] = (value, lineno)
        elif key in ("bandwidth", "photon_energy_bandwidth"):
            top["bandwidth"] = (value, lineno)
        elif key == "photon_energy_scale":
            top["photon_energy_scale"] = (value, lineno)
        elif key.startswith("rigid_group_collection"):
            rigid_coll[key[len("rigid_group_collection_"):]] = _name_list(value)
        elif key.startswith("rigid_group"):
            rigid[key[len("rigid_group_"):]] = _name_list(value)
        elif key.startswith("group_"):
            groups[key[len("group_"):]] = _name_list(value)
        elif key in TOPLEVEL_TEXT_KEYS:
            globals_["peak_list" if key == "peak_info_location" else key] = value
        elif is_panel_key(key):
            defaults.set(key, value, lineno)
            if panels:
                unused_defaults.append((key, value, lineno))
            else:
                globals_[MASK0_ALIAS.get(key, key)] = value
        else:
            unknown.append((key, value))

    if not panels:
        raise GeometryError(f"{src}: no panel definitions (lines like 'p0/min_fs = 0') found")
    for key, value, lineno in unused_defaults:
        if key in ("mask_good", "mask_bad", "mask", "mask_file"):
            # CrystFEL 0.9 applied these to the whole detector wherever they stood.
            for p in panels.values():
                p.items.setdefault(key, (value, lineno))
            globals_.setdefault(key, value)
        else:
            log.warning("%s, line %d: '%s' after the last panel applies to no panel (ignored, as CrystFEL does)",
                        src, lineno, key)

    geom_panels = [_make_panel(p, err) for p in panels.values()]
    geom = Geometry(panels=geom_panels, source=source, globals=globals_, rigid_groups=rigid,
                    rigid_group_collections=rigid_coll, unknown_lines=unknown, panel_groups=groups,
                    comments=comments)
    _apply_toplevel(geom, top, err)
    _fold_panel_clen(geom)
    geom.bad_regions = [_make_bad(b, geom, err) for b in bads.values()]
    _check_groups(geom, src)
    return geom


def _fold_panel_clen(geom: Geometry) -> None:
    """CrystFEL <= 0.11 per-panel ``clen`` -> one global clen + per-panel ``coffset`` (0.12's form).

    The distance of every panel (clen + coffset) is unchanged; after this, reading a file that
    :func:`write_geom` wrote gives back an equal Geometry.
    """
    paths = {p.clen_path for p in geom.panels if p.clen_path is not None}
    if geom.clen is None and geom.clen_path is None and len(paths) == 1 \
            and all(p.clen is None for p in geom.panels):
        geom.clen_path = paths.pop()
        for p in geom.panels:
            p.clen_path = None
        return
    if geom.clen_path is not None or paths:
        return  # mixed sources: kept as read (the writer reports it)
    numbers = [p.clen for p in geom.panels if p.clen is not None]
    if not numbers:
        return
    if geom.clen is None:
        geom.clen = numbers[0]
    for p in geom.panels:
        if p.clen is not None:
            if p.clen != geom.clen:
                p.coffset = p.clen + p.coffset - geom.clen
            p.clen = None


def _name_list(value: str) -> list:
    return [t.strip() for t in value.split(",") if t.strip()]


def _apply_toplevel(geom: Geometry, top: dict, err) -> None:
    if top["photon_energy"] is not None:
        key, value, ln = top["photon_energy"]
        parts = value.split()
        if key == "photon_energy":
            scale = {"eV": 1.0, "keV": 1000.0}
            if len(parts) == 2 and parts[1] in scale and is_number(parts[0]):
                geom.photon_energy_ev = float(parts[0]) * scale[parts[1]]
            elif len(parts) == 1 and is_number(parts[0]):
                geom.photon_energy_ev = float(parts[0])
            elif len(parts) == 1 or (len(parts) == 2 and parts[1] in ("eV", "keV") and parts[0].startswith("/")):
                geom.photon_energy_path = value.strip()  # "/path" or "/path eV" (see split_path_unit)
            else:
                raise err(ln, f"invalid photon_energy {value!r} (a number in eV, 'N keV', or a data-file path)")
            if geom.photon_energy_ev is not None and not geom.photon_energy_ev > 0:
                raise err(ln, f"photon_energy must be positive, got {value!r}")
        else:  # wavelength = N A | N m
            unit = {"A": 1.0, "m": 1e10}
            if len(parts) == 2 and parts[1] in unit and is_number(parts[0]) and float(parts[0]) > 0:
                geom.photon_energy_ev = HC_EV_A / (float(parts[0]) * unit[parts[1]])
            elif len(parts) == 2 and parts[1] in unit:
                geom.globals["wavelength"] = value
            else:
                raise err(ln, f"invalid wavelength {value!r} (needs a unit: 'N A' or 'N m')")
    if top["photon_energy_scale"] is not None:
        value, ln = top["photon_energy_scale"]
        try:
            geom.photon_energy_scale = float(value)
        except ValueError:
            raise err(ln, f"invalid photon_energy_scale {value!r}") from None
    if top["clen"] is not None:
        value, ln = top["clen"]
        if is_number(value):
            geom.clen = float(value)
        elif value.startswith("/") and (len(value.split()) == 1
                                        or (len(value.split()) == 2 and value.split()[1] in ("m", "mm"))):
            geom.clen_path = value.strip()  # "/path" (CrystFEL: mm) or "/path m" (see split_path_unit)
        else:
            raise err(ln, f"invalid clen {value!r} (metres, or an HDF5 path such as /LCLS/detector_1/EncoderValue)")
    if top["bandwidth"] is not None:
        value, ln = top["bandwidth"]
        try:
            geom.bandwidth = float(value)
        except ValueError:
            raise err(ln, f"invalid bandwidth {value!r}") from None


def _make_panel(raw: _Raw, err) -> Panel:
    it = raw.items
    p = Panel(name=raw.name, min_fs=-1, max_fs=-1, min_ss=-1, max_ss=-1)
    p.res = None  # type: ignore[assignment]
    dims: dict = {}
    for key, (value, ln) in it.items():
        try:
            if key in ("min_fs", "max_fs", "min_ss", "max_ss"):
                setattr(p, key, parse_int(value))
                if getattr(p, key) < 0:
                    raise ValueError("must not be negative")
            elif key in ("corner_x", "corner_y", "coffset", "max_adu"):
                v = float(value)
                if not math.isfinite(v) and key != "max_adu":
                    raise ValueError("not finite")
                setattr(p, key, v)
            elif key in ("fs", "ss"):
                setattr(p, key, parse_vector(value))
            elif key == "res":
                p.res = float(value)
                if not p.res > 0:
                    raise ValueError("must be positive (pixels per metre)")
            elif key == "clen":
                if is_number(value):
                    p.clen = float(value)
                else:
                    p.clen_path = value
            elif key == "adu_per_photon":
                p.adu_per_photon, p.adu_per_ev = float(value), None
            elif key == "adu_per_eV":
                p.adu_per_ev, p.adu_per_photon = float(value), None
            elif key in ("data", "mask", "mask_file") or (key == "mask0_data" or key == "mask0_file"):
                attr = {"mask0_data": "mask", "mask0_file": "mask_file"}.get(key, key)
                setattr(p, attr, value)
            elif key in ("mask_good", "mask_bad", "mask0_goodbits", "mask0_badbits"):
                attr = "mask_good" if "good" in key else "mask_bad"
                setattr(p, attr, parse_int(value))
            elif key == "no_index":
                p.no_index = parse_bool(value)
            elif DIM_RE.match(key):
                v = value.strip()
                if v not in ("fs", "ss", "%") and not v.isdigit():
                    raise ValueError("must be fs, ss, % or a fixed index")
                dims[int(key[3:])] = v
            else:
                p.extra[key] = value
        except ValueError as e:
            raise err(ln, f"panel {raw.name}: invalid {key} = {value!r} ({e})") from None
    for key in ("min_fs", "max_fs", "min_ss", "max_ss"):
        if getattr(p, key) < 0:
            raise err(raw.line, f"panel {raw.name} has no {key}")
    for key in ("corner_x", "corner_y"):
        if key not in it:
            raise err(raw.line, f"panel {raw.name} has no {key}")
    if p.res is None:
        raise err(raw.line, f"panel {raw.name} has no pixel size ('res', pixels per metre)")
    if p.max_fs < p.min_fs or p.max_ss < p.min_ss:
        raise err(raw.line, f"panel {raw.name}: max_fs/max_ss smaller than min_fs/min_ss")
    if abs(p.fs[0] * p.ss[1] - p.fs[1] * p.ss[0]) < 1e-9:
        ln = it.get("ss", it.get("fs", (None, raw.line)))[1]
        raise err(ln, f"panel {raw.name}: fs and ss directions are parallel in the detector plane")
    if dims:
        n = max(dims) + 1
        base = ["ss", "fs"] + [None] * max(0, n - 2)
        for i, v in dims.items():
            base[i] = v
        if "fs" not in base or "ss" not in base or base.index("ss") > base.index("fs"):
            raise err(raw.line, f"panel {raw.name}: dim lines must name ss before fs, got {base}")
        p.dims = base
    return p


def _make_bad(raw: _Raw, geom: Geometry, err) -> BadRegion:
    b = BadRegion(name=raw.name)
    kinds = set()
    for key, (value, ln) in raw.items.items():
        try:
            if key in ("min_x", "max_x", "min_y", "max_y"):
                setattr(b, key, float(value))
                kinds.add("xy")
            elif key in ("min_fs", "max_fs", "min_ss", "max_ss"):
                setattr(b, key, parse_int(value))
                kinds.add("fsss")
            elif key == "panel":
                b.panel = value
            else:
                b.extra[key] = value
        except ValueError as e:
            raise err(ln, f"bad region {raw.name}: invalid {key} = {value!r} ({e})") from None
    if len(kinds) == 2:
        raise err(raw.line, f"bad region {raw.name} mixes x/y and fs/ss limits")
    if not kinds:
        raise err(raw.line, f"bad region {raw.name} has no coordinate limits")
    need = ("min_x", "max_x", "min_y", "max_y") if "xy" in kinds else ("min_fs", "max_fs", "min_ss", "max_ss")
    missing = [k for k in need if getattr(b, k) is None]
    if missing:
        raise err(raw.line, f"bad region {raw.name} has no {', '.join(missing)}")
    if "fsss" in kinds:
        if b.panel is None:
            if len(geom.panels) != 1:
                raise err(raw.line, f"bad region {raw.name} uses fs/ss but names no panel")
            b.panel = geom.panels[0].name
        names = [p.name for p in geom.panels]
        if b.panel not in names:
            ln = raw.items.get("panel", (None, raw.line))[1]
            raise err(ln, f"bad region {raw.name} names unknown panel {b.panel!r}")
        p = geom.panels[names.index(b.panel)]
        if b.min_fs < p.min_fs or b.max_fs > p.max_fs or b.min_ss < p.min_ss or b.max_ss > p.max_ss:
            raise err(raw.line, f"bad region {raw.name} (fs {b.min_fs}-{b.max_fs}, ss {b.min_ss}-{b.max_ss}) "
                                f"is outside panel {p.name} (fs {p.min_fs}-{p.max_fs}, ss {p.min_ss}-{p.max_ss})")
    return b


def _check_groups(geom: Geometry, src: str) -> None:
    names = {p.name for p in geom.panels}
    for gname, members in geom.rigid_groups.items():
        for m in members:
            if m not in names:
                raise GeometryError(f"{src}: rigid_group_{gname} names unknown panel {m!r}")
    for cname, members in geom.rigid_group_collections.items():
        for m in members:
            if m not in geom.rigid_groups:
                raise GeometryError(f"{src}: rigid_group_collection_{cname} names unknown rigid group {m!r}")
