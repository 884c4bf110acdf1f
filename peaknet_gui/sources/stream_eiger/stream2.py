"""The DECTRIS ``stream2`` format: one CBOR map per ZeroMQ message (self-described, tag 55799).

``type``: ``start`` (detector configuration, ``pixel_mask`` per channel, ``series_id``),
``image`` (``series_id``, ``image_id``, ``data``: {channel: array}, times), ``end``,
``calibration`` (not needed here).  Arrays are RFC 8746 multi-dimensional arrays (tag 40,
row-major; 1040 column-major) of typed arrays (tags 64-87), whose byte string may be a DECTRIS
compressed byte string (tag 56500: [algorithm, element size, bytes]).  Image pixels are kept
compressed and decoded when the frame is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...errors import InputError
from ..live.messages import Ignored, ImageMessage, SeriesEnd, SeriesHeader
from ..live.receiver import StreamProtocolError
from .codecs import decompress_dectris
from .header import detector_shape, metadata_from_config

CBOR_MAGIC = b"\xd9\xd9\xf7"  # tag 55799, self-described CBOR
TAG_COMPRESSED = 56500
TAG_ROW_MAJOR, TAG_COL_MAJOR = 40, 1040

# RFC 8746 typed arrays: tag -> numpy dtype
TYPED_ARRAY_TAGS = {
    64: "u1", 68: "u1", 72: "i1",
    65: ">u2", 66: ">u4", 67: ">u8", 69: "<u2", 70: "<u4", 71: "<u8",
    73: ">i2", 74: ">i4", 75: ">i8", 77: "<i2", 78: "<i4", 79: "<i8",
    80: ">f2", 81: ">f4", 82: ">f8", 84: "<f2", 85: "<f4", 86: "<f8",
}


def _cbor2():
    try:
        import cbor2
    except ImportError as e:
        raise InputError("reading stream2 (CBOR) Eiger streams needs the 'cbor2' package "
                         "(pip install peaknet_gui[streams])") from e
    return cbor2


@dataclass
class _Compressed:
    algorithm: str
    elem_size: int
    data: bytes


@dataclass
class _Typed:
    dtype: np.dtype
    payload: object  # bytes or _Compressed


@dataclass
class LazyArray:
    """A tag-40 array whose bytes are decoded on :meth:`array`."""

    dims: tuple
    typed: _Typed
    column_major: bool = False

    @property
    def nbytes_stored(self) -> int:
        p = self.typed.payload
        return len(p.data) if isinstance(p, _Compressed) else len(p)

    def array(self, where: str) -> np.ndarray:
        p = self.typed.payload
        if isinstance(p, _Compressed):
            p = decompress_dectris(p.data, p.algorithm, p.elem_size, where)
        dt = self.typed.dtype
        need = int(np.prod(self.dims)) * dt.itemsize
        if len(p) != need:
            raise InputError(f"{where}: {len(p)} bytes for an array of {self.dims} {dt} ({need} bytes)")
        a = np.frombuffer(p, dtype=dt).reshape(self.dims, order="F" if self.column_major else "C")
        return a.astype(dt.newbyteorder("="), copy=False)


def _tag_hook(*args):
    # cbor2 < 6 calls tag_hook(decoder, tag); cbor2 6 calls tag_hook(tag, immutable)
    tag = next((a for a in args if hasattr(a, "tag") and hasattr(a, "value")), None)
    if tag is None:
        return args[0]
    if tag.tag == 55799:  # self-described CBOR
        return tag.value
    if tag.tag == TAG_COMPRESSED:
        alg, elem, data = tag.value
        return _Compressed(str(alg), int(elem), bytes(data))
    if tag.tag in TYPED_ARRAY_TAGS:
        if not isinstance(tag.value, (bytes, _Compressed)):
            raise StreamProtocolError(f"typed array tag {tag.tag} holds {type(tag.value).__name__}, not bytes")
        return _Typed(np.dtype(TYPED_ARRAY_TAGS[tag.tag]), tag.value)
    if tag.tag in (TAG_ROW_MAJOR, TAG_COL_MAJOR):
        dims, contents = tag.value
        if isinstance(contents, _Typed):
            return LazyArray(tuple(int(d) for d in dims), contents, tag.tag == TAG_COL_MAJOR)
        return np.asarray(contents).reshape(tuple(dims), order="F" if tag.tag == TAG_COL_MAJOR else "C")
    return tag


def is_stream2(first_part) -> bool:
    return bytes(first_part[:3]) == CBOR_MAGIC or (len(first_part) and first_part[0] >> 5 == 5)  # a CBOR map


def _pick(d: dict, channel: Optional[str]):
    if not isinstance(d, Mapping) or not d:
        return None, None
    if channel is not None and channel in d:
        return channel, d[channel]
    key = sorted(d)[0]
    return key, d[key]


def decode_message(part, where: str, channel: Optional[str] = None):
    """One stream2 message -> a list of live messages."""
    cbor2 = _cbor2()
    try:
        msg = cbor2.loads(bytes(part), tag_hook=_tag_hook)
    except StreamProtocolError:
        raise
    except Exception as e:  # noqa: BLE001 -- cbor2's decode errors
        raise StreamProtocolError(f"{where}: not a CBOR message ({type(e).__name__}: {e})") from None
    if isinstance(msg, Mapping):
        msg = dict(msg)  # cbor2 6 hands out frozendicts
    if not isinstance(msg, dict) or "type" not in msg:
        raise StreamProtocolError(f"{where}: a stream2 message must be a map with a 'type'")
    kind = msg["type"]
    if kind == "start":
        mask = None
        _, m = _pick(msg.get("pixel_mask") or {}, channel)
        try:
            if isinstance(m, LazyArray):
                mask = m.array(f"{where}: pixel mask") != 0
            elif isinstance(m, np.ndarray):
                mask = m != 0
        except InputError:
            mask = None
        cfg = {k: v for k, v in msg.items() if isinstance(v, (int, float, str, bool))}
        return [SeriesHeader(series=msg.get("series_id"), metadata=metadata_from_config(cfg), pixel_mask=mask,
                             shape=detector_shape(cfg), config=cfg)]
    if kind == "image":
        name, arr = _pick(msg.get("data") or {}, channel)
        if not isinstance(arr, LazyArray) or len(arr.dims) != 2:
            raise StreamProtocolError(f"{where}: image {msg.get('image_id')} has no 2-D data array")
        number = msg.get("image_id")
        label = f"{where} series {msg.get('series_id')} image {number}"
        extra = {"channel": name}
        for k in ("start_time", "stop_time", "real_time"):
            v = msg.get(k)
            if isinstance(v, (list, tuple)) and len(v) == 2 and v[1]:
                extra[k] = float(v[0]) / float(v[1])  # rational [numerator, denominator] seconds
            elif isinstance(v, (int, float)):
                extra[k] = v
        return [ImageMessage(decode=lambda: arr.array(label), nbytes=arr.nbytes_stored,
                             number=number if isinstance(number, int) else None, series=msg.get("series_id"),
                             extra=extra, shape=arr.dims, dtype=str(arr.typed.dtype.newbyteorder("=")))]
    if kind == "end":
        return [SeriesEnd(series=msg.get("series_id"))]
    return [Ignored(kind=str(kind))]
