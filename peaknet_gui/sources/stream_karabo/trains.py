"""A Karabo bridge train -> one image message per pulse.

The detector source's ``image.data`` (JUNGFRAU: ``data.adc``) comes in one of two axis orders
(karabo-bridge documents both): *online* ``(modules, fs, ss, pulses)`` -- the calibration
pipeline's -- and *file* ``(pulses, modules, ss, fs)``; without the module axis for a single
module.  The order is told by the number of pulses (``image.pulseId`` / ``image.cellId`` /
JUNGFRAU's ``data.memoryCell``).  A detector may also come one source per module (JUNGFRAU's
``.../DET/JNGFR01:daqOutput`` ... as a TrainMatcher or ``karabo-bridge-serve-run`` forwards
them; :mod:`.modules`).  A pulse's frame is the modules stacked along the slow-scan axis,
``(modules * ss, fs)``: the slab layout of EXtra-geom's CrystFEL geometries.  Events: one per
pulse (storage cell); train id, pulse id and cell id go to the metadata.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..live.messages import ImageMessage
from ..live.receiver import StreamProtocolError
from .modules import select_modules

IMAGE_KEYS = ("image.data", "data.adc", "data.image.data")
PULSE_KEYS = ("image.pulseId",)
CELL_KEYS = ("image.cellId", "data.memoryCell")  # AGIPD/LPD/DSSC; JUNGFRAU's storage cells
TRAIN_KEYS = ("image.trainId", "data.trainId")


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


def _ids(d: dict, keys: tuple, n: int) -> Optional[np.ndarray]:
    for k in keys:
        v = d.get(k)
        if v is not None:
            a = np.asarray(v).reshape(-1)
            return a if len(a) == n else None
    return None


def _n_pulses(d: dict) -> Optional[int]:
    for k in PULSE_KEYS + CELL_KEYS:
        if d.get(k) is not None:
            return int(np.asarray(d[k]).size)
    return None


def _train_id(d: dict, meta: dict, source: str):
    train = meta.get(source, {}).get("timestamp.tid")
    if train is None and isinstance(d.get("metadata"), dict):
        train = d["metadata"].get("timestamp", {}).get("tid")
    for k in TRAIN_KEYS:
        if train is None and d.get(k) is not None and np.asarray(d[k]).size:
            train = int(np.asarray(d[k]).reshape(-1)[0])
    return train


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


def _module_stack(data: dict, slots: list, where: str) -> tuple:
    """Per-module (pulses, ss, fs) arrays of a detector sent one source per module (missing
    modules None), the first present module's source, and the pulse count common to all."""
    mods, first = [], None
    for name in slots:
        d = data.get(name) if name is not None else None
        _, arr = _image(d) if isinstance(d, dict) else (None, None)
        if arr is None:
            mods.append(None)
            continue
        st = pulses_first(arr, _n_pulses(d), where)
        if st.shape[1] != 1:
            raise StreamProtocolError(f"{where}: module source {name!r} holds {st.shape[1]} modules")
        mods.append(st[:, 0])
        first = first or name
    shapes = {m.shape[1:] for m in mods if m is not None}
    if len(shapes) > 1:
        raise StreamProtocolError(f"{where}: the modules differ in shape ({', '.join(map(str, sorted(shapes)))})")
    return mods, first, min(m.shape[0] for m in mods if m is not None)


def _stacked(mods: list, p: int, dtype) -> np.ndarray:
    ss, fs = next(m.shape[1:] for m in mods if m is not None)
    fill = np.nan if np.dtype(dtype).kind == "f" else 0
    return np.concatenate([m[p] if m is not None else np.full((ss, fs), fill, dtype) for m in mods], axis=0)


def train_messages(data: dict, meta: dict, source: Optional[str], where: str) -> tuple:
    """(source used, [ImageMessage per pulse]) of one train.

    ``source`` (the URL's) names a source of the train, or a detector sent one source per module
    (:mod:`.modules`); without it the detector with the most module sources, else the first
    source with images.
    """
    names = detector_sources(data)
    group = None if source is not None and source in data else select_modules(names, source)
    if group is not None:
        label, slots = group
        mods, first, n_pulses = _module_stack(data, slots, where)
        dtype = np.result_type(*[m.dtype for m in mods if m is not None])
        n_mod, (ss, fs) = len(mods), next(m.shape[1:] for m in mods if m is not None)
        d = data[first]
        decode = lambda p: _stacked(mods, p, dtype)  # noqa: E731
        extra0 = {"karabo_source": label, "karabo_modules": sum(m is not None for m in mods)}
    else:
        if source is None:
            if not names:
                raise StreamProtocolError(f"{where}: no detector images in the train (sources: "
                                          f"{', '.join(sorted(data)) or 'none'})")
            source = names[0]
        d = data.get(source)
        if not isinstance(d, dict):
            raise StreamProtocolError(f"{where}: source {source!r} not in the train (sources with images: "
                                      f"{', '.join(names) or 'none'})")
        _, arr = _image(d)
        if arr is None:
            raise StreamProtocolError(f"{where}: source {source!r} has no image data")
        stack = pulses_first(arr, _n_pulses(d), where)
        n_pulses, n_mod, ss, fs = stack.shape
        dtype, first, label = stack.dtype, source, source
        decode = lambda p: np.ascontiguousarray(stack[p]).reshape(n_mod * ss, fs)  # noqa: E731
        extra0 = {"karabo_source": source}
    train = _train_id(d, meta, first)
    pulse_ids, cell_ids = _ids(d, PULSE_KEYS, n_pulses), _ids(d, CELL_KEYS, n_pulses)
    out = []
    for p in range(n_pulses):
        extra = dict(extra0)
        if train is not None:
            extra["train_id"] = int(train)
        if pulse_ids is not None:
            extra["pulse_id"] = int(pulse_ids[p])
        if cell_ids is not None:
            extra["cell_id"] = int(cell_ids[p])
        out.append(ImageMessage(decode=lambda p=p: decode(p), nbytes=n_mod * ss * fs * np.dtype(dtype).itemsize,
                                number=p, series=int(train) if train is not None else None, extra=extra,
                                shape=(n_mod * ss, fs), dtype=np.dtype(dtype).name))
    return label, out
