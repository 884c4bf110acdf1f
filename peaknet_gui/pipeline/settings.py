"""User-facing settings of peak finding and auto-masking (shared by CLI, GUI and batch jobs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional


@dataclass
class FinderSettings:
    """How peaks are extracted from the model's peak-class probability (or the classical finder).

    ``peak_threshold`` None means "argmax": a pixel belongs to a peak where the peak class is the
    most probable class -- the model's own decision, nothing to tune.  ``min_confidence``: a
    peak is kept when its highest peak probability reaches it; ``min_pixel_snr``: and when its
    brightest pixel stands that many local-background sigmas above the background; None means
    the operating point fitted for the loaded weights (:mod:`peaknet_gui.model.operating_point`),
    0 keeps every component; the point's second tier (a lower pixel SNR for peaks the model is sure
    of) applies only while both are None.  ``drop_ring_spots``: peaks crowding on one scattering angle -- the spots of an
    ice, salt or calibrant powder ring (:mod:`peaknet_gui.peaks.rings`) -- are taken out of the
    peak list and into the auto-mask (needs a geometry).  Resolution limits are d-spacings in
    Angstrom (``min_res_a`` the finest, e.g. 1.5; ``max_res_a`` the coarsest).
    """

    algorithm: str = "peaknet"  # "peaknet" or "peakfinder8"
    peak_threshold: Optional[float] = None
    min_confidence: Optional[float] = None
    min_pixel_snr: Optional[float] = None
    drop_ring_spots: bool = True
    min_pixels: int = 1
    max_pixels: int = 10000
    min_res_a: Optional[float] = None
    max_res_a: Optional[float] = None
    max_peaks: int = 2048
    min_peaks_for_hit: int = 10
    min_snr: float = 0.0
    # peakfinder8 (classical finder) only: detector-unit threshold, per-pixel SNR threshold,
    # pixel-count limits of a peak and the local background radius (CrystFEL's defaults)
    pf8_adc_threshold: float = 0.0
    pf8_min_snr: float = 5.0
    pf8_min_pixels: int = 2
    pf8_max_pixels: int = 200
    pf8_local_bg_radius: int = 3

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class MaskSettings:
    """How the per-frame auto-mask is made from the artifact-class probability.

    ``artifact_threshold`` None reproduces the argmax.  ``dilation`` in pixels.  ``whole_rings``:
    a powder ring the network or the ring-spot test finds is masked along all of its arc where
    the frame shows its scatter, not only where the network saw it
    (:mod:`peaknet_gui.masks.powder_rings`; needs a geometry).  The static mask (user file,
    geometry bad regions) and detector gaps / negative pixels are added when asked.
    """

    artifact_threshold: Optional[float] = None
    dilation: int = 0
    whole_rings: bool = True
    include_static: bool = True
    include_gaps: bool = True

    def as_dict(self) -> dict:
        return asdict(self)
