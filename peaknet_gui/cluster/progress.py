"""The cluster run's progress bar: frames/s in all and per worker, hits, retries."""

from __future__ import annotations

import sys


class ClusterProgressBar:
    """tqdm bar fed with :class:`~.driver.ClusterProgress`; the total grows in follow mode."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="frame", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def __call__(self, p) -> None:
        if self.bar is None:
            return
        if p.total != self.bar.total:
            self.bar.total = p.total
        if self.bar.n == 0:  # rates from the first worker ready, not from Ray's start-up
            self.bar.start_t = self.bar._time() - p.elapsed_s
        self.bar.update(1)
        rates = " ".join(f"w{r}:{v:.1f}" for r, v in sorted(p.worker_rates.items()))
        retried = f", retried {p.retried}" if p.retried else ""
        self.bar.set_postfix_str(f"hits {p.hits} ({100 * p.hit_rate:.0f}%){retried}, /s {rates}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
