"""What a stream protocol's decoder hands to the receiver: typed messages, one per detector message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ...frame import FrameMetadata


@dataclass
class SeriesHeader:
    """The start of a series (DECTRIS global header / ``start``; a Karabo train's first sight).

    ``metadata`` carries what the detector configuration says (pixel size, distance, beam
    centre, photon energy); ``pixel_mask`` is True where the detector declares a pixel bad;
    ``geometry`` is a complete geometry when the protocol brings one (multi-module detectors).
    """

    series: object = None
    metadata: FrameMetadata = field(default_factory=FrameMetadata)
    pixel_mask: Optional[np.ndarray] = None
    shape: Optional[tuple] = None
    geometry: object = None
    config: dict = field(default_factory=dict)


@dataclass
class ImageMessage:
    """One image of a series.  The pixels are decoded lazily (``decode()``) by whoever reads the
    frame, so the receiver thread keeps up with the sender and the window holds the compressed
    bytes (``nbytes``) rather than the pixels."""

    decode: Callable[[], np.ndarray]
    nbytes: int
    number: Optional[int] = None  # the detector's frame number in its series
    series: object = None
    extra: dict = field(default_factory=dict)  # per-image values (start/stop time, train id, pulse id)
    shape: Optional[tuple] = None
    dtype: Optional[str] = None


@dataclass
class SeriesEnd:
    """The detector's end-of-series message."""

    series: object = None


@dataclass
class Ignored:
    """A message understood and not needed (e.g. a stream2 ``calibration`` message)."""

    kind: str = ""
