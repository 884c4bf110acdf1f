"""Simulate a whole run: the mix of frame kinds, one detector personality and geometry per run,
one crystal form for a few frames at a time, and the CXI writer (:func:`simulate_run`)."""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from ..errors import InputError
from .detectors import CCD, DetectorModel, get_detector, parse_crop
from .frame import SimFrame, simulate_frame
from .labels import LabelRule
from .lattice import random_cell
from .noise import Personality, draw_personality
from .params import KINDS, SimRanges, draw_frame_params, limit_reflections

log = logging.getLogger(__name__)

#: names accepted in ``--mix`` (plural forms too) -> frame kind
MIX_NAMES = {"hit": "hit", "hits": "hit", "blank": "blank", "blanks": "blank", "ring": "rings", "rings": "rings",
             "artifact": "rings", "artifacts": "rings", "calibrant": "calibrant", "calibrants": "calibrant",
             "agbh": "calibrant", "powder": "calibrant"}
#: the default training mix
DEFAULT_MIX = {"hit": 0.65, "blank": 0.15, "rings": 0.17, "calibrant": 0.03}


def parse_mix(text: Optional[str]) -> dict:
    """``"hits,blanks"`` (equal weights) or ``"hits=0.6,blanks=0.2,rings=0.2"`` -> {kind: weight}
    normalised to sum 1.  None or empty -> :data:`DEFAULT_MIX`."""
    if not text:
        return dict(DEFAULT_MIX)
    out: dict = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, w = part.partition("=")
        kind = MIX_NAMES.get(name.strip().lower())
        if kind is None:
            raise InputError(f"--mix: unknown frame kind {name.strip()!r} (use {', '.join(sorted(set(MIX_NAMES)))})")
        try:
            weight = float(w) if w else 1.0
        except ValueError as e:
            raise InputError(f"--mix: weight of {name.strip()!r} is not a number: {w!r}") from e
        if not np.isfinite(weight) or weight < 0:
            raise InputError(f"--mix: weight of {name.strip()!r} must be >= 0, not {w}")
        out[kind] = out.get(kind, 0.0) + weight
    total = sum(out.values())
    if total <= 0:
        raise InputError(f"--mix {text!r}: no frame kind with a positive weight")
    return {k: v / total for k, v in out.items()}


def frame_kinds(mix: dict, n: int, rng: np.random.Generator) -> list:
    """``n`` kinds in the proportions of ``mix`` (largest-remainder rounding), shuffled."""
    kinds = [k for k in KINDS if mix.get(k, 0) > 0]
    w = np.array([mix[k] for k in kinds])
    counts = np.floor(w * n).astype(int)
    rest = n - counts.sum()
    if rest > 0:
        counts[np.argsort(-(w * n - counts), kind="stable")[:rest]] += 1
    out = [k for k, c in zip(kinds, counts) for _ in range(c)]
    rng.shuffle(out)
    return out


@dataclass
class RunSpec:
    """What to simulate.  ``detector``: a built-in name or a :class:`DetectorModel`; ``crop``
    ``"HxW"`` around the beam; ``vary_geometry``: draw the run's camera length (x0.6-1.5) and beam
    centre (a few % of the detector) at random; ``frames_per_cell``: a new crystal form every so
    many frames (a run of one protein has one cell; variety needs several); ``preset``: draw the
    frames in the style of a real data set (``thaumatin``, ``thermolysin-cspad``; the preset's own
    crystal) instead of from ``ranges``."""

    n_frames: int
    seed: int = 0
    detector: object = "rayonix-mx340"
    mix: dict = field(default_factory=lambda: dict(DEFAULT_MIX))
    crop: Optional[str] = None
    ranges: SimRanges = field(default_factory=SimRanges)
    rule: LabelRule = field(default_factory=LabelRule)
    frames_per_cell: int = 8
    vary_geometry: bool = False
    distance_m: Optional[float] = None
    photon_energy_ev: Optional[float] = None
    preset: Optional[str] = None  # frames in the style of a real data set (:mod:`.presets`)


