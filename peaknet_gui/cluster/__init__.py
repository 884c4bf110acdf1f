"""``peaknet find`` on a Ray cluster: many workers, one driver, the same files as a local run.

* :mod:`.options`  -- :class:`ClusterOptions` (address, workers, GPUs/CPUs each, follow), ClusterError
* :mod:`.spec`     -- what travels to a worker once (WorkerSpec) and per frame (FrameTask: file, event)
* :mod:`.reader`   -- a worker reads its frames itself from the shared filesystem
* :mod:`.worker`   -- FrameWorker: one FrameAnalyzer per process, the ordinary run loop on a few frames
* :mod:`.compact`  -- CompactResult: peaks, hit, timings, metadata, the mask as zlib'd packed bits
* :mod:`.schedule` -- queue, retries, reorder buffer: every frame written or skipped exactly once, in order
* :mod:`.pool`     -- the Ray actors: starting, ready, lost (replaced), failed (reason kept)
* :mod:`.driver`   -- run_on_ray: the loop, the export session fed in event order, Ctrl-C / SIGTERM
* :mod:`.connection`, :mod:`.progress`, :mod:`.summary`, :mod:`.cli` -- Ray set-up, bar, totals, find's options

Nothing here imports Qt; Ray is imported only when a cluster run starts (extra ``[cluster]``).
"""

from .options import ClusterError, ClusterOptions  # noqa: F401
