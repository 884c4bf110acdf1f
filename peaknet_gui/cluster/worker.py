"""The worker: one FrameAnalyzer per process, fed (file, event) tasks, answering compact results.

:class:`FrameWorker` is a plain class; the driver turns it into a Ray actor
(``ray.remote(FrameWorker)``), so it can be tested and subclassed without a cluster.  The model
is loaded once, in :meth:`FrameWorker.setup` (not in ``__init__``: a worker that cannot load its
weights then answers with the reason instead of dying).  Each :meth:`FrameWorker.analyze` call
runs a few frames through the ordinary run loop (:func:`peaknet_gui.pipeline.run.run_analysis`:
reading and normalisation overlapped with the model, batches on a GPU, unreadable frames skipped
and reported), with a sink that packs each result (:class:`~.compact.CompactResult`).
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Optional

from ..errors import PeakNetError
from .compact import CompactResult
from .reader import FrameReader
from .spec import FrameTask, WorkerSpec

#: environment variable that caps the CPU threads of the model runtime (inference.device.cpu_threads)
THREADS_ENV = "PEAKNET_CPU_THREADS"


@dataclass
class WorkerInfo:
    """Who a worker is, once set up; ``error`` says why it could not start (then it takes no frames)."""

    rank: int
    host: str
    pid: int
    device: str = ""
    model_info: dict = field(default_factory=dict)
    setup_s: float = 0.0
    error: Optional[str] = None

    @property
    def name(self) -> str:
        return f"worker {self.rank} ({self.host} pid {self.pid})"


@dataclass
class FrameFailure:
    """A frame the worker could not read (a PeakNetError: skipped and listed, as in a local run),
    or, ``unexpected``, could not analyse (any other exception: a bug or a broken install, which
    stops the run when another worker fails the same way)."""

    task: FrameTask
    message: str
    unexpected: bool = False


@dataclass
class WorkerReply:
    """What one ``analyze`` call returns: results in task order, failures, the call's wall time."""

    rank: int
    results: list
    failures: list
    wall_ms: float


class _TaskSource:
    """The run-source interface over a list of tasks (what run_analysis reads from)."""

    def __init__(self, reader: FrameReader, tasks: list):
        self.reader = reader
        self.tasks = tasks

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, i: int):
        return self.reader.read(self.tasks[i])

    def event(self, i: int):
        return self.tasks[i].event


class _Packer:
    """Sink of run_analysis: each frame's result packed for the trip back."""

    def __init__(self, tasks: list):
        self.by_index = {t.index: t for t in tasks}
        self.results: list = []

    def add(self, frame, result) -> None:
        task = self.by_index[frame.serial]
        self.results.append(CompactResult.from_result(task.seq, task.index, frame, result))

    def close(self) -> None:
        pass


class FrameWorker:
    """One worker (see the module doc).  ``rank`` names it in messages and the summary."""

    def __init__(self, spec: WorkerSpec, rank: int):
        self.spec = spec
        self.rank = int(rank)
        self.analyzer = None
        self.reader: Optional[FrameReader] = None
        self.info = WorkerInfo(rank=self.rank, host=socket.gethostname(), pid=os.getpid())

    def setup(self) -> WorkerInfo:
        """Build the analyzer and load the model; the reason in ``info.error`` when that fails."""
        t0 = time.perf_counter()
        if self.spec.cpu_threads:
            os.environ[THREADS_ENV] = str(int(self.spec.cpu_threads))
        try:
            analyzer = self.spec.make_analyzer()
            if analyzer.algorithm == "peaknet":
                analyzer.predictor  # load the weights now
            self.info.device = analyzer.device_name
            self.info.model_info = analyzer.model_info
            self.analyzer = analyzer
            self.reader = FrameReader(self.spec.dataset, self.spec.read_geometry)
        except PeakNetError as e:
            self.info.error = str(e)
        except Exception as e:  # a broken install on one node: say so, do not kill the run
            self.info.error = f"{type(e).__name__}: {e}"
        self.info.setup_s = time.perf_counter() - t0
        return self.info

    def pid(self) -> int:
        return os.getpid()

    def analyze(self, tasks: list) -> WorkerReply:
        """Analyse ``tasks`` (:class:`FrameTask`); frames that fail are in ``failures``."""
        from ..pipeline.run import run_analysis

        t0 = time.perf_counter()
        if self.analyzer is None:
            msg = self.info.error or "worker not set up"
            return WorkerReply(self.rank, [], [FrameFailure(t, msg) for t in tasks], 0.0)
        packer = _Packer(tasks)
        by_line = {t.event.lst_line(): t for t in tasks}
        try:
            summary = run_analysis(_TaskSource(self.reader, tasks), self.analyzer, packer,
                                   batch_size=self.spec.batch_size, prefetch=2, close_sink=False)
        except Exception as e:  # an unexpected failure: the frames not done go back as failures
            detail = traceback.format_exception_only(type(e), e)[-1].strip()
            done = {r.seq for r in packer.results}
            failures = [FrameFailure(t, f"{self.info.name}: {detail}", True) for t in tasks if t.seq not in done]
            return WorkerReply(self.rank, packer.results, failures, 1e3 * (time.perf_counter() - t0))
        failures = [FrameFailure(by_line[line], msg) for line, msg in summary.errors if line in by_line]
        return WorkerReply(self.rank, packer.results, failures, 1e3 * (time.perf_counter() - t0))

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
