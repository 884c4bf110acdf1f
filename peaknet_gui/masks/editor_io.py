"""Saving and loading the mask editor's static mask (Qt-free; the GUI calls these in its worker).

Two formats, chosen by the file name:

* ``NAME.h5`` -- a CrystFEL mask: ``/mask`` (uint16, **1 = bad, 0 = good**, attributes
  ``polarity = bad_nonzero``, ``mask_good = 0``, ``mask_bad = 1``; see
  :mod:`peaknet_gui.export.mask_h5`) plus ``NAME.geom`` beside it: the run's geometry with the
  lines that make CrystFEL apply it::

      mask_file = /abs/path/NAME.h5
      mask = /mask
      mask_good = 0x0
      mask_bad = 0x1

  (the first free mask slot: ``mask1_data``/``mask1_file``/... when the geometry already uses
  mask 0).  Both files are written as one transaction (both or neither).  Without a geometry the
  ``.geom`` holds a placeholder single panel (or only the mask lines, as comments explain).
* ``NAME.npy`` -- the bool array as uint8, **1 = bad** (pyFAI's convention); written atomically.

Both are read back by :func:`load_user_mask` and by ``peaknet find --mask FILE``
(:mod:`peaknet_gui.masks.static`; an ``.npy`` mask that covers more than half of the detector
needs ``--mask-polarity bad_nonzero``, because without attributes the minority value is taken as bad).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ExportError

FORMATS = (".h5", ".npy")
DESCRIPTION = "static mask drawn in peaknet-gui's mask editor; 1 = bad, 0 = good; CrystFEL: mask_good = 0x0, mask_bad = 0x1"


@dataclass
class SavedMask:
    path: Path
    geom_path: Optional[Path]
    n_masked: int
    geom_lines: list = field(default_factory=list)  # the .geom lines that apply the mask

    def text(self) -> str:
        if self.geom_path is None:
            return (f"{self.path}: {self.n_masked:,} masked pixels (uint8, 1 = bad).\n"
                    f"Use it with: peaknet find --mask {self.path} --mask-polarity bad_nonzero")
        return (f"{self.path}: {self.n_masked:,} masked pixels (1 = bad, 0 = good)\n{self.geom_path}: the geometry with\n  "
                + "\n  ".join(self.geom_lines) + f"\nUse it with: peaknet find --mask {self.path}  or  indexamajig -g {self.geom_path}")


def _mask_lines_only(path: Path, lines: list) -> str:
    return "\n".join(["; mask lines written by peaknet_gui's mask editor: the run had no detector geometry.",
                      "; Add these lines to your geometry file, before the first panel:",
                      "; 1 = bad pixel, 0 = good (mask_good = 0x0: no good bit needed; mask_bad = 0x1)", *lines, ""])


def save_user_mask(path, mask: np.ndarray, geometry=None, frame=None) -> SavedMask:
    """Write ``mask`` (bool, True = bad) to ``path`` (``.h5`` with a ``.geom`` beside it, or ``.npy``).

    ``geometry`` is the run's (its panels and positions are copied into the ``.geom``); without
    one a placeholder geometry of ``frame`` is written, else only the mask lines.  Raises
    :class:`ExportError` naming the file on any problem.
    """
    from ..export.atomic import atomic_write

    path = Path(os.path.abspath(os.fspath(path)))
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ExportError(f"{path}: a mask must be 2-D (ss, fs), not of shape {mask.shape}")
    suffix = path.suffix.lower()
    if suffix not in (".h5", ".hdf5", ".npy"):
        raise ExportError(f"{path}: save the mask as .h5 (CrystFEL) or .npy")
    n = int(np.count_nonzero(mask))
    if suffix == ".npy":
        try:
            with atomic_write(path, "wb") as fh:
                np.save(fh, mask.astype(np.uint8), allow_pickle=False)
        except OSError as e:
            raise ExportError(f"{path}: cannot write the mask ({e})") from e
        return SavedMask(path, None, n)

    from ..export.fileset import FileSetTransaction
    from ..export.frame_values import placeholder_geometry
    from ..export.geom_export import mask_geom_lines
    from ..export.mask_h5 import MASK_DATASET, mask_geometry, write_mask_h5
    from ..geometry.geom_writer import write_geom

    geom_path = path.with_suffix(".geom")
    txn = FileSetTransaction(path, [geom_path])  # both files or neither
    txn.begin()
    try:
        txn.ensure_space(3 * mask.size, path)
        write_mask_h5(txn.staged(path), mask, description=DESCRIPTION)
        geom = geometry if geometry is not None else (placeholder_geometry(frame) if frame is not None else None)
        if geom is not None:
            g, slot = mask_geometry(geom, str(path), MASK_DATASET)
            lines = mask_geom_lines(MASK_DATASET, str(path), slot)
            write_geom(g, txn.staged(geom_path))
        else:
            lines = mask_geom_lines(MASK_DATASET, str(path), 0)
            try:
                Path(txn.staged(geom_path)).write_text(_mask_lines_only(path, lines), encoding="utf-8")
            except OSError as e:
                raise ExportError(f"{geom_path}: cannot write ({e})") from e
    except BaseException:
        txn.abort()
        raise
    txn.commit()
    return SavedMask(path, geom_path, n, lines)


def load_user_mask(path, shape: tuple, polarity: str = "auto", dataset: Optional[str] = None) -> np.ndarray:
    """A mask file (HDF5/CXI, ``.npy``, EDF/TIFF/CBF) as bool, True = bad, checked against ``shape``.

    ``polarity`` as in :func:`peaknet_gui.masks.static.read_mask_file`; raises :class:`InputError`
    naming the file."""
    from .static import read_mask_file

    return read_mask_file(path, dataset=dataset, polarity=polarity, shape=tuple(shape[-2:]))
