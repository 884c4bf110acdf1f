"""The peak list that crosses every boundary of the program."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np


def _f(n=0):
    return np.zeros(n, dtype=np.float64)


@dataclass
class PeakList:
    """Peaks of one frame in **pixel-index coordinates** of the frame's 2-D data array
    (centre of the first pixel at fs = ss = 0).  Conversion to CrystFEL's corner convention
    (+0.5) happens only in the stream exporter.

    All arrays have one entry per peak.  ``panel`` indexes the geometry's panels (-1 unknown);
    ``resolution`` is 1/d in inverse Angstrom (NaN when the geometry or energy is unknown);
    ``confidence`` the model's highest peak-class probability over the peak's pixels (NaN for
    peaks that do not come from the model); ``max_snr`` the brightest pixel's background-subtracted
    value over the local background sigma (``snr`` is the total's), the photometric test of the
    weights' operating point (:mod:`peaknet_gui.model.operating_point`).
    """

    fs: np.ndarray = field(default_factory=_f)
    ss: np.ndarray = field(default_factory=_f)
    intensity: np.ndarray = field(default_factory=_f)  # background-subtracted total
    max_intensity: np.ndarray = field(default_factory=_f)
    npix: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    snr: np.ndarray = field(default_factory=_f)
    panel: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    resolution: np.ndarray = field(default_factory=_f)
    confidence: np.ndarray = field(default_factory=_f)  # model's highest peak probability in the peak (NaN: none)
    max_snr: np.ndarray = field(default_factory=_f)  # brightest pixel over the local background sigma (NaN: unknown)

    def __post_init__(self):
        n = len(np.atleast_1d(self.fs))
        for f in fields(self):
            a = np.atleast_1d(np.asarray(getattr(self, f.name)))
            if f.name in ("npix", "panel"):
                a = a.astype(np.int32)
            else:
                a = a.astype(np.float64)
            if len(a) == 0 and n > 0:
                a = np.full(n, -1 if f.name == "panel" else (0 if f.name == "npix" else np.nan), dtype=a.dtype)
            if len(a) != n:
                raise ValueError(f"PeakList.{f.name} has {len(a)} entries, expected {n}")
            setattr(self, f.name, a)

    def __len__(self) -> int:
        return len(self.fs)

    def select(self, keep) -> "PeakList":
        """A new list with the peaks where ``keep`` (bool mask or index array) selects."""
        return PeakList(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    @classmethod
    def concatenate(cls, lists) -> "PeakList":
        lists = list(lists)
        if not lists:
            return cls()
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in lists]) for f in fields(cls)})

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name).tolist() for f in fields(self)}
