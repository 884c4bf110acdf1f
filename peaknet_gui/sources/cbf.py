"""Fast, strict CBF reading (plain, ``.gz``, ``.bz2``): header text, shape and pixels.

The binary section is decoded with fabio's compiled byte-offset decoder; everything around it
(decompression, MIME header, size checks) is done here so that truncated or corrupt files raise
:class:`InputError` naming the file instead of returning partial images.  ``.bz2`` files are
decompressed block-parallel with ``indexed_bzip2`` on machines with 4 or more cores when it is
installed (extra ``fast``); otherwise with the standard library, which releases the GIL so that
background prefetching does not stall other threads.
"""

from __future__ import annotations

import bz2
import gzip
import os
import re
import zlib
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InputError

BINARY_START = b"\x0c\x1a\x04\xd5"
SECTION = b"--CIF-BINARY-FORMAT-SECTION--"
_TYPES = {
    "signed 32-bit integer": np.int32, "unsigned 32-bit integer": np.uint32,
    "signed 16-bit integer": np.int16, "unsigned 16-bit integer": np.uint16,
    "signed 8-bit integer": np.int8, "unsigned 8-bit integer": np.uint8,
    "signed 64-bit integer": np.int64, "unsigned 64-bit integer": np.uint64,
    "signed 32-bit real ieee": np.float32, "signed 64-bit real ieee": np.float64,
}

try:  # parallel bzip2 decoding (optional)
    import indexed_bzip2 as _ibz2
except ImportError:  # pragma: no cover - optional dependency
    _ibz2 = None


@dataclass
class CbfHead:
    """The text header of a CBF file and the description of its binary section."""

    text: str
    shape: Optional[tuple]  # (ss, fs)
    dtype: Optional[np.dtype]
    binary_size: Optional[int]
    conversion: str


def compression_of(path: str) -> Optional[str]:
    low = path.lower()
    if low.endswith(".bz2"):
        return "bz2"
    if low.endswith(".gz"):
        return "gz"
    return None


def read_bytes(path: str, limit: Optional[int] = None) -> bytes:
    """The (decompressed) content of ``path``; at most about ``limit`` bytes when given."""
    comp = compression_of(path)
    try:
        if comp is None:
            with open(path, "rb") as fh:
                return fh.read() if limit is None else fh.read(limit)
        if limit is not None:
            opener = bz2.open if comp == "bz2" else gzip.open
            with opener(path, "rb") as fh:
                return fh.read(limit)
        with open(path, "rb") as fh:
            raw = fh.read()
        if comp == "gz":
            return _gunzip(raw)
        return _bunzip2(raw)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied (file is not readable)") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not an image file") from None
    except (OSError, EOFError, ValueError, RuntimeError, zlib.error) as e:  # RuntimeError: indexed_bzip2
        raise InputError(f"{path}: corrupt or truncated {comp or ''} file ({e})".replace("  ", " ")) from e


def _gunzip(raw: bytes) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = d.decompress(raw)
    if not d.eof:
        raise EOFError("compressed stream ends before the end-of-stream marker")
    return out


def _bunzip2(raw: bytes) -> bytes:
    cpus = os.cpu_count() or 1
    if _ibz2 is not None and cpus >= 4 and len(raw) > (1 << 20):
        import io

        with _ibz2.open(io.BytesIO(raw), parallelization=cpus) as fh:
            return fh.read()  # a truncated stream gives short output: decode() reports it
    d = bz2.BZ2Decompressor()
    out = d.decompress(raw)
    if not d.eof:
        raise EOFError("compressed stream ends before the end-of-stream marker")
    return out


def parse_head(content: bytes, path: str) -> tuple:
    """(CbfHead, offset of the first binary byte or -1) from the file's leading bytes."""
    sec = content.find(SECTION)
    if sec < 0:
        if not content.startswith(b"###CBF") and b"data_" not in content[:4096]:
            raise InputError(f"{path}: not a CBF file (no CIF header)")
        return CbfHead(content.decode("latin-1"), None, None, None, ""), -1
    text = content[:sec].decode("latin-1")
    if text.rstrip().endswith(";"):
        text = text.rstrip()[:-1]
    start = content.find(BINARY_START, sec)
    mime = content[sec:start if start >= 0 else sec + 4096].decode("latin-1")
    fields = dict(re.findall(r"^\s*([A-Za-z][\w\-]*)\s*:\s*(.+?)\s*;?\s*$", mime, re.MULTILINE))
    conv = re.search(r'conversions\s*=\s*"?([^";\s]+)', mime)

    def num(key):
        try:
            return int(fields.get(key, "").strip().strip('"'))
        except ValueError:
            return None

    fast, slow = num("X-Binary-Size-Fastest-Dimension"), num("X-Binary-Size-Second-Dimension")
    etype = fields.get("X-Binary-Element-Type", '"signed 32-bit integer"').strip().strip('"').lower()
    dtype = _TYPES.get(etype)
    byte_order = fields.get("X-Binary-Element-Byte-Order", "LITTLE_ENDIAN").upper()
    if dtype is not None and "BIG" in byte_order:
        dtype = np.dtype(dtype).newbyteorder(">")
    head = CbfHead(
        text=text,
        shape=(slow, fast) if fast and slow else None,
        dtype=np.dtype(dtype) if dtype is not None else None,
        binary_size=num("X-Binary-Size"),
        conversion=conv.group(1) if conv else "",
    )
    return head, (start + 4 if start >= 0 else -1)


def read_head(path: str) -> CbfHead:
    """The header of a CBF without decoding (and, for plain files, without reading) the pixels."""
    limit = 1 << 16
    while True:
        content = read_bytes(path, limit)
        head, start = parse_head(content, path)
        if start >= 0 or len(content) < limit or limit >= (1 << 24):
            if head.shape is None:
                raise InputError(f"{path}: CBF header has no binary section with image dimensions")
            return head
        limit *= 8


def decode(content: bytes, path: str) -> tuple:
    """(pixels 2-D array, CbfHead) of a whole CBF file's bytes."""
    head, start = parse_head(content, path)
    if start < 0 or head.shape is None:
        raise InputError(f"{path}: corrupt or truncated CBF (no binary image section found)")
    if head.conversion.lower() not in ("x-cbf_byte_offset", ""):
        raise InputError(f"{path}: CBF compression {head.conversion} is not supported (only byte_offset)")
    size = head.binary_size
    n = head.shape[0] * head.shape[1]
    if size is None:
        raise InputError(f"{path}: corrupt CBF: the binary section has no X-Binary-Size")
    if len(content) - start < size:
        raise InputError(f"{path}: truncated CBF: the image needs {size} bytes of data, the file holds "
                         f"{len(content) - start}")
    from fabio.compression import decByteOffset

    try:
        data = decByteOffset(content[start:start + size], size=n, dtype=head.dtype or np.int32)
    except Exception as e:  # the Cython decoder raises plain exceptions on garbage
        raise InputError(f"{path}: corrupt CBF: cannot decode the byte-offset image data ({e})") from e
    if data.size != n:
        raise InputError(f"{path}: corrupt CBF: decoded {data.size} pixels, the header says {n}")
    return np.asarray(data).reshape(head.shape), head


def read_cbf(path: str) -> tuple:
    """(pixels, CbfHead) of a CBF file (``.gz``/``.bz2`` decompressed)."""
    return decode(read_bytes(path), path)
