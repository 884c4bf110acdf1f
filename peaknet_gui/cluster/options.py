"""What a cluster run is asked to do: where the cluster is, how many workers, what each holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import PeakNetError


class ClusterError(PeakNetError):
    """The cluster cannot run the job: Ray missing, no address answers, too few resources, no
    worker able to start (the message says which worker and why)."""


@dataclass
class ClusterOptions:
    """How ``peaknet find --cluster ray`` uses the cluster.

    ``address`` None starts a local Ray instance for the run (shut down at the end); ``"auto"`` or
    ``"HOST:PORT"`` joins a running cluster (``ray start --head`` / ``ray start --address``).
    ``workers`` None: as many as the resources allow (GPUs / ``gpus_per_worker`` when GPUs are
    asked for, else CPUs / ``cpus_per_worker``).  ``in_flight``: calls queued per worker (each of
    ``batch`` frames) so a worker never waits for the driver.  ``max_worker_restarts``: how many
    lost workers are replaced in all.  ``follow``: keep scheduling frames that appear (a growing
    HDF5 file or a directory) until none came for ``follow_idle_s`` seconds or Ctrl-C.
    """

    address: Optional[str] = None
    workers: Optional[int] = None
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    in_flight: int = 2
    batch: Optional[int] = None
    max_worker_restarts: Optional[int] = None  # None: 2 per worker
    start_timeout_s: float = 300.0
    follow: bool = False
    follow_idle_s: float = 60.0
    poll_s: float = 0.5

    def check(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ClusterError(f"--workers must be at least 1, not {self.workers}")
        if self.gpus_per_worker < 0:
            raise ClusterError(f"--gpus-per-worker must not be negative, not {self.gpus_per_worker:g}")
        if self.cpus_per_worker <= 0:
            raise ClusterError(f"--cpus-per-worker must be positive, not {self.cpus_per_worker:g}")
        if self.in_flight < 1:
            raise ClusterError(f"in-flight calls per worker must be at least 1, not {self.in_flight}")
        if self.batch is not None and self.batch < 1:
            raise ClusterError(f"frames per call must be at least 1, not {self.batch}")
        if self.follow_idle_s <= 0:
            raise ClusterError(f"--follow-idle must be positive, not {self.follow_idle_s:g}")

    @property
    def restarts(self) -> int:
        return self.max_worker_restarts if self.max_worker_restarts is not None else 2 * (self.workers or 1)
