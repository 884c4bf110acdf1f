"""A Karabo bridge train -> one image message per pulse.

The detector source's ``image.data`` comes in one of two axis orders (karabo-bridge documents
both): *online* ``(modules, fs, ss, pulses)`` -- the calibration pipeline's -- and *file*
``(pulses, modules, ss, fs)``; without the module axis for a single module.  The order is told
by the number of pulses (``image.pulseId`` / ``image.cellId``).  A pulse's frame is the modules
stacked along the slow-scan axis, ``(modules * ss, fs)``: the slab layout of EXtra-geom's
CrystFEL geometries.  Events: one per pulse; train id, pulse id and cell id go to the metadata.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..live.messages import ImageMessage
from ..live.receiver import StreamProtocolError

IMAGE_KEYS = ("image.data", "data.adc", "data.image.data")


def detector_sources(data: dict) -> list:
    """Sources of a train that carry detector images, in name order."""
    return sorted(s for s, d in data.items() if isinstance(d, dict) and any(
        isinstance(d.get(k), np.ndarray) and d[k].ndim >= 2 for k in IMAGE_KEYS))


def _image(d: dict):
    for k in IMAGE_KEYS:
        v = d.get(k)
        if isinstance(v, np.ndarray) and v.ndim >= 2:
            return k, v
    return None, None


def _ids(d: dict, name: str, n: int) -> Optional[np.ndarray]:
    v = d.get(f"image.{name}")
    if v is None:
        return None
    a = np.asarray(v).reshape(-1)
    return a if len(a) == n else None


def pulses_first(arr: np.ndarray, n_pulses: Optional[int], where: str) -> np.ndarray:
    """``arr`` as (pulses, modules, ss, fs)."""
    if arr.ndim == 2:
        return arr[None, None]
    if arr.ndim == 3:  # one module: online (fs, ss, pulses) or file (pulses, ss, fs)
        if n_pulses is not None and arr.shape[-1] == n_pulses and arr.shape[0] != n_pulses:
            return arr.transpose(2, 1, 0)[:, None]
        return arr[:, None]
    if arr.ndim == 4:
        if n_pulses is not None and arr.shape[-1] == n_pulses and arr.shape[0] != n_pulses:
            return arr.transpose(3, 0, 2, 1)
        return arr
    raise StreamProtocolError(f"{where}: image data of shape {arr.shape} (2-4 axes expected)")


def train_messages(data: dict, meta: dict, source: Optional[str], where: str) -> tuple:
    """(source used, [ImageMessage per pulse]) of one train."""
    names = detector_sources(data)
    if source is None:
        if not names:
            raise StreamProtocolError(f"{where}: no detector images in the train (sources: {', '.join(sorted(data)) or 'none'})")
        source = names[0]
    d = data.get(source)
    if not isinstance(d, dict):
        raise StreamProtocolError(f"{where}: source {source!r} not in the train (sources with images: "
                                  f"{', '.join(names) or 'none'})")
    key, arr = _image(d)
    if arr is None:
        raise StreamProtocolError(f"{where}: source {source!r} has no image data")
    pid = d.get("image.pulseId", d.get("image.cellId"))
    n = None if pid is None else int(np.asarray(pid).size)
    stack = pulses_first(arr, n, where)
    n_pulses, n_mod, ss, fs = stack.shape
    train = meta.get(source, {}).get("timestamp.tid", d.get("metadata", {}).get("timestamp", {}).get("tid")
                                     if isinstance(d.get("metadata"), dict) else None)
    if train is None:
        t = d.get("image.trainId")
        train = int(np.asarray(t).reshape(-1)[0]) if t is not None and np.asarray(t).size else None
    pulse_ids, cell_ids = _ids(d, "pulseId", n_pulses), _ids(d, "cellId", n_pulses)
    out = []
    for p in range(n_pulses):
        extra = {"karabo_source": source}
        if train is not None:
            extra["train_id"] = int(train)
        if pulse_ids is not None:
            extra["pulse_id"] = int(pulse_ids[p])
        if cell_ids is not None:
            extra["cell_id"] = int(cell_ids[p])
        out.append(ImageMessage(decode=lambda p=p: np.ascontiguousarray(stack[p]).reshape(n_mod * ss, fs),
                                nbytes=n_mod * ss * fs * stack.dtype.itemsize, number=p,
                                series=int(train) if train is not None else None, extra=extra,
                                shape=(n_mod * ss, fs), dtype=stack.dtype.name))
    return source, out
