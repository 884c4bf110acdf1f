"""The run mask: pixels masked in at least a chosen fraction of a run's frames.

An incremental accumulator: add each frame's mask as it is analysed (from the CLI's run loop or
the GUI's worker thread) and ask for the run mask at any time, for any fraction.
"""

from __future__ import annotations

import math
import threading
from typing import Optional

import numpy as np


class RunMaskAccumulator:
    """Counts, per pixel, in how many frames it was masked.

    ``fraction`` is the default share of frames (0 < fraction <= 1) a pixel must be masked in
    to be in the run mask.  Thread-safe: ``add`` and ``mask`` may run in different threads.
    """

    def __init__(self, shape: Optional[tuple] = None, fraction: float = 0.5):
        self._check_fraction(fraction)
        self.fraction = float(fraction)
        self._counts = None if shape is None else np.zeros(tuple(shape), dtype=np.uint32)
        self._n = 0
        self._lock = threading.Lock()

    @staticmethod
    def _check_fraction(fraction: float) -> None:
        if not 0.0 < float(fraction) <= 1.0:
            raise ValueError(f"run-mask fraction must be in (0, 1], not {fraction}")

    @property
    def n_frames(self) -> int:
        return self._n

    @property
    def shape(self) -> Optional[tuple]:
        return None if self._counts is None else self._counts.shape

    def add(self, mask: np.ndarray) -> None:
        """Count one frame's mask (True = masked)."""
        mask = np.asarray(mask, dtype=bool)
        with self._lock:
            if self._counts is None:
                self._counts = np.zeros(mask.shape, dtype=np.uint32)
            elif mask.shape != self._counts.shape:
                raise ValueError(f"frame mask shape {mask.shape} differs from the run's {self._counts.shape}")
            self._counts += mask
            self._n += 1

    def counts(self) -> Optional[np.ndarray]:
        with self._lock:
            return None if self._counts is None else self._counts.copy()

    def mask(self, fraction: Optional[float] = None) -> Optional[np.ndarray]:
        """Pixels masked in at least ``fraction`` of the frames so far (None before any frame)."""
        fraction = self.fraction if fraction is None else fraction
        self._check_fraction(fraction)
        with self._lock:
            if self._counts is None or self._n == 0:
                return None
            need = max(1, math.ceil(fraction * self._n - 1e-9))
            return self._counts >= need

    def reset(self) -> None:
        with self._lock:
            if self._counts is not None:
                self._counts[:] = 0
            self._n = 0
