"""``peaknet info INPUT... [--geom G] [--dataset D] [--json]``: what a run holds.

Prints the frame count, frame shape and stored pixel type, the panels, the metadata of the first
frames (and a summary over the run), and the geometry that ``peaknet find`` and the GUI would
use: the ``--geom`` file, else one built from the file headers.  Reads no pixels.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

from ..errors import GeometryError, InputError

FIRST_FRAMES = 5
SUMMARY_SAMPLES = 200
SUMMARY_SECONDS = 2.0
_NUMERIC = ("photon_energy_ev", "wavelength_a", "detector_distance_m", "pixel_size_m", "beam_center_fs",
            "beam_center_ss", "exposure_time_s")


def register(sub) -> None:
    p = sub.add_parser(
        "info",
        help="show what a run holds (frames, shapes, metadata, geometry)",
        description="Show a run's frame count, frame shape and pixel type, panels, per-frame metadata and the "
        "detector geometry that will be used.  Reads headers only, no pixels.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, globs or directories of the run")
    p.add_argument("--geom", "-g", help="CrystFEL geometry file (default: from the file headers)")
    p.add_argument("--dataset", "-d", help="HDF5 dataset holding the images (default: detected)")
    p.add_argument("--frames", type=int, default=FIRST_FRAMES, help="frames whose metadata is listed (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def _open(args):
    """(source, geometry given, problems): falls back to metadata-only for unreadable NeXus data."""
    from ..sources import open_run
    from ..sources.h5util import is_hdf5
    from ..sources.hdf5 import HDF5Source

    geometry = None
    if args.geom:
        from ..geometry.crystfel_geom import read_geom

        geometry = read_geom(args.geom)
    inputs = args.inputs if len(args.inputs) > 1 else args.inputs[0]
    try:
        return open_run(inputs, dataset=args.dataset, geometry=geometry), geometry, []
    except GeometryError:
        raise
    except InputError as e:
        if len(args.inputs) == 1 and os.path.isfile(args.inputs[0]) and is_hdf5(args.inputs[0]):
            try:
                src = HDF5Source(args.inputs[0], dataset=args.dataset, require_data=False)
            except InputError:
                raise e from None
            if not src.warnings:
                src.close()
                raise
            return src, geometry, list(src.warnings)
        raise


def _geometry(src, given, shape):
    """(geometry or None, where it comes from)."""
    if given is not None:
        return given, f"{given.source or '--geom'} (--geom)"
    geom = src.geometry() if len(src) or shape else None
    if geom is not None:
        origin = getattr(src, "geometry_origin", None) or getattr(getattr(src, "inner", None), "geometry_origin", None)
        if origin == "beside":
            return geom, f"{geom.source} (beside the data file)"
        return geom, "file headers (flat detector from pixel size, distance and beam centre)"
    if shape is None:
        return None, "none (no frame shape known)"
    from ..geometry.from_metadata import geometry_from_metadata

    try:
        geometry_from_metadata(src.metadata(0), shape, source=getattr(src, "description", None))
    except GeometryError as e:
        return None, f"none: {e}"
    except InputError as e:
        return None, f"none: {e}"
    return None, "none"


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def collect(src, given_geometry, n_first: int = FIRST_FRAMES, problems=()) -> dict:
    """Everything ``peaknet info`` reports, as a JSON-ready dict."""
    n = len(src)
    shape = src.frame_shape()
    geom, geom_from = _geometry(src, given_geometry, shape)
    metas = []
    count_md = n if n else (1 if problems else 0)
    for i in range(min(n_first, count_md)):
        md = src.metadata(i)
        ev = src.event(i).lst_line() if i < n else None
        metas.append({"index": i, "event": ev, **{k: _clean(v) for k, v in md.as_dict().items()}})
    summary = {}
    if n > 0:
        step = max(1, n // SUMMARY_SAMPLES)
        idx = list(range(0, n, step))[:SUMMARY_SAMPLES]
        values = {k: [] for k in _NUMERIC}
        t0 = time.monotonic()
        done = []
        for i in idx:
            if done and time.monotonic() - t0 > SUMMARY_SECONDS:
                break  # headers of compressed image series are slow to reach: a sample is enough
            done.append(i)
            d = src.metadata(i).as_dict()
            for k in _NUMERIC:
                v = d.get(k)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    values[k].append(float(v))
        summary = {"frames_sampled": len(done)}
        for k, vs in values.items():
            if vs:
                summary[k] = {"min": min(vs), "max": max(vs), "mean": sum(vs) / len(vs), "n": len(vs)}
    panels = []
    if geom is not None:
        for p in geom.panels:
            panels.append({"name": p.name, "min_fs": p.min_fs, "max_fs": p.max_fs, "min_ss": p.min_ss,
                           "max_ss": p.max_ss, "pixel_size_m": p.pixel_size})
    geom_info = None
    if geom is not None:
        try:
            dist = geom.mean_camera_length()
        except GeometryError:
            dist = None
        beam = None
        try:
            beam = list(geom.beam_center(0)) if len(geom.panels) == 1 else None
        except Exception:  # pragma: no cover - degenerate panel vectors
            beam = None
        geom_info = {"from": geom_from, "panels": len(geom.panels), "camera_length_m": dist,
                     "photon_energy_ev": geom.photon_energy_ev, "beam_center_fs_ss": beam,
                     "data": geom.globals.get("data")}
    first_event = src.event(0) if n else None
    return {
        "inputs": getattr(src, "description", ""),
        "source": type(src).__name__ if not hasattr(src, "inner") or src.inner is None else type(src.inner).__name__,
        "dataset": getattr(src, "dataset", None),
        "frames": n,
        "frames_per_file": None if first_event is None or first_event.index is None else "many (file //index)",
        "frame_shape": list(shape) if shape else None,
        "dtype": src.raw_dtype(),
        "geometry": geom_info if geom_info else {"from": geom_from},
        "panels": panels,
        "metadata": metas,
        "summary": summary,
        "warnings": list(problems) + [w for w in getattr(src, "warnings", ()) if w not in problems],
    }


def _fmt(v, scale=1.0, digits=4, unit=""):
    if v is None:
        return "-"
    return f"{v * scale:.{digits}g}{unit}"


def print_text(info: dict, out=None) -> None:
    w = (out or sys.stdout).write
    w(f"Run:         {info['inputs']}  [{info['source']}{', ' + info['dataset'] if info['dataset'] else ''}]\n")
    w(f"Frames:      {info['frames']}\n")
    shape = info["frame_shape"]
    w(f"Frame shape: {shape[0]} x {shape[1]} (ss x fs)\n" if shape else "Frame shape: unknown\n")
    w(f"Pixel type:  {info['dtype'] or 'unknown'} in the file (read as float32)\n")
    g = info["geometry"]
    w(f"Geometry:    {g['from']}\n")
    if "panels" in g:
        w(f"             {g['panels']} panel(s), camera length {_fmt(g.get('camera_length_m'), 1e3, 5, ' mm')}, "
          f"photon energy {_fmt(g.get('photon_energy_ev'), 1, 6, ' eV')}")
        if g.get("beam_center_fs_ss"):
            fs, ss = g["beam_center_fs_ss"]
            w(f", beam centre (fs, ss) = ({fs:.2f}, {ss:.2f}) px")
        w("\n")
    panels = info["panels"]
    if panels:
        show = panels if len(panels) <= 8 else panels[:4] + [None] + panels[-2:]
        for p in show:
            if p is None:
                w(f"               ... {len(panels) - 6} more panels ...\n")
                continue
            w(f"               {p['name']}: fs {p['min_fs']}-{p['max_fs']}, ss {p['min_ss']}-{p['max_ss']}, "
              f"pixel {p['pixel_size_m'] * 1e6:.1f} um\n")
    if info["metadata"]:
        w(f"Metadata (first {len(info['metadata'])} of {info['frames']} frames):\n")
        w("  index  photon eV  wavelength A  distance mm  pixel um  beam fs    beam ss    exposure s  event\n")
        for m in info["metadata"]:
            w(f"  {m['index']:<6} {_fmt(m['photon_energy_ev'], 1, 7):<10} {_fmt(m['wavelength_a'], 1, 6):<13} "
              f"{_fmt(m['detector_distance_m'], 1e3, 6):<12} {_fmt(m['pixel_size_m'], 1e6, 4):<9} "
              f"{_fmt(m['beam_center_fs'], 1, 6):<10} {_fmt(m['beam_center_ss'], 1, 6):<10} "
              f"{_fmt(m['exposure_time_s'], 1, 4):<11} {m['event'] or '-'}\n")
        extra = {k: v for k, v in info["metadata"][0].items() if k not in _NUMERIC and k not in ("index", "event", "detector")}
        if info["metadata"][0].get("detector"):
            w(f"  detector: {info['metadata'][0]['detector']}\n")
        for k, v in extra.items():
            if v is not None:
                w(f"  {k}: {v}\n")
    s = info["summary"]
    if s and info["frames"] > 1:
        w(f"Summary over {s['frames_sampled']} of {info['frames']} frames:\n")
        for k in _NUMERIC:
            if k in s:
                d = s[k]
                w(f"  {k}: min {d['min']:.6g}, mean {d['mean']:.6g}, max {d['max']:.6g}\n")
    for msg in info["warnings"]:
        w(f"Warning: {msg}\n")


def run(args) -> int:
    src, given, problems = _open(args)
    try:
        info = collect(src, given, n_first=max(0, args.frames), problems=problems)
    finally:
        src.close()
    if args.json:
        json.dump(info, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print_text(info)
    return 1 if problems else 0
