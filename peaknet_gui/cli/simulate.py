"""``peaknet simulate``: write a simulated serial-crystallography run with pixel labels.

    peaknet simulate --frames N --out RUN.cxi [--seed S] [--detector NAME] [--crop HxW]
        [--mix hits=0.6,blanks=0.2,rings=0.2] [--vary-geometry] [--distance MM] [--energy KEV]
        [--frames-per-cell K] [--background LO,HI] [--preset thaumatin|thermolysin-cspad]
        [--labels snr|observed|expected] [--xfel-spots] [--ranges JSON] [--strict-peak-labels] [--list-detectors]

Writes ``RUN.cxi`` (frames, labels, mask, true peaks, metadata; see
:mod:`peaknet_gui.sim.run_writer`) and ``RUN.geom`` (CrystFEL) beside it.  Same seed, same run.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from ..errors import InputError
from ..export.fileset import FileSetTransaction
from .argtypes import positive, positive_int

log = logging.getLogger(__name__)


def register(sub) -> None:
    from ..sim.detectors import DETECTORS

    p = sub.add_parser(
        "simulate",
        help="simulate a labelled serial-crystallography run (CXI + CrystFEL .geom)",
        description="Simulate still diffraction frames (Bragg spots of random crystals, backgrounds, artifact rings, "
        "calibrant rings, blanks) on a detector model, with per-pixel labels (0 background, 1 peak, 2 artifact, "
        "255 unlabelled) and the true peak list, as a CXI run plus a CrystFEL geometry.",
    )
    p.add_argument("--frames", "-n", type=int, required=False, help="number of frames")
    p.add_argument("--out", "-o", help="output CXI file (a .geom with the same stem is written beside it)")
    p.add_argument("--seed", "-s", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--detector", "-d", default="rayonix-mx340",
                   help=f"detector model: {', '.join(DETECTORS)} (default: %(default)s)")
    p.add_argument("--crop", metavar="HxW", help="simulate only a HxW window around the beam (e.g. 512x512)")
    p.add_argument("--mix", help="frame kinds and weights, e.g. 'hits,blanks' or 'hits=0.6,blanks=0.2,rings=0.2' "
                   "(kinds: hits, blanks, rings, calibrant; default hits=0.65,blanks=0.15,rings=0.17,calibrant=0.03)")
    p.add_argument("--vary-geometry", action="store_true",
                   help="draw the camera length (x0.6-1.5) and beam centre of the run at random")
    p.add_argument("--distance", type=positive, metavar="MM", help="camera length in mm (default: the detector's)")
    p.add_argument("--energy", type=positive, metavar="KEV", help="photon energy in keV (default: the detector's)")
    p.add_argument("--frames-per-cell", type=positive_int, default=8, help="frames per crystal form (default: %(default)s)")
    p.add_argument("--background", metavar="LO,HI",
                   help="range of the frames' median background in photons/pixel, drawn log-uniformly (default 0.05,20)")
    p.add_argument("--preset", choices=["thaumatin", "thermolysin-cspad"],
                   help="frames in the style of a real data set (its crystal, beam and background; varied strength)")
    p.add_argument("--labels", choices=["snr", "observed", "expected"], default="snr",
                   help="peak labels: every spot of expected integrated SNR >= 6, whatever its size (snr, default); "
                   "DIALS' dispersion test on the written noisy frame (observed: the rule of the weights before "
                   "2026-12-07); DIALS' test on expected photons (expected)")
    p.add_argument("--xfel-spots", action="store_true",
                   help="draw spots as XFEL stills of micro-crystals (sharp, faint, mostly 1-3 pixels) on any detector")
    p.add_argument("--ranges", metavar="JSON",
                   help="JSON overrides of the ranges frames are drawn from (SimRanges, peaknet_gui/sim/params.py), "
                   "e.g. '{\"xfel_sigma_px\": [0.1, 0.3], \"xfel_p_small\": 0.95}'")
    p.add_argument("--strict-peak-labels", action="store_true",
                   help="observed labels: every spot DIALS' test misses on the written frame is background (0), "
                   "not 'don't care' (255) when visible in expectation or of expected SNR >= 6")
    p.add_argument("--list-detectors", action="store_true", help="list the detector models and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def ranges_with_overrides(ranges, text: str):
    """``ranges`` (a SimRanges) with the fields of the JSON object ``text`` replaced; a range given
    as a list must hold as many numbers as the field's default, a number stays a number."""
    import dataclasses
    import json

    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"simulate: --ranges is not JSON ({e.msg}): {text!r}") from None
    if not isinstance(raw, dict):
        raise InputError(f"simulate: --ranges wants a JSON object of SimRanges fields, not {text!r}")
    fields = {f.name for f in dataclasses.fields(ranges)}
    out = {}
    for key, value in raw.items():
        if key not in fields:
            raise InputError(f"simulate: --ranges: no range called {key!r} (known: {', '.join(sorted(fields))})")
        old = getattr(ranges, key)
        if isinstance(old, tuple):
            ok = isinstance(value, list) and len(value) == len(old) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            if not ok:
                raise InputError(f"simulate: --ranges: {key} wants {len(old)} numbers like {list(old)}, not {value!r}")
            out[key] = tuple(float(v) for v in value)
        elif isinstance(old, bool):
            if not isinstance(value, bool):
                raise InputError(f"simulate: --ranges: {key} wants true or false, not {value!r}")
            out[key] = value
        else:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise InputError(f"simulate: --ranges: {key} wants a number like {old!r}, not {value!r}")
            out[key] = type(old)(value)
    return dataclasses.replace(ranges, **out)


