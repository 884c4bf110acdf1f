"""Metadata of CBF files: the Pilatus miniCBF header and the imgCIF categories of full CBFs.

miniCBF (``_array_data.header_contents``, lines ``# Key value``): ``Wavelength`` (A),
``Detector_distance`` (m), ``Pixel_size`` (m), ``Beam_xy`` (pixels), ``Exposure_time`` (s),
``Count_cutoff``, ``Detector``, angles.  ``Beam_xy`` is read like dxtbx does -- detector
coordinates whose origin is the corner of the first pixel -- so the beam centre in pixel indices
is ``Beam_xy - 0.5``.

Full imgCIF: wavelength (``_diffrn_radiation_wavelength``), pixel size
(``_array_element_size``), and the detector position from the axis model (``_axis``,
``_array_structure_list(_axis)``, ``_diffrn_scan_frame_axis``): the beam centre is where the
beam meets the detector plane, in pixel indices (imgCIF displacements refer to the *centre* of
the first pixel), the distance the sample-to-plane distance.  These values override the
miniCBF header when both are present (the header's values are kept in ``extra``).
"""

from __future__ import annotations

import re
from typing import Optional

import numpy as np

from ..frame import FrameMetadata
from . import units
from .cif_text import first_float, parse_cif, rows

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_minicbf_header(text: str) -> dict:
    """``{key: value string}`` of the ``# Key value`` lines of a Pilatus header."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("#"):
            continue
        line = line.lstrip("#").strip()
        m = re.match(r"([A-Za-z_][A-Za-z0-9_\-]*)\s*[:=]?\s*(.*)$", line)
        if m:
            out.setdefault(m.group(1), m.group(2).strip())
    return out


def _num(s: Optional[str], k: int = 0) -> Optional[float]:
    if not s:
        return None
    nums = re.findall(_NUM, s)
    return float(nums[k]) if len(nums) > k else None


def minicbf_metadata(hdr: dict, md: FrameMetadata) -> dict:
    """Fill ``md`` from a parsed Pilatus header; returns the pixel rules hints (``count_cutoff``)."""
    hints = {}
    wl = _num(hdr.get("Wavelength"))
    if wl and wl > 0:
        md.photon_energy_ev = units.wavelength_to_ev(wl, "A")
    dist = _num(hdr.get("Detector_distance"))
    if dist is not None:
        unit = (hdr.get("Detector_distance", "").split() + ["m"])[1]
        md.detector_distance_m = units.length_to_m(dist, unit) or dist
        if md.detector_distance_m < 0.02:
            md.extra["metadata_notes"] = (f"Detector_distance {dist} {unit} in the header looks like a placeholder; "
                                          f"give the real distance in a .geom")
    px = _num(hdr.get("Pixel_size"))
    if px:
        unit = (hdr.get("Pixel_size", "").split() + ["m"])[1]
        md.pixel_size_m = units.length_to_m(px, unit) or px
    bx, by = _num(hdr.get("Beam_xy"), 0), _num(hdr.get("Beam_xy"), 1)
    if bx is not None and by is not None:
        md.beam_center_fs, md.beam_center_ss = bx - 0.5, by - 0.5
        md.extra["beam_xy_header"] = f"{bx}, {by}"
    exp = _num(hdr.get("Exposure_time"))
    if exp is not None:
        md.exposure_time_s = exp
    if hdr.get("Detector"):
        md.detector = hdr["Detector"].strip()
    cutoff = _num(hdr.get("Count_cutoff"))
    if cutoff:
        hints["count_cutoff"] = cutoff
        md.extra["count_cutoff"] = cutoff
    for key, name in (("Start_angle", "start_angle_deg"), ("Angle_increment", "angle_increment_deg"),
                      ("Detector_2theta", "detector_2theta_deg"), ("Flux", "flux"),
                      ("Filter_transmission", "filter_transmission"), ("Exposure_period", "exposure_period_s")):
        v = _num(hdr.get(key))
        if v is not None:
            md.extra[name] = v
    thr = _num(hdr.get("Threshold_setting"))
    if thr is not None:
        md.extra["threshold_ev"] = thr
    return hints


# --- full imgCIF axis model ----------------------------------------------------------------------
def _rotate(v: np.ndarray, axis: np.ndarray, angle_deg: float) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    t = np.radians(angle_deg)
    return v * np.cos(t) + np.cross(a, v) * np.sin(t) + a * np.dot(a, v) * (1 - np.cos(t))


def _f(s) -> float:
    try:
        return float(s)
    except (TypeError, ValueError):
        return 0.0


def cif_detector_model(cif: dict) -> Optional[dict]:
    """Beam centre (pixel indices), distance (m) and pixel size (m) from the imgCIF axis model."""
    axes = {}
    for r in rows(cif, "_axis.id", "_axis.type", "_axis.depends_on", "_axis.vector[1]", "_axis.vector[2]",
                  "_axis.vector[3]"):
        axes[r[0]] = {"type": r[1].lower(), "depends_on": r[2], "vector": np.array([_f(x) for x in r[3:6]])}
    if not axes:
        return None
    for r in rows(cif, "_axis.id", "_axis.offset[1]", "_axis.offset[2]", "_axis.offset[3]"):
        if r[0] in axes:
            axes[r[0]]["offset"] = np.array([_f(x) for x in r[1:4]])
    settings = {}
    for r in rows(cif, "_diffrn_scan_axis.axis_id", "_diffrn_scan_axis.angle_start", "_diffrn_scan_axis.displacement_start"):
        settings[r[0]] = (_f(r[1]), _f(r[2]))
    for r in rows(cif, "_diffrn_scan_frame_axis.axis_id", "_diffrn_scan_frame_axis.angle", "_diffrn_scan_frame_axis.displacement"):
        settings[r[0]] = (_f(r[1]), _f(r[2]))
    structure = {r[1]: (r[2], r[3]) for r in rows(cif, "_array_structure_list.array_id", "_array_structure_list.index",
                                                   "_array_structure_list.axis_set_id", "_array_structure_list.direction")}
    if "1" not in structure or "2" not in structure:
        return None
    elem = {r[0]: (_f(r[1]), _f(r[2])) for r in rows(cif, "_array_structure_list_axis.axis_id",
                                                       "_array_structure_list_axis.displacement",
                                                       "_array_structure_list_axis.displacement_increment")}
    fast_axis, fast_dir = structure["1"]
    slow_axis, slow_dir = structure["2"]
    if fast_axis not in axes or slow_axis not in axes or fast_axis not in elem or slow_axis not in elem:
        return None

    def position(i: float, j: float) -> Optional[np.ndarray]:
        disp = {fast_axis: elem[fast_axis][0] + i * elem[fast_axis][1] * (1 if fast_dir.lower() != "decreasing" else -1),
                slow_axis: elem[slow_axis][0] + j * elem[slow_axis][1] * (1 if slow_dir.lower() != "decreasing" else -1)}
        # chain from the innermost element axis outwards to the root (either may depend on the other)
        for start in (fast_axis, slow_axis):
            chain, name, seen = [], start, set()
            while name and name != "." and name not in seen:
                if name not in axes:
                    return None
                seen.add(name)
                chain.append(name)
                name = axes[name]["depends_on"]
            if fast_axis in chain and slow_axis in chain:
                break
        else:
            return None
        p = np.zeros(3)
        for name in chain:
            ax = axes[name]
            off = ax.get("offset", np.zeros(3))
            if ax["type"] == "rotation":
                angle = settings.get(name, (0.0, 0.0))[0]
                p = _rotate(p, ax["vector"], angle) + off
            else:
                d = disp.get(name, settings.get(name, (0.0, 0.0))[1])
                p = p + off + d * ax["vector"]
        return p

    o, pf, ps = position(0, 0), position(1, 0), position(0, 1)
    if o is None or pf is None or ps is None:
        return None
    fvec, svec = pf - o, ps - o
    src = axes.get("SOURCE", {}).get("vector", np.array([0.0, 0.0, 1.0]))
    beam = -src / (np.linalg.norm(src) or 1.0)
    normal = np.cross(fvec, svec)
    if np.linalg.norm(normal) == 0 or abs(np.dot(normal, beam)) < 1e-12:
        return None
    t = np.dot(normal, o) / np.dot(normal, beam)
    hit = t * beam - o
    m = np.array([fvec, svec]).T
    (u, v), *_ = np.linalg.lstsq(m, hit, rcond=None)
    n = normal / np.linalg.norm(normal)
    pixel = first_float(cif, "_array_element_size.size")
    return {
        "beam_center_fs": float(u),
        "beam_center_ss": float(v),
        "detector_distance_m": float(abs(np.dot(n, o))) * 1e-3,
        "pixel_size_m": pixel if pixel else float(np.linalg.norm(fvec)) * 1e-3,
        "tilt_deg": float(np.degrees(np.arccos(min(1.0, abs(np.dot(n, beam)))))),
    }


def cbf_metadata(header_text: str) -> tuple:
    """(FrameMetadata, hints) from the text part of a CBF file (everything before the binary)."""
    md = FrameMetadata()
    hints: dict = {}
    cif = parse_cif(header_text)
    contents = cif.get("_array_data.header_contents", [""])[0]
    conv = (cif.get("_array_data.header_convention", [""])[0] or "").upper()
    if contents or "PILATUS" in conv or "SLS" in conv:
        pil = parse_minicbf_header(contents or header_text)
        hints.update(minicbf_metadata(pil, md))
        md.extra["header_convention"] = conv or "PILATUS"
    # full imgCIF categories override the miniCBF values
    wl = first_float(cif, "_diffrn_radiation_wavelength.wavelength")
    if wl and wl > 0:
        md.photon_energy_ev = units.wavelength_to_ev(wl, "A")
    model = cif_detector_model(cif)
    if model:
        tilt = model.pop("tilt_deg")
        md.extra["cif_detector_tilt_deg"] = tilt
        if tilt < 0.01:  # detector face-on to the beam: the axis model gives the flat geometry
            md.extra["geometry_source"] = "imgCIF axes"
            if md.beam_center_fs is not None:
                md.extra["beam_center_header_fs"] = md.beam_center_fs
                md.extra["beam_center_header_ss"] = md.beam_center_ss
            if md.detector_distance_m is not None:
                md.extra["detector_distance_header_m"] = md.detector_distance_m
            for k, v in model.items():
                setattr(md, k, v)
        else:  # tilted (2-theta arm): no flat model is right; keep the header's values and say so
            md.extra["geometry_source"] = "miniCBF header"
            md.extra["cif_beam_center_fs"] = model["beam_center_fs"]
            md.extra["cif_beam_center_ss"] = model["beam_center_ss"]
            md.extra["metadata_notes"] = (f"the detector is tilted by {tilt:.2f} deg to the beam (imgCIF axes); "
                                          f"the header beam centre and distance describe it only approximately")
            if md.pixel_size_m is None:
                md.pixel_size_m = model["pixel_size_m"]
    overload = first_float(cif, "_array_intensities.overload")
    if overload and "count_cutoff" not in hints:
        hints["count_cutoff"] = overload
        md.extra["count_cutoff"] = overload
    exp = first_float(cif, "_diffrn_scan_frame.integration_time")
    if exp is not None and md.exposure_time_s is None:
        md.exposure_time_s = exp
    det = cif.get("_diffrn_detector.type", [None])[0]
    if det and not md.detector:
        md.detector = det
    return md, hints
