"""Frame parameters that imitate particular real data sets (for realism checks and demos).

:func:`thaumatin_like` imitates the Diamond I24 thaumatin grid-scan stills on the Pilatus 6M
(``../shared/data/real/thaumatin_grid``): thaumatin cell, synchrotron bandwidth, the background
shape fitted to the real frames' radial profile, small mosaic domains (0.03-0.055 um: a
reflection tolerance that does not shrink at low resolution, so spots crowd the middle radii as
in the real frames; with B 37-47 A^2 and the strength below, the DIALS-like finder's spots per
frame by radius -- 200 px bins from the beam -- are 59/195/301/305/204/90/12 against the real
frames' 28/135/328/309/202/72/9) (``benchmarks/bench_sim_realism.py``), a beam
more divergent horizontally (0.55-0.7 mrad RMS) so spots are elongated along fs as the real
ones (axis ratio ~1.6, measured from second moments), a mosaic spread of 0.018-0.024 deg (with
DIALS' default ``dispersion_extended`` finder the spots then hold as many strong pixels as the
real ones at the same brightness: n_signal quantiles 10/50/90 % of 8/20/42 against 7/18/35), spot
strengths that give DIALS-like spot counts of a few hundred to ~1300.
:func:`thermolysin_cspad_like` imitates the LCLS thermolysin CSPAD stills.
"""

from __future__ import annotations

import numpy as np

from .background import BackgroundParams
from .lattice import THAUMATIN, THERMOLYSIN
from .orientation import random_rotation
from .params import FrameParams, SpotShape
from .reflections import CrystalParams


def thaumatin_like(det, seed: int, *, strength_scale: float = 1.0) -> FrameParams:
    rng = np.random.default_rng(seed)
    bg = BackgroundParams(air=4.9, air_decay=0.69, saxs=0.0, water=3.6, water_d=3.43, water_width=0.18,
                          water_tail=0.41, tail_decay=0.09, water2=0.0, flat=0.12,
                          scale=float(rng.lognormal(0.0, 0.08)), polarisation=0.99)
    crystal = CrystalParams(cell=THAUMATIN, rotation=random_rotation(rng).tolist(),
                            mosaicity_deg=float(rng.uniform(0.018, 0.024)), domain_size_um=float(rng.uniform(0.03, 0.055)),
                            b_factor=float(rng.uniform(37.0, 47.0)), d_limit_a=1.5,
                            strength=float(90000.0 * strength_scale * np.exp(rng.normal(0, 0.5))))
    return FrameParams(kind="hit", seed=int(rng.integers(2**31)), photon_energy_ev=det.photon_energy_ev,
                       bandwidth=1e-4, divergence_mrad=(float(rng.uniform(0.55, 0.7)), float(rng.uniform(0.1, 0.2))),
                       background=bg, crystals=[crystal],
                       spot=SpotShape(sigma_px=float(rng.uniform(0.75, 0.85)), sigma_jitter=0.15, lorentz=0.15,
                                      elongation=1.0))


def thermolysin_cspad_like(det, seed: int, *, strength_scale: float = 1.0) -> FrameParams:
    rng = np.random.default_rng(seed)
    bg = BackgroundParams(air=0.15, air_decay=0.4, saxs=0.0, water=0.25, water_d=3.3, water_width=0.06,
                          water_tail=0.5, tail_decay=0.2, water2=0.05, flat=0.02,
                          scale=float(rng.lognormal(0.0, 0.2)), polarisation=0.99)
    crystal = CrystalParams(cell=THERMOLYSIN, rotation=random_rotation(rng).tolist(), mosaicity_deg=0.03,
                            domain_size_um=1.0, b_factor=20.0, d_limit_a=2.0,
                            strength=float(400.0 * strength_scale * np.exp(rng.normal(0, 0.4))))
    return FrameParams(kind="hit", seed=int(rng.integers(2**31)), photon_energy_ev=det.photon_energy_ev,
                       bandwidth=8e-4, background=bg, crystals=[crystal],
                       spot=SpotShape(sigma_px=0.3, sigma_jitter=0.15, lorentz=0.1))


PRESETS = {"thaumatin": thaumatin_like, "thermolysin-cspad": thermolysin_cspad_like}


def preset_frame_params(name: str, kind: str, det, seed: int, ranges=None) -> FrameParams:
    """A frame of ``kind`` in the style of preset ``name``: hits of varied strength (x0.3-3),
    blanks with the preset's background, artifact-ring frames with or without the crystal;
    calibrant frames as in the default mix."""
    from ..errors import InputError
    from .params import SimRanges, draw_frame_params, draw_rings, draw_streak

    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    ranges = ranges or SimRanges()
    if kind == "calibrant":
        return draw_frame_params(kind, det, seed, ranges)
    rng = np.random.default_rng(seed)
    p = PRESETS[name](det, int(rng.integers(2**31)), strength_scale=float(np.exp(rng.uniform(np.log(0.3), np.log(3.0)))))
    p.kind = kind
    level = p.background.water + p.background.air
    if kind == "blank" or (kind == "rings" and rng.random() < 0.4):
        p.crystals = []
    if kind == "rings":
        p.rings = draw_rings(rng, level)
        if rng.random() < 0.3:
            p.streaks = [draw_streak(rng, level)]
    return p
