"""The totals of a cluster run: the local run's totals plus workers, retries and Ray's cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..pipeline.run import RunSummary


@dataclass
class WorkerStats:
    """One worker's share of the run.  ``busy_ms``: its calls' wall time (reading + model +
    post-processing); ``lost``: its process died (its frames were redone elsewhere);
    ``error``: why it could not start."""

    rank: int
    host: str = ""
    pid: int = 0
    device: str = ""
    frames: int = 0
    calls: int = 0
    busy_ms: float = 0.0
    setup_s: float = 0.0
    lost: bool = False
    error: Optional[str] = None

    def frames_per_s(self, wall_s: float) -> float:
        return self.frames / wall_s if wall_s > 0 else 0.0

    def as_dict(self, wall_s: float) -> dict:
        return {"rank": self.rank, "host": self.host, "pid": self.pid, "device": self.device, "frames": self.frames,
                "calls": self.calls, "busy_ms": round(self.busy_ms, 1), "frames_per_s": round(self.frames_per_s(wall_s), 3),
                "setup_s": round(self.setup_s, 2), "lost": self.lost, "error": self.error}


@dataclass
class ClusterSummary(RunSummary):
    """:class:`RunSummary` of a cluster run.  ``retried``: frames redone because their worker
    was lost; ``reread``: frames another worker tried after one could not read them;
    ``driver_ray_ms``: driver time spent submitting and fetching, summed; ``result_bytes``:
    size of the results the workers sent, summed; ``write_ms``: the driver's export time."""

    cluster: str = ""
    workers: list = field(default_factory=list)  # WorkerStats, one per worker started (replacements too)
    retried: int = 0
    reread: int = 0
    workers_lost: int = 0
    driver_ray_ms: float = 0.0
    result_bytes: int = 0
    write_ms: float = 0.0
    driver_reads: int = 0  # hit frames the driver read for hits.cxi

    @property
    def ray_ms_per_frame(self) -> float:
        return self.driver_ray_ms / self.frames if self.frames else 0.0

    @property
    def bytes_per_frame(self) -> float:
        return self.result_bytes / self.frames if self.frames else 0.0

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def cluster_dict(self) -> dict:
        return {
            "cluster": self.cluster,
            "workers": [w.as_dict(self.wall_s) for w in self.workers],
            "frames_per_s": round(self.frames_per_s, 3),
            "retried": self.retried,
            "reread": self.reread,
            "workers_lost": self.workers_lost,
            "driver_ray_ms_per_frame": round(self.ray_ms_per_frame, 3),
            "result_bytes_per_frame": round(self.bytes_per_frame, 1),
            "driver_write_ms_per_frame": round(self.write_ms / self.frames, 3) if self.frames else 0.0,
            "driver_reads": self.driver_reads,
        }

    def as_dict(self) -> dict:
        d = super().as_dict()
        d["cluster"] = self.cluster_dict()
        return d

    def format(self) -> str:
        lines = [super().format()]
        started = [w for w in self.workers if w.error is None]
        lines.append(f"cluster     {self.cluster}: {len(started)} worker(s), {self.frames_per_s:.2f} frames/s in all")
        for w in self.workers:
            state = "  LOST (frames redone)" if w.lost else ""
            if w.error is not None:
                lines.append(f"  worker {w.rank:<3d} {w.host} pid {w.pid}: did not start: {w.error}")
                continue
            lines.append(f"  worker {w.rank:<3d} {w.host} pid {w.pid} [{w.device}]: {w.frames} frames, "
                         f"{w.frames_per_s(self.wall_s):.2f} frames/s{state}")
        lines.append(f"retried     {self.retried} frame(s) of {self.workers_lost} lost worker(s)"
                     + (f"; {self.reread} re-read on another worker" if self.reread else ""))
        lines.append(f"ray cost    {self.ray_ms_per_frame:.2f} ms and {self.bytes_per_frame / 1024:.1f} kB per frame "
                     f"on the driver; writing {self.write_ms / self.frames if self.frames else 0.0:.2f} ms/frame")
        return "\n".join(lines)
