"""``summary.json``: what a run produced, frame by frame and in total.

::

    {
      "software": "peaknet_gui 0.1.0", "created": "2025-...Z", "complete": true, "interrupted": false,
      "output_dir": "/abs/out", "formats": ["cxi", "lst", "mask", "stream"], "files": {...},
      "geometry": "run.geom", "crystfel_command": "cd /abs/out && indexamajig -i hits.lst ...",
      "settings": {...},                                        (what the caller passed)
      "totals": {"frames": 6, "hits": 3, "hit_rate": 0.5, "peaks": 51, "mean_peaks": 8.5,
                 "ring_spots": 0, "mean_ms": 12.3, "total_ms": 73.8, "algorithm": "peaknet", "device": "cpu"},
      "frames": [{"serial": 0, "event": "run.cxi //0", "file": "run.cxi", "index": 0,
                  "n_peaks": 14, "ring_spots": 0, "hit": true, "ms": 12.1, "timings_ms": {"read": 1.0, ...},
                  "cxi_index": 0}, ...]
    }

``ms`` is the frame's total of the stages timed (read, normalise, model, postprocess, export);
``ring_spots`` the peaks on powder rings that went to the mask instead of ``n_peaks``;
``gain_untrusted`` (a frame) / ``gain_untrusted_frames`` and ``gain_warning`` (totals): frames whose
background contradicts the gain their geometry states, judged by the weights' point for an
unreliable gain (:mod:`peaknet_gui.peaks.gain_check`).
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class FrameRecord:
    serial: int
    event: str
    file: str
    index: Optional[int]
    n_peaks: int
    hit: bool
    ms: float
    timings_ms: dict = field(default_factory=dict)
    cxi_index: Optional[int] = None
    ring_spots: int = 0
    gain_warning: str = ""  # FrameResult.gain_warning: judged by the point for an unreliable gain, and why

    def as_dict(self) -> dict:
        d = {"serial": self.serial, "event": self.event, "file": self.file, "index": self.index,
             "n_peaks": self.n_peaks, "ring_spots": self.ring_spots, "hit": self.hit, "ms": round(self.ms, 3),
             "timings_ms": {k: round(float(v), 3) for k, v in self.timings_ms.items()}}
        if self.cxi_index is not None:
            d["cxi_index"] = self.cxi_index
        if self.gain_warning:
            d["gain_untrusted"] = True
        return d


class SummaryDocument:
    """The ``summary.json`` document of an export: collects :class:`FrameRecord` s, :meth:`as_dict`
    gives the JSON (not :class:`peaknet_gui.pipeline.run.RunSummary`, the run loop's console totals)."""

    def __init__(self):
        self.frames: list = []
        self.algorithms: set = set()
        self.devices: set = set()

    def add(self, record: FrameRecord, algorithm: str = "", device: str = "") -> None:
        self.frames.append(record)
        if algorithm:
            self.algorithms.add(algorithm)
        if device:
            self.devices.add(device)

    def totals(self) -> dict:
        n = len(self.frames)
        hits = sum(1 for r in self.frames if r.hit)
        peaks = sum(r.n_peaks for r in self.frames)
        total_ms = sum(r.ms for r in self.frames)
        return {
            "frames": n,
            "hits": hits,
            "hit_rate": hits / n if n else 0.0,
            "peaks": peaks,
            "mean_peaks": peaks / n if n else 0.0,
            "ring_spots": sum(r.ring_spots for r in self.frames),
            "mean_peaks_per_hit": (sum(r.n_peaks for r in self.frames if r.hit) / hits) if hits else 0.0,
            "mean_ms": total_ms / n if n else 0.0,
            "total_ms": total_ms,
            "algorithm": ",".join(sorted(self.algorithms)),
            "device": ",".join(sorted(self.devices)),
            "gain_untrusted_frames": sum(1 for r in self.frames if r.gain_warning),
            "gain_warning": next((r.gain_warning for r in self.frames if r.gain_warning), ""),
        }

    def as_dict(self, **header) -> dict:
        doc = dict(header)
        doc.setdefault("created", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        doc["totals"] = self.totals()
        doc["frames"] = [r.as_dict() for r in self.frames]
        return doc


def _clean(v):
    """JSON without NaN/inf (not valid JSON): they become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def write_summary(path, doc: dict) -> None:
    from .atomic import atomic_write

    with atomic_write(path) as fh:
        json.dump(_clean(doc), fh, indent=1, allow_nan=False)
        fh.write("\n")


def read_summary(path) -> dict:
    from ..errors import InputError

    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise InputError(f"{path}: summary file not found") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable summary.json ({e})") from e