def _frame_bytes(spec) -> int:
    """An upper bound of the bytes one simulated frame adds (uncompressed pixels, labels, mask)."""
    from ..sim.detectors import get_detector, parse_crop

    try:
        det = get_detector(spec.detector)
        shape = parse_crop(spec.crop) if spec.crop else det.shape
        ss, fs = shape[-2:]
    except Exception:  # noqa: BLE001 -- the run itself reports a bad detector or crop
        return 16 << 20
    return int(ss) * int(fs) * 6 + (1 << 16)


def _list_detectors() -> int:
    from ..sim.detectors import DETECTORS, get_detector

    for name in DETECTORS:
        d = get_detector(name)
        print(f"{name:20s} {d.shape[0]}x{d.shape[1]} ({len(d.geometry.panels)} panel{'s' if len(d.geometry.panels) > 1 else ''}), "
              f"{d.pixel_size_m * 1e3:.3f} mm, {d.distance_m * 1e3:.0f} mm, {d.wavelength_a:.4f} A: {d.description}")
    return 0


def run(args) -> int:
    import dataclasses

    import numpy as np

    from ..sim.labels import LabelRule
    from ..sim.params import SimRanges
    from ..sim.run import RunSpec, parse_mix, simulate_run

    if args.list_detectors:
        return _list_detectors()
    if args.frames is None or args.out is None:
        raise InputError("simulate: give --frames N and --out RUN.cxi")
    if args.frames < 1:
        raise InputError(f"simulate: --frames must be >= 1, not {args.frames}")
    if args.distance is not None and args.distance <= 0:
        raise InputError(f"simulate: --distance must be positive, not {args.distance}")
    if args.energy is not None and args.energy <= 0:
        raise InputError(f"simulate: --energy must be positive, not {args.energy}")
    if args.strict_peak_labels and args.labels != "observed":
        raise InputError("simulate: --strict-peak-labels goes with --labels observed (DIALS' test on the written frame)")
    ranges = SimRanges()
    if args.background:
        try:
            lo, hi = (float(v) for v in args.background.split(","))
        except ValueError as e:
            raise InputError(f"simulate: --background wants LO,HI in photons/pixel, not {args.background!r}") from e
        if not (0 < lo <= hi) or not np.isfinite(hi):
            raise InputError(f"simulate: --background needs 0 < LO <= HI, not {args.background!r}")
        ranges = dataclasses.replace(ranges, background_photons=(lo, hi))
    if args.xfel_spots:
        ranges = dataclasses.replace(ranges, xfel=True)
    if args.ranges:
        ranges = ranges_with_overrides(ranges, args.ranges)
    spec = RunSpec(
        n_frames=args.frames, seed=args.seed, detector=args.detector, mix=parse_mix(args.mix), crop=args.crop,
        frames_per_cell=args.frames_per_cell, vary_geometry=args.vary_geometry, ranges=ranges, preset=args.preset,
        rule=LabelRule(mode=args.labels).strict() if args.strict_peak_labels else LabelRule(mode=args.labels),
        distance_m=args.distance * 1e-3 if args.distance else None,
        photon_energy_ev=args.energy * 1e3 if args.energy else None,
    )
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=args.frames, unit="frame", desc="simulate", file=sys.stderr, disable=None)

    def progress(i, n):
        if bar is not None:
            bar.update(1)

    t0 = time.perf_counter()
    final = Path(os.path.abspath(args.out))
    txn = FileSetTransaction(final, [final.with_suffix(".geom")])
    stage = txn.begin()  # lock RUN.cxi, remove what killed runs left, stage beside it
    frame_bytes = _frame_bytes(spec)
    stopped = None

    def progress_and_space(i, n):
        progress(i, n)
        if i < n:
            txn.ensure_space(frame_bytes, final)  # stop before HDF5 meets a full disk

    try:
        txn.ensure_space(2 * frame_bytes, final)
        simulate_run(spec, txn.staged(final), progress=progress_and_space)
    except KeyboardInterrupt as e:  # Ctrl-C / SIGTERM: the writer kept the frames done
        stopped = e
    except BaseException:
        txn.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    if stopped is not None and not txn.staged(final).exists():
        txn.abort()
        raise stopped
    txn.commit()
    out = final
    if stopped is not None:
        print(f"simulate: stopped; {out} holds the frames done", file=sys.stderr)
        raise stopped
    dt = time.perf_counter() - t0
    print(f"wrote {out} and {out.with_suffix('.geom')}: {args.frames} frames of {args.detector}"
          f"{' ' + args.crop if args.crop else ''} in {dt:.1f} s ({dt / args.frames:.2f} s/frame)")
    return 0
