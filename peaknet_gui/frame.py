"""Frames: what a run source hands out, one detector readout at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class EventId:
    """Where a frame lives, in the form CrystFEL's ``.lst`` files use.

    ``path`` is the file; ``index`` the frame index inside a multi-frame file (``None`` for
    single-image files such as CBF).  ``lst_line()`` gives ``"path //index"`` or ``"path"``.
    """

    path: str
    index: Optional[int] = None

    def lst_line(self) -> str:
        return self.path if self.index is None else f"{self.path} //{self.index}"

    @property
    def event_string(self) -> str:
        """CrystFEL's event string (``//index``), empty for single-image files."""
        return "" if self.index is None else f"//{self.index}"

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.lst_line()


@dataclass
class FrameMetadata:
    """What a file says about the experiment.  Any field may be ``None`` when the file is silent.

    Beam centre is in pixel-index coordinates of the frame's data array (centre of the first
    pixel at 0, 0).  Lengths in metres, energy in eV.
    """

    photon_energy_ev: Optional[float] = None
    detector_distance_m: Optional[float] = None
    pixel_size_m: Optional[float] = None
    beam_center_fs: Optional[float] = None
    beam_center_ss: Optional[float] = None
    detector: Optional[str] = None
    exposure_time_s: Optional[float] = None
    extra: dict = field(default_factory=dict)

    @property
    def wavelength_a(self) -> Optional[float]:
        if not self.photon_energy_ev:
            return None
        return 12398.419843320026 / self.photon_energy_ev

    def as_dict(self) -> dict:
        d = {
            "photon_energy_ev": self.photon_energy_ev,
            "wavelength_a": self.wavelength_a,
            "detector_distance_m": self.detector_distance_m,
            "pixel_size_m": self.pixel_size_m,
            "beam_center_fs": self.beam_center_fs,
            "beam_center_ss": self.beam_center_ss,
            "detector": self.detector,
            "exposure_time_s": self.exposure_time_s,
        }
        d.update({k: v for k, v in self.extra.items() if isinstance(v, (int, float, str, bool))})
        return d


@dataclass
class Frame:
    """One detector readout.

    ``data`` is the frame exactly as stored in the file: a 2-D array (ss, fs) -- for multi-panel
    detectors the raw "slab" whose sub-rectangles the geometry's panels address.  ``bad`` marks
    pixels the file itself declares unusable (module gaps that read -1, detector pixel masks,
    NaN/inf); it is ``True`` where the pixel is bad, ``None`` when nothing is known.
    ``run_bad`` marks pixels the run's own statistics find unusable (hot and dead pixels,
    :mod:`peaknet_gui.masks.hot_pixels`), set once by the analyzer (``run_bad_checked``);
    :attr:`unusable` is the union of both.
    """

    data: np.ndarray
    event: EventId
    serial: int
    metadata: FrameMetadata = field(default_factory=FrameMetadata)
    bad: Optional[np.ndarray] = None
    run_bad: Optional[np.ndarray] = field(default=None, repr=False)
    run_bad_checked: bool = field(default=False, repr=False)

    @property
    def unusable(self) -> Optional[np.ndarray]:
        """``bad`` and ``run_bad`` together (None when neither is known)."""
        if self.run_bad is None:
            return self.bad
        return self.run_bad if self.bad is None else (self.bad | self.run_bad)

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)
