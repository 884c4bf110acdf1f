"""Metadata from the headers of fabio image formats other than CBF: ADSC/SMV ``.img``,
Rayonix/MarCCD ``.mccd``, ESRF EDF, TIFF.

Conventions follow dxtbx where the format leaves them open:

* ADSC ``BEAM_CENTER_X/Y`` are millimetres with X along the *slow* axis (dxtbx swaps them);
* MarCCD ``beam_x/beam_y`` are thousandths of a pixel, ``xtal_to_detector`` thousandths of a
  millimetre, ``source_wavelength`` femtometres, ``pixelsize_x`` nanometres;
* EDF (ESRF SAXS keywords) ``Center_1/2`` pixels (1 = fast), ``PSize_1`` m, ``SampleDistance`` m,
  ``WaveLength`` m.

Beam positions given as detector coordinates (origin at the first pixel's corner) become pixel
indices by subtracting half a pixel.
"""

from __future__ import annotations

import re
from typing import Optional

from ..frame import FrameMetadata
from . import units


def _f(header: dict, *keys) -> Optional[float]:
    for k in keys:
        v = header.get(k)
        if v is None:
            continue
        m = re.search(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", str(v))
        if m:
            try:
                return float(m.group(0))
            except ValueError:
                continue
    return None


def fabio_metadata(kind: str, header: dict) -> FrameMetadata:
    """FrameMetadata from a fabio header dict; ``kind`` is the fabio class name."""
    md = FrameMetadata()
    kind = kind.lower()
    if "adsc" in kind or "smv" in kind or ("DISTANCE" in header and "BEAM_CENTER_X" in header):
        wl = _f(header, "WAVELENGTH")
        if wl:
            md.photon_energy_ev = units.wavelength_to_ev(wl, "A")
        d = _f(header, "DISTANCE")
        if d is not None:
            md.detector_distance_m = d * 1e-3
        px = _f(header, "PIXEL_SIZE")
        if px:
            md.pixel_size_m = px * 1e-3
        bx, by = _f(header, "BEAM_CENTER_X"), _f(header, "BEAM_CENTER_Y")
        if px and bx is not None and by is not None:
            md.beam_center_fs, md.beam_center_ss = by / px - 0.5, bx / px - 0.5
            md.extra["beam_center_note"] = "ADSC BEAM_CENTER_X is along the slow axis (dxtbx convention)"
        t = _f(header, "TIME")
        if t is not None:
            md.exposure_time_s = t
        md.detector = str(header.get("DETECTOR_SN") or header.get("DETECTOR") or "ADSC") or None
    elif "marccd" in kind or "mccd" in kind:
        wl = _f(header, "source_wavelength")
        if wl:
            md.photon_energy_ev = units.wavelength_to_ev(wl * 1e-5, "A")
        d = _f(header, "xtal_to_detector")
        if d:
            md.detector_distance_m = d * 1e-6
        px = _f(header, "pixelsize_x")
        if px:
            md.pixel_size_m = px * 1e-9
        bx, by = _f(header, "beam_x"), _f(header, "beam_y")
        if bx and by:
            md.beam_center_fs, md.beam_center_ss = bx / 1000.0 - 0.5, by / 1000.0 - 0.5
        t = _f(header, "exposure_time")
        if t:
            md.exposure_time_s = t * 1e-3
        md.detector = "Rayonix/MarCCD"
    else:  # EDF and others with ESRF-style keywords
        wl = _f(header, "WaveLength", "wavelength")
        if wl:
            md.photon_energy_ev = units.wavelength_to_ev(wl, "m" if wl < 1e-6 else "A")
        d = _f(header, "SampleDistance")
        if d:
            md.detector_distance_m = d
        px = _f(header, "PSize_1")
        if px:
            md.pixel_size_m = px
        c1, c2 = _f(header, "Center_1"), _f(header, "Center_2")
        if c1 is not None and c2 is not None:
            md.beam_center_fs, md.beam_center_ss = c1 - 0.5, c2 - 0.5
        t = _f(header, "ExposureTime", "acq_expo_time", "count_time")
        if t is not None:
            md.exposure_time_s = t
        det = header.get("DetectorName") or header.get("Detector") or header.get("TitleBody")
        if det:
            md.detector = str(det)
    return md
