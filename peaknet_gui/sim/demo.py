"""The GUI's built-in demo run: a small, good-looking mixed run on the Rayonix MX340 geometry.

:func:`make_demo_run` writes ``frames`` frames (default 24): hits from weak to strong (one or
two lattices, some elongated spots), a few blanks, two frames with artifact rings (metal/ice,
with speckles), one silver-behenate calibrant frame -- in a fixed, interleaved order so the first
frames a user sees are hits.  Deterministic in ``seed``; about 10-20 s on one core.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np

from .artifacts import CalibrantArtifact
from .detectors import get_detector
from .frame import simulate_frame
from .lattice import LYSOZYME, THAUMATIN, THERMOLYSIN
from .noise import draw_personality
from .params import SimRanges, draw_frame_params
from .run_writer import CxiRunWriter

DEMO_DETECTOR = "rayonix-mx340"
_PATTERN = ("hit", "hit", "hit", "blank", "hit", "rings", "hit", "hit", "calibrant", "hit", "blank", "hit",
            "hit", "rings", "hit", "blank", "hit", "hit", "hit", "blank", "hit", "hit", "rings", "hit")


def demo_kinds(frames: int) -> list:
    """Frame kinds of a demo run of ``frames`` frames (the pattern repeats; at most one calibrant)."""
    out = [_PATTERN[i % len(_PATTERN)] for i in range(frames)]
    for i in range(len(_PATTERN), frames):
        if out[i] == "calibrant":
            out[i] = "hit"
    return out


def make_demo_run(out_path, frames: int = 24, seed: int = 2024, progress=None) -> Path:
    """Write the demo run to ``out_path`` (CXI + ``.geom`` beside it) and return its path.
    ``progress(done, total)`` is called after each frame."""
    det = copy.copy(get_detector(DEMO_DETECTOR))
    rng = np.random.default_rng(seed)
    personality = draw_personality(det, rng)
    personality.adu_per_photon = float(rng.uniform(2.0, 4.0))
    personality.read_noise_adu = float(rng.uniform(1.5, 3.0))
    det.extra = dict(det.extra, adu_per_photon=personality.adu_per_photon)
    ranges = SimRanges(background_photons=(0.5, 6.0), spot_photons=(80.0, 6000.0), sigma_px=(0.7, 1.6),
                       mosaicity_deg=(0.01, 0.08), d_limit_a=(1.6, 3.0), p_beamstop=0.7,
                       p_rings_hit=0.0, p_streak_hit=0.1, p_kapton=0.0)
    cells = [THAUMATIN, LYSOZYME, THERMOLYSIN]
    with CxiRunWriter(out_path, det, frames, seed=seed, attrs={"demo": 1}) as w:
        for i, kind in enumerate(demo_kinds(frames)):
            p = draw_frame_params(kind, det, int(rng.integers(2**31)), ranges)
            if p.crystals:
                cell = cells[(i // 8) % len(cells)]
                p.crystals = [dataclasses.replace(c, cell=cell) for c in p.crystals[:2]]
            if kind == "calibrant":
                p.calibrant = dataclasses.replace(p.calibrant or CalibrantArtifact(), calibrant="AgBh")
            w.add(simulate_frame(det, p, personality))
            if progress is not None:
                progress(i + 1, frames)
    return Path(out_path)
