"""``peaknet find``: find peaks in every frame of a run and write CrystFEL-ready files.

    peaknet find INPUT... [--geom G] [--out DIR] [--device auto|cpu|cuda] [--weights W]
        [--algorithm peaknet|peakfinder8] [--peak-threshold P] [--min-confidence C] [--min-pixel-snr S] [--mask-threshold P]
        [--min-peaks N] [--formats stream,lst,cxi,mask] [--dataset D] [--batch-size B] ...

A progress bar shows frames/s and hits; Ctrl-C or SIGTERM stops after closing the output
files, which then hold exactly the frames done; a summary (frames, hits, hit rate, mean peaks,
ms/frame, device) is printed at the end.  The output set is written as a whole
(:mod:`peaknet_gui.export.transaction`).

A live stream (``tcp://HOST:PORT``: a DECTRIS Eiger; ``karabo-bridge://HOST:PORT[/SOURCE]``)
is read until ``--frames N`` arrived, ``--until-series-end`` or ``--stream-timeout`` seconds
without a frame (:mod:`.find_stream`).

Exit status: 0 every frame analysed; 3 completed, but inputs were skipped (listed in
summary.json ``skipped`` and warned about); 2 an error (nothing replaced when it was a write
error); 130 Ctrl-C, 143 SIGTERM (the frames done are kept, ``status: interrupted``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..cluster.cli import add_cluster_options, uses_cluster
from ..errors import GeometryError, InputError
from .argtypes import confidence, count, finite, nonnegative, pixel_snr, positive, positive_int, probability
from .find_stream import add_stream_options, find_stream, is_stream_input

log = logging.getLogger(__name__)

FORMATS = ("stream", "lst", "cxi", "mask")
EXIT_SKIPPED = 3  # completed, but some inputs could not be read (summary.json "skipped")
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def _formats(text: str) -> list:
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    if not names:
        raise argparse.ArgumentTypeError(f"no format given; choose one or more of {', '.join(FORMATS)}")
    return names


def register(sub) -> None:
    p = sub.add_parser(
        "find",
        help="find peaks in a run and export them for CrystFEL",
        description="Find Bragg peaks (PeakNet or peakfinder8) in every frame of a run; write peaks.stream, "
        "hits.lst, hits.cxi + peaks.geom, mask.h5 and summary.json.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, globs or directories of the run")
    p.add_argument("--geom", "-g", help="CrystFEL geometry file (default: from the file headers)")
    p.add_argument("--out", "-o", default="peaknet_out", help="output directory (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"), help="CPU runtime (default: fastest)")
    p.add_argument("--weights", help="model weights (default: the shipped model)")
    p.add_argument("--algorithm", default="peaknet", choices=("peaknet", "peakfinder8"))
    p.add_argument("--peak-threshold", type=probability, help="peak-class probability threshold (default: argmax)")
    p.add_argument("--mask-threshold", type=probability, help="artifact-class probability threshold (default: argmax)")
    p.add_argument("--dilation", type=count, default=0, help="grow the auto-mask by N pixels")
    p.add_argument("--no-whole-rings", action="store_true",
                   help="mask only the ring pixels the network labels (default: powder rings are followed along their arcs)")
    p.add_argument("--min-peaks", type=count, default=10, help="peaks for a frame to be a hit (default: %(default)s)")
    p.add_argument("--min-pixels", type=positive_int, default=1)
    p.add_argument("--max-pixels", type=positive_int, default=10000)
    p.add_argument("--max-peaks", type=positive_int, default=2048)
    p.add_argument("--min-snr", type=nonnegative, default=0.0, help="minimum peak SNR (total intensity / local noise)")
    p.add_argument("--min-confidence", type=confidence,
                   help="highest peak probability a peak needs (default: the weights' fitted operating point; 0: every component)")
    p.add_argument("--min-pixel-snr", type=pixel_snr,
                   help="local-background sigmas a peak's brightest pixel needs (default: the weights' fitted operating "
                   "point, with its second tier for peaks the model is sure of; 0: no test; either this or "
                   "--min-confidence replaces both tiers)")
    p.add_argument("--keep-ring-spots", action="store_true",
                   help="keep peaks that crowd on a powder ring (ice, salt; default: moved to the auto-mask)")
    p.add_argument("--min-res", type=positive, help="finest d-spacing kept, Angstrom")
    p.add_argument("--max-res", type=positive, help="coarsest d-spacing kept, Angstrom")
    p.add_argument("--pf8-threshold", type=finite, default=0.0, help="peakfinder8 ADC threshold (detector units)")
    p.add_argument("--pf8-min-snr", type=nonnegative, default=5.0, help="peakfinder8 per-pixel SNR threshold")
    p.add_argument("--mask", dest="mask_file",
                   help="static mask file: HDF5 (e.g. the GUI mask editor's mask.h5, /mask, 1 = bad), .npy, EDF")
    p.add_argument("--mask-dataset", help="HDF5 dataset of the mask (default: /mask, /data/data, ... or the only 2-D one)")
    p.add_argument("--mask-polarity", default="auto", choices=("auto", "bad_nonzero", "good_nonzero"),
                   help="auto: the file's polarity attribute, else the minority value is bad")
    p.add_argument("--formats", type=_formats, default=list(FORMATS), help="comma-separated subset of stream,lst,cxi,mask")
    p.add_argument("--dataset", help="HDF5 dataset of the frames (when a file holds several)")
    p.add_argument("--batch-size", type=positive_int, help="frames per model call (default: 1 on CPU, 8 on GPU)")
    p.add_argument("--limit", type=count, help="analyse only the first N frames")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_stream_options(p)
    add_cluster_options(p)
    p.set_defaults(func=run)


def _settings(args):
    from ..pipeline.settings import FinderSettings, MaskSettings

    finder = FinderSettings(
        algorithm=args.algorithm,
        peak_threshold=args.peak_threshold,
        min_confidence=args.min_confidence,
        min_pixel_snr=args.min_pixel_snr,
        drop_ring_spots=not args.keep_ring_spots,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        min_res_a=args.min_res,
        max_res_a=args.max_res,
        max_peaks=args.max_peaks,
        min_peaks_for_hit=args.min_peaks,
        min_snr=args.min_snr,
        pf8_adc_threshold=args.pf8_threshold,
        pf8_min_snr=args.pf8_min_snr,
    )
    mask = MaskSettings(artifact_threshold=args.mask_threshold, dilation=max(0, args.dilation),
                        whole_rings=not args.no_whole_rings)
    return finder, mask


def _geometry(source, first):
    """The geometry the files imply, else one from frame 0's metadata, else None."""
    geom = source.geometry()
    if geom is not None:
        return geom
    try:
        from ..geometry.from_metadata import geometry_from_metadata

        return geometry_from_metadata(first.metadata, first.shape, source=first.event.path)
    except GeometryError as e:
        log.warning("no geometry (%s): peaks will have no resolution; give --geom for CrystFEL output", e)
        return None


