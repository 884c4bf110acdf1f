"""Turn raw pixel arrays read from a file into :class:`~peaknet_gui.frame.Frame` objects.

One place decides the pixel conventions every source shares:

* ``Frame.data`` is always a 2-D float32 array (integers converted);
* ``Frame.bad`` is a bool array, ``True`` where a pixel is unusable: NaN/inf (set to 0 in
  ``data``), values the detector uses as markers (Pilatus module gaps ``-1`` and bad pixels
  ``-2``: any negative value of a Pilatus/CBF frame; Eiger's saturation marker ``2**bits - 1``;
  values above a header ``Count_cutoff``), and the detector's own pixel mask;
* a frame whose pixels are all NaN/inf raises :class:`InputError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InputError
from ..frame import EventId, Frame, FrameMetadata

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PixelRules:
    """How a source's raw values mark bad pixels (besides NaN/inf, always bad)."""

    negative_is_bad: bool = False  # Pilatus/CBF: -1 module gaps, -2 bad pixels
    marker_value: Optional[float] = None  # e.g. Eiger 2**bit_depth - 1 for masked/saturated pixels
    max_valid: Optional[float] = None  # values above this are bad (Pilatus Count_cutoff)


def make_frame(
    raw,
    event: EventId,
    serial: int,
    metadata: Optional[FrameMetadata] = None,
    *,
    rules: PixelRules = PixelRules(),
    static_bad: Optional[np.ndarray] = None,
    where: Optional[str] = None,
) -> Frame:
    """A float32 frame with its bad-pixel map from the raw 2-D array ``raw``.

    ``static_bad`` (bool, same shape) is the detector's pixel mask, OR-ed into ``bad``.
    ``where`` names the file/frame in error messages (default: the event's lst line).
    """
    where = where or event.lst_line()
    arr = np.asarray(raw)
    if arr.ndim != 2:
        raise InputError(f"{where}: a frame must be a 2-D image, got shape {arr.shape}")
    if arr.dtype.kind not in "iufb":
        raise InputError(f"{where}: pixel values are of non-numeric type {arr.dtype}")
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        all_finite = bool(finite.all())
        bad = np.zeros(arr.shape, bool) if all_finite else ~finite
        data = arr.astype(np.float32, copy=True)
        if not all_finite:
            n = int(bad.sum())
            if n == arr.size:
                raise InputError(f"{where}: every pixel of the frame is NaN or infinite")
            log.info("%s: %d NaN/inf pixels set to 0 and flagged bad", where, n)
            data[bad] = 0.0
    else:
        data = arr.astype(np.float32)
        bad = np.zeros(arr.shape, bool)
    if rules.negative_is_bad and arr.dtype.kind in "if":
        bad |= data < 0
    if rules.marker_value is not None:
        bad |= arr == rules.marker_value
    if rules.max_valid is not None:
        bad |= data > rules.max_valid
    if static_bad is not None:
        if static_bad.shape != arr.shape:
            raise InputError(f"{where}: the detector pixel mask is {static_bad.shape}, the frame is {arr.shape}")
        bad |= static_bad
    if rules.negative_is_bad or rules.marker_value is not None or rules.max_valid is not None or static_bad is not None:
        data[bad] = 0.0
    return Frame(data=data, event=event, serial=serial, metadata=metadata or FrameMetadata(), bad=bad)
