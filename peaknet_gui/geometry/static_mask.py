"""Bad pixels a geometry declares: ``bad_*`` regions, ``no_index`` panels, mask datasets.

Semantics are CrystFEL 0.12's (``libcrystfel/src/image.c``):

* ``no_index = 1``: the whole panel is bad.
* fs/ss bad regions: inclusive data-array ranges of the named panel.
* x/y bad regions: a pixel is bad when the lab position of its *corner* ``(fs, ss)`` --
  ``x = corner_x + fs*fs_x + ss*ss_x`` in pixels, ``fs``/``ss`` counted from the panel's first pixel --
  lies strictly inside ``min_x < x < max_x`` and ``min_y < y < max_y`` (CrystFEL tests exactly this).
* mask datasets (``mask``/``mask0_data`` ... ``mask7_data``, in ``mask_file`` or, without it, in the
  data file itself): a pixel is bad when ``(value & mask_good) != mask_good`` or
  ``value & mask_bad != 0``.
* pixels of the data array that no panel covers are bad too (CrystFEL never looks at them).

True means bad.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import GeometryError
from .detector import Geometry, Panel
from .geom_syntax import MASKN_RE, parse_int



@dataclass
class MaskSpec:
    """One CrystFEL mask of a panel."""

    data: str  # dataset path inside the file
    file: Optional[str]  # None: the image data file itself
    good: int = 0
    bad: int = 0


def _to_int(v) -> int:
    if v is None:
        return 0
    if isinstance(v, (int, np.integer)):
        return int(v)
    return parse_int(str(v))


def panel_masks(geom: Geometry, panel: Panel) -> list:
    """The masks that apply to ``panel`` (mask 0 from ``mask``/``mask_file``/``mask_good``/``mask_bad``)."""
    slots: dict = {}
    slot0 = {"data": geom.panel_setting(panel, "mask"), "file": geom.panel_setting(panel, "mask_file"),
             "good": geom.panel_setting(panel, "mask_good"), "bad": geom.panel_setting(panel, "mask_bad")}
    if slot0["data"] is not None or slot0["file"] is not None:
        slots[0] = slot0
    for source in (geom.globals, panel.extra):
        for key, value in source.items():
            m = MASKN_RE.match(key)
            if m is None:
                continue
            slot = slots.setdefault(int(m.group(1)), {})
            slot[{"goodbits": "good", "badbits": "bad"}.get(m.group(2), m.group(2))] = value
    out = []
    for n in sorted(slots):
        s = slots[n]
        if s.get("data") is None:
            # mask bits alone (old files often carry mask_bad = 0xffff without a mask) mean nothing
            if s.get("file") is not None:
                raise GeometryError(f"{geom.source or 'geometry'}: panel {panel.name}: mask file {s['file']} "
                                    "given but no mask dataset (mask = /path)")
            continue
        out.append(MaskSpec(data=str(s["data"]), file=s.get("file"), good=_to_int(s.get("good")),
                            bad=_to_int(s.get("bad"))))
    return out


def _resolve(geom: Geometry, fname: str) -> Path:
    p = Path(fname)
    if p.is_absolute() or p.exists() or geom.source is None:
        return p
    beside = Path(os.path.dirname(os.path.abspath(geom.source))) / p
    return beside if beside.exists() else p


def _load_mask_array(geom: Geometry, path: Path, dataset: str, event: Optional[int]) -> np.ndarray:
    where = f"{geom.source or 'geometry'}: mask {path}"
    if not path.exists():
        raise GeometryError(f"{where}: file not found")
    name = path.name.lower()
    if name.endswith((".cbf", ".cbf.gz", ".cbf.bz2", ".edf", ".tif", ".tiff")):
        try:
            import fabio

            return np.asarray(fabio.open(str(path)).data)
        except Exception as e:  # fabio raises many types for bad files
            raise GeometryError(f"{where}: cannot read ({e})") from e
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if dataset not in f:
                raise GeometryError(f"{where}: no dataset {dataset}")
            ds = f[dataset]
            if not isinstance(ds, h5py.Dataset):
                raise GeometryError(f"{where}: {dataset} is not a dataset")
            if ds.ndim == 2:
                return ds[()]
            if ds.ndim == 3:
                if event is None:
                    if ds.shape[0] == 1:
                        return ds[0]
                    raise GeometryError(f"{where}: {dataset} holds one mask per frame {ds.shape}; "
                                        "a frame index is needed")
                if not 0 <= event < ds.shape[0]:
                    raise GeometryError(f"{where}: frame {event} out of range for {dataset} {ds.shape}")
                return ds[event]
            raise GeometryError(f"{where}: {dataset} has shape {ds.shape}, expected 2-D (ss, fs)")
    except GeometryError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise GeometryError(f"{where}: cannot read ({e})") from e


def geometry_bad_mask(
    geom: Geometry,
    shape: tuple,
    *,
    data_file=None,
    event: Optional[int] = None,
    include_masks: bool = True,
) -> np.ndarray:
    """Boolean (ss, fs) array of ``shape``: True where the geometry says the pixel is bad.

    ``data_file``/``event`` are used for masks that live in the image file itself (no
    ``mask_file``); without ``data_file`` such masks are skipped (the run source applies them
    per frame).  ``include_masks=False`` skips all mask datasets.
    """
    shape = tuple(int(s) for s in shape[-2:])
    geom.check_data_shape(shape)
    bad = np.ones(shape, dtype=bool)
    for p in geom.panels:
        bad[p.slices()] = bool(p.no_index)
    cache: dict = {}
    for p in geom.panels:
        if p.no_index or not include_masks:
            continue
        for spec in panel_masks(geom, p):
            if spec.file is None:
                if data_file is None:
                    continue
                path = Path(data_file)
            else:
                path = _resolve(geom, spec.file)
            key = (str(path), spec.data)
            if key not in cache:
                cache[key] = _load_mask_array(geom, path, spec.data, event)
            m = cache[key]
            if m.shape[0] <= p.max_ss or m.shape[1] <= p.max_fs:
                raise GeometryError(f"{geom.source or 'geometry'}: mask {path}:{spec.data} has shape {m.shape}, "
                                    f"too small for panel {p.name} (needs {p.max_ss + 1}x{p.max_fs + 1})")
            vals = np.asarray(m[p.slices()]).astype(np.int64)
            bad[p.slices()] |= ((vals & spec.good) != spec.good) | ((vals & spec.bad) != 0)
    names = {p.name: p for p in geom.panels}
    for region in geom.bad_regions:
        if region.is_xy:
            for p in geom.panels:
                ss, fs = np.mgrid[0 : p.height, 0 : p.width]
                x = fs * p.fs[0] + ss * p.ss[0] + p.corner_x
                y = fs * p.fs[1] + ss * p.ss[1] + p.corner_y
                hit = (x > region.min_x) & (x < region.max_x) & (y > region.min_y) & (y < region.max_y)
                bad[p.slices()] |= hit
        else:
            p = names.get(region.panel) if region.panel else (geom.panels[0] if len(geom.panels) == 1 else None)
            if p is None:
                raise GeometryError(f"{geom.source or 'geometry'}: bad region {region.name} names unknown panel "
                                    f"{region.panel!r}")
            if region.min_fs < p.min_fs or region.max_fs > p.max_fs or region.min_ss < p.min_ss \
                    or region.max_ss > p.max_ss:
                raise GeometryError(f"{geom.source or 'geometry'}: bad region {region.name} is outside panel {p.name}")
            bad[region.min_ss : region.max_ss + 1, region.min_fs : region.max_fs + 1] = True
    return bad
