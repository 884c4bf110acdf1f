"""Geometry files the exporters write: ``peaks.geom`` for ``hits.cxi`` and the mask lines of
``mask.geom``.

CrystFEL's mask semantics (``image-hdf5.c``, ``crystfel_geometry(5)``): a pixel is bad if
``(value & goodbits) != goodbits`` or if ``value & badbits`` is non-zero.  Every mask this
program writes holds **1 = bad, 0 = good** and is declared with ``goodbits = 0x0`` (no bit is
required) and ``badbits = 0x1``.  Masks are numbered 0-7 (``mask``/``mask_file``/``mask_good``/
``mask_bad`` are the old names of mask 0); the exporters put theirs in the first free slot,
or replace the masks that point into the original data files, which the exported files
do not contain.  CrystFEL 0.12 wants these panel-level defaults before the first panel:
:func:`peaknet_gui.geometry.geom_writer.format_geom_text` writes them there.
"""

from __future__ import annotations

import re
from typing import Optional

from ..errors import ExportError
from ..geometry.detector import Geometry

MASK_GOOD_BITS = 0x0
MASK_BAD_BITS = 0x1
MAX_MASKS = 8

CXI_DATA = "/entry_1/data_1/data"
CXI_MASK = "/entry_1/data_1/mask"
CXI_PEAKS = "/entry_1/result_1"
CXI_PHOTON_ENERGY_EV = "/entry_1/instrument_1/source_1/photon_energy_eV"
CXI_DISTANCE = "/entry_1/instrument_1/detector_1/distance"

_SLOT0 = {"data": "mask", "file": "mask_file", "goodbits": "mask_good", "badbits": "mask_bad"}
_MASKN = re.compile(r"mask(\d+)_(data|file|goodbits|badbits)$")
_DIM = re.compile(r"dim\d+$")


def _key(slot: int, part: str) -> str:
    return _SLOT0[part] if slot == 0 else f"mask{slot}_{part}"


def _panel_get(p, slot: int, part: str):
    if slot == 0:
        return getattr(p, _SLOT0[part])
    return p.extra.get(_key(slot, part))


def _panel_clear(p, slot: int) -> None:
    for part in ("data", "file", "goodbits", "badbits"):
        if slot == 0:
            setattr(p, _SLOT0[part], None)
        else:
            p.extra.pop(_key(slot, part), None)


def _global_slots(geom: Geometry) -> set:
    slots = set()
    for k in geom.globals:
        if k == "mask":
            slots.add(0)
        m = _MASKN.match(k)
        if m and m.group(2) == "data":
            slots.add(int(m.group(1)))
    return slots


def mask_slots_in_use(geom: Geometry) -> set:
    """Mask numbers (0-7) that the geometry uses for any panel."""
    used = _global_slots(geom)
    for p in geom.panels:
        for slot in range(MAX_MASKS):
            if _panel_get(p, slot, "data") is not None:
                used.add(slot)
    return used


def without_data_file_masks(geom: Geometry) -> Geometry:
    """A copy without the masks that CrystFEL reads from the image data file itself (no
    ``maskN_file``): those datasets exist only in the original files.  Masks in separate files
    are kept."""
    g = geom.copy()
    for slot in range(MAX_MASKS):
        in_globals = _key(slot, "data") in g.globals
        if in_globals and _key(slot, "file") not in g.globals:
            for part in ("data", "file", "goodbits", "badbits"):
                g.globals.pop(_key(slot, part), None)
        for p in g.panels:
            if _panel_get(p, slot, "data") is not None and _panel_get(p, slot, "file") is None:
                _panel_clear(p, slot)
    return g


def with_mask(geom: Geometry, dataset: str, mask_file: Optional[str] = None, *, slot: Optional[int] = None,
              good_bits: int = MASK_GOOD_BITS, bad_bits: int = MASK_BAD_BITS) -> tuple:
    """A copy of ``geom`` with one more mask for every panel: ``dataset`` in ``mask_file`` (None:
    in the image data file), polarity ``goodbits``/``badbits``.  Returns (geometry, slot)."""
    g = geom.copy()
    if slot is None:
        free = [s for s in range(MAX_MASKS) if s not in mask_slots_in_use(g)]
        if not free:
            raise ExportError(f"{geom.source or 'geometry'}: all {MAX_MASKS} CrystFEL mask slots are in use")
        slot = free[0]
    for p in g.panels:
        _panel_clear(p, slot)
    for part in ("data", "file", "goodbits", "badbits"):
        g.globals.pop(_key(slot, part), None)
    g.globals[_key(slot, "data")] = dataset
    if mask_file is not None:
        g.globals[_key(slot, "file")] = mask_file
    g.globals[_key(slot, "goodbits")] = f"0x{good_bits:x}"
    g.globals[_key(slot, "badbits")] = f"0x{bad_bits:x}"
    return g, slot


def mask_geom_lines(dataset: str, mask_file: Optional[str] = None, slot: int = 0) -> list:
    """The ``.geom`` lines declaring one of our masks (for documentation and the GUI)."""
    lines = [f"{_key(slot, 'data')} = {dataset}"]
    if mask_file is not None:
        lines.append(f"{_key(slot, 'file')} = {mask_file}")
    lines += [f"{_key(slot, 'goodbits')} = 0x{MASK_GOOD_BITS:x}", f"{_key(slot, 'badbits')} = 0x{MASK_BAD_BITS:x}"]
    return lines


