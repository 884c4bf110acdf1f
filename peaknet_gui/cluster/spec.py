"""What travels from the driver to the workers: how to build the analyzer and which frames to do.

A :class:`WorkerSpec` is sent once per worker (the settings, the geometry, the static mask packed
to bits); a :class:`FrameTask` names one frame by (file, event) -- the worker reads the pixels
itself from the shared filesystem, so frames never pass through the driver.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..frame import EventId
from ..pipeline.settings import FinderSettings, MaskSettings
from .compact import pack_mask, unpack_mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameTask:
    """Frame ``index`` of the driver's run (its serial), stored at ``event``; ``seq`` its place
    in the output order; ``path``: ``event.path`` made absolute on the driver (a worker's
    working directory is not the driver's), what the worker opens."""

    seq: int
    index: int
    event: EventId
    path: str


@dataclass
class WorkerSpec:
    """Everything a worker needs to analyse frames exactly as a local ``peaknet find`` would.

    ``read_geometry``: the geometry the user gave (it may choose the HDF5 dataset), passed to the
    worker's run sources as the driver's ``open_run`` got it; ``geometry``: the one the analysis
    uses (the user's, or the one the files imply).  ``cpu_threads``: threads of the CPU model
    runtime (None: the process' cores).
    """

    algorithm: str = "peaknet"
    weights: Optional[str] = None
    device: str = "auto"
    backend: str = "auto"
    finder: FinderSettings = field(default_factory=FinderSettings)
    mask: MaskSettings = field(default_factory=MaskSettings)
    geometry: object = None
    read_geometry: object = None
    dataset: Optional[str] = None
    static_bits: Optional[bytes] = None
    static_shape: Optional[tuple] = None
    batch_size: Optional[int] = None
    cpu_threads: Optional[int] = None
    hot_pixels: Optional[dict] = None  # the driver's primed hot-pixel statistics (shared_state)

    @classmethod
    def from_analyzer(cls, analyzer, *, weights=None, device: str = "auto", backend: str = "auto",
                      read_geometry=None, dataset: Optional[str] = None, batch_size: Optional[int] = None,
                      cpu_threads: Optional[int] = None) -> "WorkerSpec":
        """The spec of workers that repeat ``analyzer`` (a driver-side FrameAnalyzer's settings,
        geometry and static mask) on ``device``."""
        bits, shape = (None, None)
        if analyzer.static_mask is not None:
            bits, shape = pack_mask(analyzer.static_mask)
        tracker = getattr(analyzer, "hot_pixels", None)
        try:
            shared = None if tracker is None else shared_state(tracker)
        except Exception as e:  # workers then gather the statistics from their own frames
            log.warning("the run's hot-pixel statistics cannot be sent to the workers (%s)", e)
            shared = None
        return cls(algorithm=analyzer.algorithm, weights=None if weights is None else str(weights), device=device,
                   backend=backend, finder=analyzer.finder, mask=analyzer.mask, geometry=analyzer.geometry,
                   read_geometry=read_geometry, dataset=dataset, static_bits=bits, static_shape=shape,
                   batch_size=batch_size, cpu_threads=cpu_threads,
                   hot_pixels=shared)

    def static_mask(self) -> Optional[np.ndarray]:
        return None if self.static_bits is None else unpack_mask(self.static_bits, self.static_shape)

    def make_analyzer(self):
        from ..pipeline.analyzer import FrameAnalyzer

        analyzer = FrameAnalyzer(self.algorithm, weights=self.weights, device=self.device, geometry=self.geometry,
                                 finder=self.finder, mask=self.mask, static_mask=self.static_mask(), backend=self.backend)
        if self.hot_pixels is not None and hasattr(analyzer, "hot_pixels"):
            analyzer.hot_pixels = from_shared_state(self.hot_pixels)
        return analyzer


_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


def shared_state(obj) -> dict:
    """An object's attributes without its locks, to rebuild it in another process
    (:func:`from_shared_state`): the run's hot-pixel statistics primed on the driver."""
    with getattr(obj, "_lock", None) or contextlib.nullcontext():
        state = {k: copy.deepcopy(v) for k, v in vars(obj).items() if not isinstance(v, _LOCK_TYPES)}
    locks = [k for k, v in vars(obj).items() if isinstance(v, _LOCK_TYPES)]
    return {"class": type(obj), "state": state, "locks": locks}


def from_shared_state(shared: dict):
    obj = shared["class"].__new__(shared["class"])
    vars(obj).update(copy.deepcopy(shared["state"]))  # writable copies (Ray hands out read-only arrays)
    for k in shared["locks"]:
        setattr(obj, k, threading.Lock())
    return obj
