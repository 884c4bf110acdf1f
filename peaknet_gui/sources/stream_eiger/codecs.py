"""Pixel decoding for DECTRIS streams, by the field's libraries (never by hand).

Legacy stream encodings (``dimage_d-1.0`` ``encoding``): ``<`` (raw little-endian), ``lz4<``
(one LZ4 block, no header), ``bs8-lz4<`` / ``bs16-lz4<`` / ``bs32-lz4<`` (bitshuffle + LZ4 as
the bitshuffle HDF5 filter frames it: a 12-byte big-endian header -- uncompressed size, block
size -- then the blocks).  Senders that leave the 12-byte header out (``bitshuffle.compress_lz4``
output, e.g. ALBA's eiger-simulator) are recognised and given the header of the library's
default block size.  ``stream2`` compressed byte strings (CBOR tag 56500): ``bslz4`` and ``lz4``,
both in HDF5 framing.
"""

from __future__ import annotations

import struct

import numpy as np

from ...errors import InputError

BITSHUFFLE_DEFAULT_BLOCK_BYTES = 8192  # bitshuffle's default block: 8 kB of elements


def _dectris():
    try:
        from dectris.compression import decompress
    except ImportError as e:
        raise InputError("decoding compressed Eiger frames needs the 'dectris-compression' package "
                         "(pip install peaknet_gui[streams])") from e
    return decompress


def _lz4_block():
    try:
        import lz4.block
    except ImportError as e:
        raise InputError("decoding LZ4 Eiger frames needs the 'lz4' package (pip install peaknet_gui[streams])") from e
    return lz4.block


def _as_array(buf, dtype: np.dtype, shape: tuple, where: str) -> np.ndarray:
    need = int(np.prod(shape)) * dtype.itemsize
    if len(buf) != need:
        raise InputError(f"{where}: decoded {len(buf)} bytes, a {shape[1]}x{shape[0]} {dtype} image needs {need}")
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


def decompress_dectris(blob, algorithm: str, elem_size: int, where: str) -> bytes:
    """``stream2`` tag 56500 payload (HDF5 framing) -> bytes."""
    if algorithm not in ("bslz4", "lz4", "bszstd"):
        raise InputError(f"{where}: unknown compression {algorithm!r} (bslz4, lz4 or bszstd expected)")
    try:
        return _dectris()(bytes(blob), algorithm, elem_size=int(elem_size) or 1)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 -- the library's own errors: corrupt data
        raise InputError(f"{where}: cannot decompress the {algorithm} data ({type(e).__name__}: {e})") from e


def decode_legacy(blob, encoding: str, dtype: str, shape: tuple, where: str) -> np.ndarray:
    """Pixels of a legacy ``dimage_d-1.0`` part: ``shape`` is (ss, fs) (DECTRIS writes [x, y])."""
    try:
        dt = np.dtype(dtype).newbyteorder("<")
    except TypeError as e:
        raise InputError(f"{where}: unknown pixel type {dtype!r}") from e
    enc = (encoding or "").strip()
    nbytes = int(np.prod(shape)) * dt.itemsize
    data = bytes(blob) if not isinstance(blob, bytes) else blob
    if enc in ("<", ""):
        return _as_array(data, dt, shape, where)
    if enc == "lz4<":
        try:
            out = _lz4_block().decompress(data, uncompressed_size=nbytes)
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001
            raise InputError(f"{where}: cannot decompress the LZ4 data ({type(e).__name__}: {e})") from e
        return _as_array(out, dt, shape, where)
    if enc.startswith("bs") and enc.endswith("-lz4<"):
        try:
            bits = int(enc[2:-5])
        except ValueError:
            raise InputError(f"{where}: unknown encoding {encoding!r}") from None
        elem = max(1, bits // 8)
        if elem != dt.itemsize:
            elem = dt.itemsize  # the pixel type decides; the encoding's width is the sender's label
        if len(data) < 12 or struct.unpack(">Q", data[:8])[0] != nbytes:
            data = struct.pack(">QI", nbytes, BITSHUFFLE_DEFAULT_BLOCK_BYTES) + data
        return _as_array(decompress_dectris(data, "bslz4", elem, where), dt, shape, where)
    raise InputError(f"{where}: unknown encoding {encoding!r} (<, lz4<, bs8/bs16/bs32-lz4< expected)")
