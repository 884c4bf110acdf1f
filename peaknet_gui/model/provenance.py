"""Whether a labelled run repeats frames the weights were trained on.

The simulator draws every frame -- crystal, background, rings, streaks, beamstop -- from a
per-frame seed (``/entry_1/sim/parameters``, its ``seed``), and the run seed decides those frame
seeds whatever the detector.  A run made with a training run's seed on another detector therefore
repeats its frames: the same crystals and artifacts on other pixels.  Scored as "held out", such
a run flatters the weights.

:func:`training_runs` follows the weights' lineage through the sidecars (``metadata.data``, the
runs of the last training; ``metadata.settings.init``, the weights it started from, and so on)
as far as the files exist on this machine; :func:`shared_frames` compares frame seeds.
``peaknet evaluate`` warns about every scored or fitted run that shares frames with them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

log = logging.getLogger(__name__)

#: how many generations of ``--init`` weights are followed
MAX_GENERATIONS = 20


def frame_seeds(path) -> List[int]:
    """The per-frame simulation seeds of a labelled run (empty when it has none: not simulated,
    unreadable)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "entry_1/sim/parameters" not in f:
                return []
            raw = f["entry_1/sim/parameters"][()]
    except OSError:
        return []
    seeds = []
    for text in raw:
        try:
            seed = json.loads(text.decode() if isinstance(text, bytes) else text).get("seed")
        except (ValueError, AttributeError):
            continue
        if isinstance(seed, int):
            seeds.append(seed)
    return seeds


def training_runs(metadata: Optional[dict]) -> List[Path]:
    """The labelled runs the weights and their ``--init`` ancestors were trained on, as far as
    their sidecars are readable here (each run once, in lineage order)."""
    from .weights import ModelError, _read_sidecar

    runs: List[Path] = []
    seen_weights = set()
    meta = metadata or {}
    for _ in range(MAX_GENERATIONS):
        for p in meta.get("data") or []:
            if Path(p) not in runs:
                runs.append(Path(p))
        parent = (meta.get("settings") or {}).get("init")
        if not parent or parent in seen_weights:
            break
        seen_weights.add(parent)
        try:
            side = _read_sidecar(Path(parent))
        except ModelError:
            side = None
        if side is None:
            break
        meta = side.get("metadata") or {}
    return runs


def shared_frames(runs: Sequence, training: Sequence) -> Dict[str, dict]:
    """For every run in ``runs`` that repeats training frames: ``{run: {"frames": n, "shared": k,
    "with": [training run names]}}``.  Training runs missing here are skipped."""
    if not runs:
        return {}
    owner: Dict[int, List[str]] = {}
    for t in training:
        t = Path(t)
        if not t.exists():
            continue
        for seed in frame_seeds(t):
            owner.setdefault(seed, []).append(t.name)
    out = {}
    for r in runs:
        seeds = frame_seeds(r)
        hit = [s for s in seeds if s in owner]
        if hit:
            names = sorted({n for s in hit for n in owner[s]})
            out[str(r)] = {"frames": len(seeds), "shared": len(hit), "with": names}
    return out


def warn_shared(runs: Sequence, metadata: Optional[dict], what: str = "scored") -> Dict[str, dict]:
    """:func:`shared_frames` of ``runs`` against the weights' :func:`training_runs`, each logged as
    a warning; returns the same mapping."""
    found = shared_frames(runs, training_runs(metadata))
    for run, d in found.items():
        log.warning("%s: %d of its %d frames repeat training frames of %s (same simulation seeds: the same "
                    "crystals and artifacts): not a held-out run to be %s", Path(run).name, d["shared"], d["frames"],
                    ", ".join(d["with"]), what)
    return found
