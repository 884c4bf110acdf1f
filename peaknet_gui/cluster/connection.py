"""Joining or starting Ray for one run, and checking that the workers asked for can be placed."""

from __future__ import annotations

import logging
import os
import socket

from .options import ClusterError, ClusterOptions

log = logging.getLogger(__name__)

INSTALL_HINT = "install it with: pip install 'peaknet_gui[cluster]' (bash scripts/bootstrap.sh setup does)"


def import_ray():
    try:
        import ray
    except ImportError as e:
        raise ClusterError(f"--cluster ray needs Ray, which is not installed ({e}); {INSTALL_HINT}") from e
    return ray


class RayConnection:
    """``with RayConnection(options) as ray:`` -- Ray ready for the run.

    An already initialised Ray (a test, a notebook) is used as it is and left running; an
    ``address`` joins that cluster (disconnected at the end); no address starts a local instance
    sized for the workers (shut down at the end).
    """

    def __init__(self, options: ClusterOptions):
        self.options = options
        self.ray = None
        self.owned = False
        self.description = ""

    def __enter__(self):
        ray = import_ray()
        self.ray = ray
        o = self.options
        if ray.is_initialized():
            self.description = "ray (connected)"
            return ray
        kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                      configure_logging=False)
        try:
            if o.address:
                check_reachable(o.address)
                ray.init(address=o.address, **kwargs)
                self.description = f"ray at {o.address}"
            else:
                cpus = max(os.cpu_count() or 1, int(round((o.workers or 1) * o.cpus_per_worker + 0.4999)))
                ray.init(num_cpus=cpus, **kwargs)
                self.description = f"ray (local, {cpus} CPUs)"
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {o.address}" if o.address else "a local Ray instance"
            hint = " (is `ray start --head` running there?)" if o.address else ""
            raise ClusterError(f"cannot start or reach {where}: {e}{hint}") from e
        self.owned = True
        return ray

    def __exit__(self, *exc) -> None:
        if self.owned and self.ray is not None:
            try:
                self.ray.shutdown()
            except Exception as e:  # shutting down must not hide the run's own outcome
                log.debug("ray.shutdown: %s", e)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """ClusterError at once when HOST:PORT does not answer (ray.init would retry for minutes);
    ``auto`` and ``ray://`` addresses are left to Ray."""
    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ClusterError(f"--address {address!r}: give auto or HOST:PORT (the head node's `ray start --head --port`)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {e.strerror or e} "
                           f"(is `ray start --head --port {port}` running on {host}?)") from e


def plan_workers(ray, options: ClusterOptions) -> int:
    """The number of workers to start: ``options.workers``, else what the cluster's resources
    hold; ClusterError when the cluster cannot place even one (or the number asked for)."""
    res = ray.cluster_resources()
    cpus, gpus = float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0))
    o = options
    if o.gpus_per_worker > 0:
        fits = int(min(gpus / o.gpus_per_worker + 1e-9, cpus / o.cpus_per_worker + 1e-9))
    else:
        fits = int(cpus / o.cpus_per_worker + 1e-9)
    n = o.workers if o.workers is not None else fits
    if n < 1 or n > fits:
        raise ClusterError(
            f"the cluster cannot place {o.workers or 1} worker(s) of {o.cpus_per_worker:g} CPU(s)"
            + (f" and {o.gpus_per_worker:g} GPU(s)" if o.gpus_per_worker else "")
            + f": it has {cpus:g} CPUs and {gpus:g} GPUs ({fits} such workers fit)")
    return n
