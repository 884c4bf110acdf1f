"""``peaknet find --cluster ray``: the options and the run (find.py adds the one and calls the other)."""

from __future__ import annotations

import argparse

from .options import ClusterOptions


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from e
    if v < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return v


def add_cluster_options(p) -> None:
    g = p.add_argument_group("cluster (docs/cluster.md)")
    g.add_argument("--cluster", choices=("ray",), help="run on Ray workers instead of this process")
    g.add_argument("--address", help="Ray cluster to join: auto or HOST:PORT (default: start a local Ray instance)")
    g.add_argument("--workers", type=int, help="workers to start (default: as many as the cluster's CPUs/GPUs hold)")
    g.add_argument("--gpus-per-worker", type=_positive_float, default=0.0, help="GPUs per worker (default: 0)")
    g.add_argument("--cpus-per-worker", type=_positive_float, default=1.0, help="CPU cores per worker (default: 1)")
    g.add_argument("--follow", action="store_true",
                   help="keep analysing frames that appear (a growing HDF5 file, a directory) until none came "
                   "for --follow-idle seconds or Ctrl-C (with --cluster ray; without --address that is this machine)")
    g.add_argument("--follow-idle", type=_positive_float, default=60.0, metavar="S",
                   help="with --follow: stop after S seconds without a new frame (default: %(default)s)")


def uses_cluster(args) -> bool:
    return bool(getattr(args, "cluster", None))


def options_from_args(args) -> ClusterOptions:
    o = ClusterOptions(address=args.address, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                       cpus_per_worker=args.cpus_per_worker, batch=args.batch_size, follow=args.follow,
                       follow_idle_s=args.follow_idle)
    o.check()
    return o


def find_on_cluster(args, source, analyzer, session, indices, user_geometry=None):
    """The cluster twin of find's ``run_analysis`` call: same source, settings and session."""
    from .driver import run_on_ray
    from .progress import ClusterProgressBar
    from .spec import WorkerSpec

    options = options_from_args(args)
    hot = _prime_hot_pixels(source, analyzer, indices)
    threads = max(1, int(options.cpus_per_worker))  # GPU workers too: their post-processing threads
    spec = WorkerSpec.from_analyzer(analyzer, weights=args.weights, device=args.device, backend=args.backend,
                                    read_geometry=user_geometry, dataset=args.dataset,
                                    batch_size=args.batch_size, cpu_threads=threads)
    bar = ClusterProgressBar(len(indices), enabled=not args.no_progress)
    try:
        summary = run_on_ray(source, spec, session, indices=indices, options=options, progress=bar, limit=args.limit)
    finally:
        bar.close()
    if hot is not None:
        summary.hot_pixels = hot
    return summary


def _prime_hot_pixels(source, analyzer, indices):
    """The run's hot-pixel statistics primed once on the driver (as a local run primes them)
    and shipped to every worker, so no worker decides from its own first frames alone."""
    try:
        from ..pipeline.hot_scan import prime_hot_pixels
    except ImportError:
        return None
    return prime_hot_pixels(source, analyzer, indices)