def _is_number(text) -> bool:
    try:
        float(str(text).split()[0])
        return True
    except (ValueError, IndexError):
        return False


def cxi_geometry(geom: Geometry, *, photon_energy_ev: Optional[float] = None, photon_energy_path: Optional[str] = None,
                 clen: Optional[float] = None, clen_path: Optional[str] = None, with_mask_dataset: bool = True) -> Geometry:
    """The geometry of ``hits.cxi``: ``geom``'s panels and positions with

    * ``data = /entry_1/data_1/data``, ``dim0 = %``, ``dim1 = ss``, ``dim2 = fs`` for every panel,
    * ``peak_list = /entry_1/result_1``, ``peak_list_type = cxi``,
    * the per-frame mask ``/entry_1/data_1/mask`` (1 = bad) replacing masks read from the
      original data files (masks in separate files are kept),
    * the photon energy and camera length as numbers, or as paths of the per-frame datasets
      (``clen`` paths carry the unit ``m``: CrystFEL reads unit-less ``clen`` values as mm).
    """
    g = without_data_file_masks(geom)
    for p in g.panels:
        p.data = None
        p.dims = None
        if "saturation_map" in p.extra and "saturation_map_file" not in p.extra:
            p.extra.pop("saturation_map")
    kept = {}
    for k, v in g.globals.items():
        if k == "data" or _DIM.match(k) or k in ("photon_energy", "clen", "wavelength", "photon_energy_scale",
                                                  "peak_list", "peak_list_type", "peak_info_location"):
            continue
        if k in ("detector_shift_x", "detector_shift_y") and not _is_number(v):
            continue
        if k == "saturation_map" and "saturation_map_file" not in g.globals:
            continue
        kept[k] = v
    g.globals = {"peak_list": CXI_PEAKS, "peak_list_type": "cxi", "data": CXI_DATA, "dim0": "%", "dim1": "ss",
                 "dim2": "fs", **kept}
    if with_mask_dataset:
        g, _ = with_mask(g, CXI_MASK, None)
    g.photon_energy_scale = None
    if photon_energy_ev is not None:
        g.photon_energy_ev, g.photon_energy_path = float(photon_energy_ev), None
    elif photon_energy_path is not None:
        g.photon_energy_ev, g.photon_energy_path = None, photon_energy_path
    elif g.photon_energy_path is not None:  # a path into the original files means nothing here
        g.photon_energy_path = None
    if clen is not None:
        g.clen, g.clen_path = float(clen), None
        for p in g.panels:
            p.clen_path = None
    elif clen_path is not None:
        g.clen, g.clen_path = None, clen_path
        for p in g.panels:
            p.clen, p.clen_path = None, None
    return g


def run_cxi_geometry(geom: Geometry, energies, clens, *, cxi_name: str = "hits.cxi", lst_name: str = "hits.lst",
                     geom_name: str = "peaks.geom") -> Geometry:
    """:func:`cxi_geometry` for the frames written to a CXI file, whose photon energies (eV)
    and camera lengths (m) are ``energies`` / ``clens`` (NaN: unknown).

    The geometry's own number wins (as in CrystFEL); values it read per frame from the original
    files become one number when every frame shares it, else the path of the per-frame dataset.
    """
    import logging

    import numpy as np

    from ..export.frame_values import geometry_reads_clen_from_file

    kw: dict = {}
    notes: list = []
    energies = np.asarray(energies, dtype=np.float64)
    if not (geom.photon_energy_ev is not None and geom.photon_energy_path is None):
        if len(energies) and np.all(np.isfinite(energies)):
            if np.ptp(energies) <= 1e-6 * energies[0]:
                kw["photon_energy_ev"] = float(energies[0])
            else:
                kw["photon_energy_path"] = CXI_PHOTON_ENERGY_EV
        elif len(energies) == 0:
            kw["photon_energy_path"] = CXI_PHOTON_ENERGY_EV
        else:
            notes.append("; photon energy unknown for some frames: add 'photon_energy = <eV>' before indexing")
            logging.getLogger(__name__).warning("%s: photon energy unknown for some frames; no photon_energy line",
                                                geom_name)
    if geometry_reads_clen_from_file(geom):
        clens = np.asarray(clens, dtype=np.float64)
        if len(clens) and np.all(np.isfinite(clens)) and np.ptp(clens) <= 1e-9:
            kw["clen"] = float(clens[0])
        else:  # CrystFEL reads unit-less clen values from files as mm: say metres
            kw["clen_path"] = f"{CXI_DISTANCE} m"
            if len(clens) and not np.all(np.isfinite(clens)):
                notes.append(f"; camera length unknown for some frames (NaN in {CXI_DISTANCE})")
    g = cxi_geometry(geom, **kw)
    g.comments = list(g.comments) + [
        f"; written by peaknet_gui for {cxi_name}: cd to this directory and run",
        f";   indexamajig -i {lst_name} -g {geom_name} --peaks=cxi --indexing=xgandalf -p CELL -o indexed.stream",
        "; mask: 1 = bad pixel (goodbits 0x0, badbits 0x1); peak lists: raw pixel indices (CrystFEL adds 0.5)",
    ] + notes
    return g