class _Progress:
    """tqdm bar: frames/s from tqdm, hits and hit rate in the postfix."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="frame", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def __call__(self, p) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"hits {p.hits} ({100 * p.hit_rate:.0f}%), peaks {p.result.n_peaks if p.result else 0}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _open_session(out_dir: Path, geometry, formats: list, analyzer):
    from ..export.session import ExportSession

    settings = {"finder": analyzer.finder.as_dict(), "mask": analyzer.mask.as_dict(), "model": analyzer.model_info}
    command = "peaknet " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0] else "peaknet find"
    return ExportSession(out_dir, geometry, formats=set(formats), command_line=command, settings=settings)


def run(args) -> int:
    from ..masks.static import static_mask
    from ..pipeline.analyzer import FrameAnalyzer
    from ..pipeline.run import run_analysis
    from ..sources import open_run

    if args.batch_size is not None and args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, not {args.batch_size}")
    if args.min_res is not None and args.max_res is not None and args.min_res >= args.max_res:
        raise InputError(f"--min-res {args.min_res:g} must be below --max-res {args.max_res:g} (min-res is the finest "
                         "d-spacing kept, max-res the coarsest)")
    if args.min_pixels > args.max_pixels:
        raise InputError(f"--min-pixels {args.min_pixels} is above --max-pixels {args.max_pixels}")
    if args.follow and not uses_cluster(args):
        raise InputError("--follow needs --cluster ray (without --address it runs on this machine)")
    user_geometry = None
    if args.geom:
        from ..geometry.crystfel_geom import read_geom

        user_geometry = read_geom(args.geom)
    if is_stream_input(args.inputs):
        return find_stream(args, user_geometry)
    source = open_run(args.inputs if len(args.inputs) > 1 else args.inputs[0], dataset=args.dataset, geometry=user_geometry)
    try:
        n = len(source)
        skipped_files = _skipped_inputs(source)
        if n == 0:
            why = f" ({len(skipped_files)} unreadable: {skipped_files[0][0]}: {skipped_files[0][1]})" if skipped_files else ""
            raise InputError(f"{' '.join(args.inputs)}: no frames found{why}")
        indices = list(range(n if args.limit is None else min(n, max(0, args.limit))))
        first = source[0]
        geometry = user_geometry or _geometry(source, first)
        shape = first.shape
        if geometry is not None:
            geometry.check_data_shape(shape, f"frames of {first.event.path}")
        static = static_mask(shape, mask_file=args.mask_file, mask_dataset=args.mask_dataset, polarity=args.mask_polarity,
                             geometry=geometry)
        finder, mask = _settings(args)
        analyzer = FrameAnalyzer(
            args.algorithm, weights=args.weights, device="cpu" if uses_cluster(args) else args.device,  # cluster: workers' device
            geometry=geometry, finder=finder, mask=mask,
            static_mask=static, backend=args.backend,
        )
        if args.algorithm == "peaknet":
            analyzer.predictor  # load the model (and report problems) before files are created
            for w in analyzer.predictor.warnings:
                log.warning(w)
        out_dir = Path(args.out)
        session = _open_session(out_dir, geometry, args.formats, analyzer)
        for path, reason in skipped_files:
            session.add_skipped(path, None, reason)
        if uses_cluster(args):
            from ..cluster.cli import find_on_cluster

            summary = find_on_cluster(args, source, analyzer, session, indices, user_geometry)
        else:
            progress = _Progress(len(indices), enabled=not args.no_progress)
            try:
                summary = run_analysis(source, analyzer, session, indices=indices, batch_size=args.batch_size, progress=progress)
            finally:
                progress.close()
    finally:
        source.close()
    print(summary.format())
    if skipped_files:
        print(f"skipped     {len(skipped_files)} unreadable file(s)")
    print(f"output      {out_dir}/")
    if summary.interrupted:
        why = "terminated (SIGTERM)" if getattr(summary, "terminated", False) else "interrupted"
        print(f"peaknet: {why}; the files hold the frames done", file=sys.stderr)
        return EXIT_TERMINATED if getattr(summary, "terminated", False) else EXIT_INTERRUPTED
    n_skipped = len(skipped_files) + len(summary.errors)
    if n_skipped:
        print(f"peaknet: completed with {n_skipped} input(s) skipped (listed in {out_dir}/summary.json)",
              file=sys.stderr)
        return EXIT_SKIPPED
    return 0


def _skipped_inputs(source) -> list:
    """(path, reason) of the files the source could not read (warned about here, once)."""
    out = [(str(p), str(r)) for p, r in getattr(source, "skipped", [])]
    for p, r in out:
        log.warning("skipping %s", r if r.startswith(p) else f"{p}: {r}")
    return out
