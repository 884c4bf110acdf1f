"""The driver's view of its workers: Ray actors being set up, ready, lost or failed.

Each slot owns one actor (``ray.remote(worker_class)``) and the calls in flight on it.  A lost
actor (process killed, node gone) is replaced by a new one while the restart budget lasts; a
worker whose setup failed (weights missing on that node) is not retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

from .options import ClusterOptions
from .spec import WorkerSpec
from .summary import WorkerStats
from .worker import FrameWorker

log = logging.getLogger(__name__)

STARTING, READY, LOST, FAILED = "starting", "ready", "lost", "failed"


@dataclass
class Call:
    """An ``analyze`` call in flight."""

    slot: "Slot"
    tasks: list
    t_submit: float


@dataclass
class Slot:
    rank: int
    actor: object
    setup_ref: object
    stats: WorkerStats
    state: str = STARTING
    calls: dict = field(default_factory=dict)  # ObjectRef -> Call

    @property
    def in_flight(self) -> int:
        return len(self.calls)


class WorkerPool:
    """Starts, tracks and stops the actors (see the module doc)."""

    def __init__(self, ray, spec: WorkerSpec, options: ClusterOptions, worker_class=FrameWorker):
        self.ray = ray
        self.spec = spec
        self.options = options
        self.remote_cls = ray.remote(worker_class)
        self.slots: list = []
        self.restarts_left = options.restarts
        self.lost = 0

    def _spawn(self) -> Slot:
        rank = len(self.slots)
        o = self.options
        actor = self.remote_cls.options(num_cpus=o.cpus_per_worker, num_gpus=o.gpus_per_worker or 0,
                                        max_restarts=0, max_task_retries=0).remote(self.spec, rank)
        slot = Slot(rank=rank, actor=actor, setup_ref=actor.setup.remote(), stats=WorkerStats(rank=rank))
        self.slots.append(slot)
        return slot

    def start(self, n: int) -> None:
        if self.options.max_worker_restarts is None:
            self.restarts_left = 2 * n
        for _ in range(n):
            self._spawn()

    # --- states ------------------------------------------------------------------------------
    def ready_slots(self) -> list:
        return [s for s in self.slots if s.state == READY]

    def live_ranks(self) -> set:
        return {s.rank for s in self.slots if s.state in (READY, STARTING)}

    def starting(self) -> list:
        return [s for s in self.slots if s.state == STARTING]

    def pending_refs(self) -> list:
        refs = [s.setup_ref for s in self.slots if s.state == STARTING]
        for s in self.slots:
            refs.extend(s.calls)
        return refs

    def slot_of_setup(self, ref) -> Optional[Slot]:
        for s in self.slots:
            if s.state == STARTING and s.setup_ref == ref:
                return s
        return None

    def call_of(self, ref) -> Optional[Call]:
        for s in self.slots:
            if ref in s.calls:
                return s.calls.pop(ref)
        return None

    def setup_done(self, slot: Slot) -> None:
        """The setup call of ``slot`` finished: ready, failed (reason) or lost."""
        try:
            info = self.ray.get(slot.setup_ref)
        except self.ray.exceptions.RayActorError as e:
            self.mark_lost(slot, f"died while starting ({_first_line(e)})")
            return
        st = slot.stats
        st.host, st.pid, st.device, st.setup_s = info.host, info.pid, info.device, info.setup_s
        if info.error is not None:
            slot.state = FAILED
            st.error = info.error
            log.warning("worker %d (%s) cannot start: %s", slot.rank, info.host, info.error)
            self._kill(slot)
            return
        slot.state = READY
        log.debug("worker %d ready on %s pid %d [%s] in %.1f s", slot.rank, info.host, info.pid, info.device, info.setup_s)

    def mark_lost(self, slot: Slot, why: str) -> list:
        """``slot``'s actor is gone: its tasks in flight (returned) are to be redone; a new
        worker replaces it while the restart budget lasts."""
        if slot.state == LOST:
            return []
        tasks = [t for c in slot.calls.values() for t in c.tasks]
        slot.calls.clear()
        slot.state = LOST
        slot.stats.lost = True
        self.lost += 1
        log.warning("worker %d (%s pid %d) lost: %s; %d frame(s) in flight will be redone", slot.rank,
                    slot.stats.host or "?", slot.stats.pid, why, len(tasks))
        self._kill(slot)
        if self.restarts_left > 0:
            self.restarts_left -= 1
            new = self._spawn()
            log.warning("worker %d started to replace worker %d", new.rank, slot.rank)
        return tasks

    def check_alive(self) -> str:
        """'' while a worker is ready or starting; else why none is."""
        if any(s.state in (READY, STARTING) for s in self.slots):
            return ""
        failed = [s for s in self.slots if s.state == FAILED]
        if failed:
            reasons = "; ".join(f"worker {s.rank} ({s.stats.host}): {s.stats.error}" for s in failed[:4])
            return f"no worker could start: {reasons}"
        return f"all workers were lost ({self.lost}) and the restart budget is spent"

    # --- stopping ------------------------------------------------------------------------------
    def _kill(self, slot: Slot) -> None:
        try:
            self.ray.kill(slot.actor, no_restart=True)
        except Exception as e:
            log.debug("ray.kill worker %d: %s", slot.rank, e)

    def stop(self) -> None:
        for s in self.slots:
            if s.state in (READY, STARTING):
                s.calls.clear()
                self._kill(s)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
