"""``peaknet calibrate``: refine beam centre, distance and tilt on a calibrant frame (silver behenate...).

    peaknet calibrate FRAME --calibrant AgBh (--energy keV | --wavelength A) [--geom G]
        [--distance mm] [--beam-center FS SS] [--pixel-size mm] [--dataset D] [--event N]
        [--tilt auto|fit|fixed] [--fit-rot3] --out DIR

The rough start comes from ``--geom`` and/or the frame's header, overridden by ``--distance``,
``--beam-center`` (pixel indices, first pixel centre at 0) and ``--pixel-size``.  The tilt
(pyFAI rot1, rot2) is refined and kept when the data determine it (``--tilt auto``, the
default; ``fit`` keeps it regardless, ``fixed`` does not refine it; ``--fit-tilt`` = ``fit``).
Prints the direct-beam centre, distance, PONI, tilt and its direction with 1-sigma
uncertainties, residuals per ring (and per panel), and the rings used; writes
``DIR/calibrated.geom`` (CrystFEL), ``DIR/calibrated.poni`` (pyFAI) and
``DIR/calibration.json`` (the figures).  A frame with too few rings or rings that do not fit
the energy ends with a message saying so (exit status 2).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import CalibrationError, GeometryError, WriteError
from ..export.transaction import OutputTransaction, os_error_message
from .argtypes import positive

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="refine beam centre, detector distance and tilt on a calibrant frame (AgBh, CeO2, LaB6, Si...)",
        description="Fit the beam centre, detector distance and tilt to the powder rings of a calibrant "
        "frame with pyFAI, starting from a rough geometry; write calibrated.geom (CrystFEL) and calibrated.poni (pyFAI).",
    )
    p.add_argument("frame", metavar="FRAME", help="calibrant frame (HDF5/NeXus/CXI, CBF, EDF, TIFF...)")
    p.add_argument("--calibrant", "-c", default="AgBh", help="pyFAI calibrant name (default: %(default)s)")
    e = p.add_mutually_exclusive_group()
    e.add_argument("--energy", type=positive, metavar="KEV", help="photon energy in keV")
    e.add_argument("--wavelength", type=positive, metavar="A", help="wavelength in Angstrom")
    p.add_argument("--geom", "-g", help="starting CrystFEL geometry file")
    p.add_argument("--distance", type=positive, metavar="MM", help="rough sample-detector distance in mm")
    p.add_argument("--beam-center", type=float, nargs=2, metavar=("FS", "SS"),
                   help="rough beam centre in pixel indices (first pixel centre at 0); may lie off the detector")
    p.add_argument("--pixel-size", type=positive, metavar="MM", help="pixel size in mm (default: from the file or geometry)")
    p.add_argument("--dataset", "-d", help="HDF5 dataset of the images (default: found automatically)")
    p.add_argument("--event", type=int, default=0, help="frame index inside a multi-frame file (default: 0)")
    p.add_argument("--tilt", choices=("auto", "fit", "fixed"), default="auto",
                   help="detector tilt (pyFAI rot1, rot2): auto = refine and keep it when the rings determine it, "
                        "fit = keep it regardless, fixed = keep the start's (default: %(default)s)")
    p.add_argument("--fit-tilt", action="store_true", help="same as --tilt fit")
    p.add_argument("--fit-rot3", action="store_true", help="also refine rot3 (rotation about the beam; rarely determined)")
    p.add_argument("--search", type=float, default=64.0, metavar="PX",
                   help="how far from the rough beam centre to search, in pixels (default: %(default)s)")
    p.add_argument("--distance-tolerance", type=float, default=0.25, metavar="FRACTION",
                   help="how far (relative) the distance may be from the rough one (default: %(default)s)")
    p.add_argument("--min-rings", type=int, default=2, help="fewest rings to fit (default: %(default)s)")
    p.add_argument("--out", "-o", default="calibration", help="output directory (default: %(default)s)")
    p.set_defaults(func=run)


def _wavelength(args, frame, geom):
    from ..geometry.detector import HC_EV_A

    if args.wavelength is not None:
        if args.wavelength <= 0:
            raise CalibrationError(f"--wavelength must be positive, not {args.wavelength}")
        return args.wavelength
    if args.energy is not None:
        if args.energy <= 0:
            raise CalibrationError(f"--energy must be positive, not {args.energy}")
        return HC_EV_A / (args.energy * 1e3)
    if frame.metadata.photon_energy_ev:
        return HC_EV_A / frame.metadata.photon_energy_ev
    if geom is not None and geom.photon_energy_ev:
        return HC_EV_A / geom.photon_energy_ev
    raise CalibrationError(f"{args.frame}: the photon energy is unknown; give --energy (keV) or --wavelength (A)")


def start_geometry(args, frame):
    """The rough starting geometry from --geom, the frame's header and the command-line overrides."""
    from ..calib.search import shifted_geometry
    from ..geometry.crystfel_geom import read_geom
    from ..geometry.detector import Geometry

    md = frame.metadata
    shape = frame.data.shape
    if args.geom:
        geom = read_geom(args.geom)
        geom.check_data_shape(shape, f"{args.frame}")
        if args.pixel_size is not None:
            for p in geom.panels:
                p.res = 1.0 / (args.pixel_size * 1e-3)
        if args.distance is not None:
            geom = shifted_geometry(geom, 0.0, 0.0, args.distance * 1e-3)
        if args.beam_center is not None:
            fs0, ss0 = geom.beam_center(0)
            p0 = geom.panels[0]
            # lab position (pixels) of the requested beam centre on panel 0's plane
            u = args.beam_center[0] - p0.min_fs + 0.5
            v = args.beam_center[1] - p0.min_ss + 0.5
            x = p0.corner_x + u * p0.fs[0] + v * p0.ss[0]
            y = p0.corner_y + u * p0.fs[1] + v * p0.ss[1]
            geom = shifted_geometry(geom, x, y)
        if geom.clen is None and geom.clen_path is not None:
            if args.distance is None and not md.detector_distance_m:
                raise GeometryError(f"{args.geom}: clen comes from the data file ({geom.clen_path}); give --distance")
            geom.clen = args.distance * 1e-3 if args.distance is not None else md.detector_distance_m
            geom.clen_path = None
        return geom
    pix = args.pixel_size * 1e-3 if args.pixel_size is not None else md.pixel_size_m
    dist = args.distance * 1e-3 if args.distance is not None else md.detector_distance_m
    if args.beam_center is not None:
        bc = tuple(args.beam_center)
    elif md.beam_center_fs is not None and md.beam_center_ss is not None:
        bc = (md.beam_center_fs, md.beam_center_ss)
    else:
        bc = ((shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0)
        log.info("no beam centre given: starting from the frame centre (%.1f, %.1f)", *bc)
    missing = [n for n, v in (("--pixel-size", pix), ("--distance", dist)) if not v]
    if missing:
        raise CalibrationError(f"{args.frame}: the file does not say the {' and '.join(m[2:] for m in missing)}; "
                               f"give {' and '.join(missing)} (or --geom)")
    return Geometry.single_panel(shape, pix, dist, bc[0], bc[1], photon_energy_ev=md.photon_energy_ev)


def run(args) -> int:
    from ..calib._quiet import quiet_pyfai

    with quiet_pyfai():
        return _run(args)


def _run(args) -> int:
    from ..calib.frame_input import read_calibrant_frame
    from ..calib.refine import calibrate
    from ..geometry.detector import HC_EV_A

    frame = read_calibrant_frame(args.frame, dataset=args.dataset, index=args.event)
    geom = start_geometry(args, frame)
    wl = _wavelength(args, frame, geom)
    if args.dataset and "data" not in geom.globals:
        geom.globals["data"] = args.dataset
    print(f"{args.frame}: {frame.data.shape[1]}x{frame.data.shape[0]} pixels, {args.calibrant} at "
          f"{wl:.5f} A ({HC_EV_A / wl / 1e3:.4f} keV); start: beam centre ({geom.beam_center(0)[0]:.2f}, "
          f"{geom.beam_center(0)[1]:.2f}) px, distance {geom.mean_camera_length() * 1e3:.2f} mm")
    tilt = "fit" if args.fit_tilt else args.tilt
    result = calibrate(frame, geom, args.calibrant, wl, fit_tilt=tilt, fit_rot3=args.fit_rot3, search_px=args.search,
                       distance_tolerance=args.distance_tolerance, min_rings=args.min_rings)
    out = Path(args.out)
    # the three files are one set: staged beside OUT and put in place together (export.transaction)
    txn = OutputTransaction(out, CALIBRATION_SET)
    stage = txn.begin()
    try:
        _write_set(args, result, geom, stage, out)
    except BaseException:
        txn.abort()
        raise
    txn.commit()
    print(result.summary())
    print(f"wrote {out / 'calibrated.geom'}, {out / 'calibrated.poni'} and {out / 'calibration.json'}")
    return 0


CALIBRATION_SET = ("calibrated.geom", "calibrated.poni", "calibration.json")


def _write_set(args, result, geom, stage: Path, out: Path) -> None:
    from ..calib.writers import write_calibrated_geom, write_result_poni
    from ..export.atomic import atomic_write

    try:
        write_calibrated_geom(result, stage / "calibrated.geom")
        write_result_poni(result, stage / "calibrated.poni")
    except OSError as e:
        raise WriteError(os_error_message(out, e)) from e
    summary = {"frame": str(args.frame), **result.as_dict(),
               "start_beam_center": list(geom.beam_center(0)), "start_distance_mm": geom.mean_camera_length() * 1e3}
    try:
        with atomic_write(stage / "calibration.json") as fh:
            json.dump(summary, fh, indent=2)
    except OSError as e:
        raise WriteError(os_error_message(out / "calibration.json", e)) from e