def prepare_detector(spec: RunSpec, rng: np.random.Generator) -> DetectorModel:
    det = get_detector(spec.detector) if isinstance(spec.detector, str) else spec.detector
    if spec.distance_m is not None or spec.photon_energy_ev is not None:
        det = det.with_values(distance_m=spec.distance_m, photon_energy_ev=spec.photon_energy_ev)
    if spec.vary_geometry:
        ss_n, fs_n = det.shape
        fs0, ss0 = det.geometry.beam_center(0)
        bc = None
        if len(det.geometry.panels) == 1:
            bc = (fs0 + rng.normal(0, 0.03 * fs_n), ss0 + rng.normal(0, 0.03 * ss_n))
        det = det.with_values(distance_m=det.distance_m * float(np.exp(rng.uniform(np.log(0.6), np.log(1.5)))),
                              beam_center=bc)
    if spec.crop:
        h, w = parse_crop(spec.crop)
        det = det.cropped_around_beam(h, w, name=f"{det.name}-{h}x{w}")
    return det


def plan_run(spec: RunSpec) -> tuple:
    """(detector, personality, [FrameParams]) of a run, deterministic in ``spec.seed``."""
    if spec.n_frames < 1:
        raise InputError(f"number of frames must be >= 1, not {spec.n_frames}")
    ss = np.random.SeedSequence(int(spec.seed))
    geo_seq, pers_seq, kind_seq, cell_seq, frame_seq = ss.spawn(5)
    det = copy.copy(prepare_detector(spec, np.random.default_rng(geo_seq)))  # never touch the shared built-in
    pers_rng = np.random.default_rng(pers_seq)
    personality = draw_personality(det, pers_rng)
    if spec.ranges.xfel and det.kind == CCD:  # XFEL stills on a CCD: a sharp taper (SimRanges.xfel_psf_sigma_px)
        personality = dataclasses.replace(personality, psf_sigma_px=float(pers_rng.uniform(*spec.ranges.xfel_psf_sigma_px)))
    det.extra = dict(det.extra, adu_per_photon=personality.adu_per_photon if det.kind != "pad" else 1.0)
    kinds = frame_kinds(spec.mix, spec.n_frames, np.random.default_rng(kind_seq))
    cell_rng = np.random.default_rng(cell_seq)
    frame_seeds = np.random.default_rng(frame_seq).integers(0, 2**31 - 1, size=spec.n_frames)
    params = []
    cell = None
    for i, (kind, s) in enumerate(zip(kinds, frame_seeds)):
        if i % max(spec.frames_per_cell, 1) == 0:
            cell = random_cell(cell_rng)
        if spec.preset:
            from .presets import preset_frame_params

            params.append(preset_frame_params(spec.preset, kind, det, int(s), spec.ranges))
            continue
        p = draw_frame_params(kind, det, int(s), spec.ranges, photon_energy_ev=spec.photon_energy_ev)
        if p.crystals:
            p.crystals = [dataclasses.replace(c, cell=cell) for c in p.crystals]
            limit_reflections(p, det, spec.ranges.max_reflections)
        params.append(p)
    return det, personality, params


def iter_frames(det: DetectorModel, personality: Personality, params: list, rule: LabelRule = LabelRule()) -> Iterator[SimFrame]:
    for p in params:
        yield simulate_frame(det, p, personality, rule)


def simulate_run(spec: RunSpec, out, *, progress: Optional[Callable[[int, int], None]] = None) -> Path:
    """Simulate ``spec`` into the CXI file ``out`` (and ``out`` with ``.geom``); returns the path."""
    from .run_writer import CxiRunWriter

    det, personality, params = plan_run(spec)
    out = Path(out)
    attrs = {"label_rule": spec.rule.as_dict(), "mix": spec.mix, "frames_per_cell": spec.frames_per_cell,
             "preset": spec.preset or "",
             "ranges": dataclasses.asdict(spec.ranges), "vary_geometry": int(spec.vary_geometry)}
    with CxiRunWriter(out, det, len(params), seed=spec.seed, attrs=attrs) as w:
        for i, frame in enumerate(iter_frames(det, personality, params, spec.rule)):
            w.add(frame)
            if progress is not None:
                progress(i + 1, len(params))
    return out
