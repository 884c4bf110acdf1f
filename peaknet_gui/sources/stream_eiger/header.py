"""The detector configuration of a DECTRIS series header -> FrameMetadata (both stream formats).

Keys as the SIMPLON API names them (legacy ``dheader-1.0`` config part, ``stream2`` ``start``):
``x_pixel_size``/``y_pixel_size`` (m), ``detector_distance`` (m), ``beam_center_x``/``_y``
(pixels from the corner of the first pixel, like NeXus: index = value - 0.5), ``wavelength`` /
``incident_wavelength`` (Angstrom) or ``photon_energy`` / ``incident_energy`` (eV),
``count_time`` (s), ``description`` / ``detector_description``.
"""

from __future__ import annotations

import math
from typing import Optional

from ...frame import FrameMetadata

HC_EV_A = 12398.419843320026


def _num(cfg: dict, *keys) -> Optional[float]:
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, dict):  # SIMPLON REST style {"value": ...}
            v = v.get("value")
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            return f
    return None


def metadata_from_config(cfg: dict) -> FrameMetadata:
    energy = _num(cfg, "incident_energy", "photon_energy")
    if not energy or energy <= 0:
        wl = _num(cfg, "incident_wavelength", "wavelength")
        energy = HC_EV_A / wl if wl and wl > 0 else None
    bx, by = _num(cfg, "beam_center_x"), _num(cfg, "beam_center_y")
    desc = cfg.get("detector_description", cfg.get("description"))
    extra = {}
    for k in ("detector_serial_number", "sensor_material", "threshold_energy", "frame_time", "nimages",
              "number_of_images", "sensor_thickness", "bit_depth_image", "saturation_value", "series_unique_id"):
        v = cfg.get(k)
        if isinstance(v, (int, float, str, bool)):
            extra[k] = v
    return FrameMetadata(
        photon_energy_ev=energy,
        detector_distance_m=_num(cfg, "detector_distance"),
        pixel_size_m=_num(cfg, "x_pixel_size", "pixel_size_x"),
        beam_center_fs=None if bx is None else bx - 0.5,
        beam_center_ss=None if by is None else by - 0.5,
        detector=str(desc) if isinstance(desc, str) else None,
        exposure_time_s=_num(cfg, "count_time"),
        extra=extra,
    )


def detector_shape(cfg: dict) -> Optional[tuple]:
    """(ss, fs) from ``x/y_pixels_in_detector`` or ``image_size_x/y``."""
    x = _num(cfg, "image_size_x", "x_pixels_in_detector")
    y = _num(cfg, "image_size_y", "y_pixels_in_detector")
    return (int(y), int(x)) if x and y else None
