"""The legacy SIMPLON stream (API 1.x): multipart ZeroMQ messages whose first part is JSON.

``dheader-1.0`` (``series``, ``header_detail``: none / basic / all) is followed, for basic and
all, by the detector configuration (JSON); for all, by ``dflatfield-1.0``, ``dpixelmask-1.0`` and
``dcountrate_table-1.0`` headers each followed by its binary part.  An image is ``dimage-1.0``
(``series``, ``frame``, ``hash``), ``dimage_d-1.0`` (``shape`` [x, y], ``type``, ``encoding``,
``size``), the data, ``dconfig-1.0`` (``start_time``, ``stop_time``, ``real_time`` in ns) and
an optional appendix.  ``dseries_end-1.0`` ends a series.
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np

from ..live.messages import Ignored, ImageMessage, SeriesEnd, SeriesHeader
from ..live.receiver import StreamProtocolError
from .codecs import decode_legacy
from .header import detector_shape, metadata_from_config


def _json(part, what: str) -> dict:
    try:
        d = json.loads(bytes(part))
    except (ValueError, UnicodeDecodeError) as e:
        raise StreamProtocolError(f"{what} is not JSON ({e})") from None
    if not isinstance(d, dict):
        raise StreamProtocolError(f"{what} is not a JSON object")
    return d


def _shape(d: dict, what: str) -> tuple:
    s = d.get("shape")
    if not isinstance(s, (list, tuple)) or len(s) != 2:
        raise StreamProtocolError(f"{what}: shape {s!r} is not [x, y]")
    return int(s[1]), int(s[0])  # DECTRIS [x, y] -> (ss, fs)


def _pixel_mask(head: dict, blob) -> Optional[np.ndarray]:
    shape = _shape(head, "dpixelmask-1.0")
    try:
        m = np.frombuffer(bytes(blob), dtype=np.dtype(head.get("type", "uint32")).newbyteorder("<"))
        return (m.reshape(shape) != 0)
    except (TypeError, ValueError):
        return None  # a mask we cannot read is not worth stopping the stream for


def decode_message(parts: list, where: str):
    """One multipart message -> a list of live messages."""
    first = _json(parts[0], f"{where}: first part")
    htype = str(first.get("htype", ""))
    if htype.startswith("dheader-"):
        cfg = _json(parts[1], f"{where}: detector configuration") if len(parts) > 1 and first.get("header_detail", "basic") != "none" else {}
        mask = None
        k = 2
        while k + 1 < len(parts):
            try:
                sub = json.loads(bytes(parts[k]))
            except (ValueError, UnicodeDecodeError):
                k += 1
                continue
            if isinstance(sub, dict) and str(sub.get("htype", "")).startswith("dpixelmask-"):
                mask = _pixel_mask(sub, parts[k + 1])
            k += 2
        return [SeriesHeader(series=first.get("series"), metadata=metadata_from_config(cfg), pixel_mask=mask,
                             shape=detector_shape(cfg), config=cfg)]
    if htype.startswith("dimage-"):
        if len(parts) < 3:
            raise StreamProtocolError(f"{where}: an image message has {len(parts)} parts (4 expected)")
        d = _json(parts[1], f"{where}: image data header")
        shape = _shape(d, "dimage_d-1.0")
        blob = bytes(parts[2])
        size = d.get("size")
        if isinstance(size, int) and size != len(blob):
            raise StreamProtocolError(f"{where}: image {first.get('frame')}: {len(blob)} data bytes, the header says {size}")
        enc, dtype = str(d.get("encoding", "<")), str(d.get("type", "uint32"))
        extra = {}
        if len(parts) > 3:
            try:
                extra = {k: v for k, v in json.loads(bytes(parts[3])).items() if k.endswith("_time")}
            except (ValueError, UnicodeDecodeError, AttributeError):
                extra = {}
        number = first.get("frame")
        label = f"{where} series {first.get('series')} image {number}"
        return [ImageMessage(decode=lambda: decode_legacy(blob, enc, dtype, shape, label), nbytes=len(blob),
                             number=number if isinstance(number, int) else None, series=first.get("series"),
                             extra=extra, shape=shape, dtype=dtype)]
    if htype.startswith("dseries_end-"):
        return [SeriesEnd(series=first.get("series"))]
    return [Ignored(kind=htype)]
