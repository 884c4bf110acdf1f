"""Compact per-frame results: what a worker sends back instead of a full FrameResult.

A :class:`FrameResult` holds float16 class probabilities and a boolean mask of the frame's
size (a 1920 x 1920 Rayonix frame: 14 MB); the exports need only the peaks, the hit decision,
the metadata the stream and CXI files record, the timings and the per-frame mask.  The mask
travels as packed bits compressed with zlib (an auto-mask is mostly large regions: a few kB
instead of 3.7 MB), and the frame's own bad pixels are folded into it (the export ORs them
anyway), so the driver rebuilds exactly what the export session would have seen.
"""

from __future__ import annotations

import pickle
import zlib
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..frame import EventId, Frame, FrameMetadata
from ..peaks.peaklist import PeakList
from ..pipeline.result import FrameResult


def pack_mask(mask: np.ndarray, level: int = 1) -> tuple:
    """(zlib-compressed packed bits, shape) of a boolean mask."""
    m = np.asarray(mask, dtype=bool)
    return zlib.compress(np.packbits(m, axis=None).tobytes(), level), tuple(m.shape)


def unpack_mask(bits: bytes, shape: tuple) -> np.ndarray:
    n = int(np.prod(shape))
    flat = np.unpackbits(np.frombuffer(zlib.decompress(bits), dtype=np.uint8), count=n)
    return flat.astype(bool).reshape(shape)


@dataclass
class CompactResult:
    """One analysed frame as a worker returns it (see the module doc)."""

    seq: int
    index: int
    event: EventId
    shape: tuple
    metadata: FrameMetadata
    peaks: PeakList
    ring_spots: PeakList
    hit: bool
    algorithm: str
    device: str
    timings_ms: dict = field(default_factory=dict)
    mask_bits: Optional[bytes] = None  # pack_mask(artifact mask | frame.bad)
    nbytes: int = 0  # pickled size, measured by the worker
    gain_warning: str = ""  # FrameResult.gain_warning

    @classmethod
    def from_result(cls, seq: int, index: int, frame: Frame, result: FrameResult) -> "CompactResult":
        m = result.artifact_mask
        if frame.bad is not None:
            m = frame.bad if m is None else (np.asarray(m, dtype=bool) | np.asarray(frame.bad, dtype=bool))
        bits = None if m is None else pack_mask(m)[0]
        c = cls(seq=seq, index=index, event=frame.event, shape=tuple(frame.shape), metadata=frame.metadata,
                peaks=result.peaks, ring_spots=result.ring_spots, hit=bool(result.hit), algorithm=result.algorithm,
                device=result.device, timings_ms=dict(result.timings_ms), mask_bits=bits,
                gain_warning=getattr(result, "gain_warning", ""))
        c.nbytes = len(pickle.dumps(c, protocol=5))
        return c

    def mask(self) -> Optional[np.ndarray]:
        return None if self.mask_bits is None else unpack_mask(self.mask_bits, self.shape)

    def frame(self, data: Optional[np.ndarray] = None) -> Frame:
        """The Frame the export session sees: ``data`` when the driver read the pixels (a hit for
        hits.cxi), else a zero-byte stand-in of the right shape; ``bad`` is in the mask already."""
        if data is None:
            data = np.broadcast_to(np.float32(0), self.shape)
        return Frame(data=data, event=self.event, serial=self.index, metadata=self.metadata, bad=None)

    def result(self, with_mask: bool = True) -> FrameResult:
        return FrameResult(serial=self.index, event=self.event, peaks=self.peaks, hit=self.hit,
                           artifact_mask=self.mask() if with_mask else None, algorithm=self.algorithm,
                           device=self.device, timings_ms=dict(self.timings_ms), ring_spots=self.ring_spots,
                           gain_warning=self.gain_warning)
