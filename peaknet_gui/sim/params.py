"""Everything one simulated frame is made from (:class:`FrameParams`) and how it is drawn at
random for each kind of frame (:func:`draw_frame_params`), over ranges (:class:`SimRanges`) that
deliberately span more than the real frames do, so a network trained on them generalises.

Frame kinds: ``hit`` (one to three lattices, sometimes with artifacts), ``blank`` (no crystal;
background, sometimes a streak or beamstop), ``rings`` (artifact rings -- metal, ice -- with or
without a crystal, sometimes kapton and streaks), ``calibrant`` (powder rings of AgBh, CeO2 or
LaB6, no crystal).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from .artifacts import (MATERIALS, Beamstop, CalibrantArtifact, KaptonArtifact, RingArtifact, StreakArtifact,
                        as_dict)
from .background import BackgroundParams
from .detectors import CSPAD, DetectorModel
from .lattice import random_cell
from .orientation import random_rotation, small_rotation
from .reflections import CrystalParams

KINDS = ("hit", "blank", "rings", "calibrant")


@dataclass
class SpotShape:
    """Spot profile settings of a frame.  ``sigma_px``: RMS size from beam, crystal size and
    divergence (isotropic, pixels); ``sigma_jitter``: per-spot log-normal spread of it;
    ``lorentz``: Lorentzian fraction of the profile; extra elongation of a fraction
    ``elongated_fraction`` of the spots by ``elongation`` (1 = none) along ``elongation_mode``
    (``radial``, ``tangential`` or ``fixed`` at ``elongation_angle_deg``)."""

    sigma_px: float = 1.0
    sigma_jitter: float = 0.15
    lorentz: float = 0.1
    elongation: float = 1.0
    elongated_fraction: float = 0.0
    elongation_mode: str = "radial"
    elongation_angle_deg: float = 0.0


@dataclass
class FrameParams:
    kind: str
    seed: int
    photon_energy_ev: float
    bandwidth: float = 1e-3  # RMS dlambda/lambda
    divergence_mrad: tuple = (0.0, 0.0)  # RMS beam divergence, horizontal (x) and vertical (y)
    background: BackgroundParams = field(default_factory=BackgroundParams)
    crystals: list = field(default_factory=list)
    spot: SpotShape = field(default_factory=SpotShape)
    rings: list = field(default_factory=list)
    streaks: list = field(default_factory=list)
    kapton: list = field(default_factory=list)
    calibrant: Optional[CalibrantArtifact] = None
    beamstop: Optional[Beamstop] = None
    beamstop_is_artifact: bool = True

    def as_dict(self) -> dict:
        return {
            "kind": self.kind, "seed": self.seed, "photon_energy_ev": self.photon_energy_ev,
            "bandwidth": self.bandwidth, "divergence_mrad": list(self.divergence_mrad),
            "background": asdict(self.background),
            "crystals": [c.as_dict() for c in self.crystals], "spot": asdict(self.spot),
            "rings": [as_dict(r) for r in self.rings], "streaks": [as_dict(s) for s in self.streaks],
            "kapton": [as_dict(k) for k in self.kapton], "calibrant": as_dict(self.calibrant),
            "beamstop": as_dict(self.beamstop), "beamstop_is_artifact": self.beamstop_is_artifact,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), default=_json_default, separators=(",", ":"))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


@dataclass
class SimRanges:
    """Ranges frames are drawn from (log-uniform where marked)."""

    background_photons: tuple = (0.05, 20.0)  # log; median expected photons per pixel of the frame
    spot_photons: tuple = (50.0, 6.0e4)  # log; median recorded photons of a reflection on the sphere at 3 A
    sigma_px: tuple = (0.45, 2.0)
    mosaicity_deg: tuple = (0.01, 0.2)  # log, RMS
    bandwidth: tuple = (1e-4, 4e-3)  # log, RMS
    divergence_mrad: tuple = (0.01, 1.0)  # log, RMS per axis (horizontal usually the larger)
    domain_size_um: tuple = (0.05, 3.0)  # log
    b_factor: tuple = (5.0, 40.0)
    d_limit_a: tuple = (1.3, 4.5)  # drawn towards high resolution (lo + (hi - lo) u^2)
    lattices: tuple = (0.75, 0.18, 0.07)  # probabilities of 1, 2, 3 lattices
    p_beamstop: float = 0.35
    p_streak_hit: float = 0.08
    p_rings_hit: float = 0.08
    p_kapton: float = 0.08
    max_reflections: int = 5000  # busier frames get less mosaicity / bandwidth (see limit_reflections)
    # CSPAD-like (XFEL) detectors: sharp spots of micro-crystals (real thermolysin CSPAD DIALS spots
    # are 2-7 px, centre pixel ~10-160 photons); a fraction ``xfel_p_small`` of the frames draws
    # sigma_px from ``xfel_sigma_px``, the rest from (xfel_sigma_px[1], 1.2)
    xfel_sigma_px: tuple = (0.15, 0.45)
    xfel_p_small: float = 0.8
    xfel_spot_photons: tuple = (3.0, 400.0)  # log (with these, DIALS-extended n_signal <= 3 for ~40 % of spots; real 60-85 %)
    xfel_divergence_mrad: tuple = (0.003, 0.08)  # log
    xfel_mosaicity_deg: tuple = (0.005, 0.08)  # log
    xfel_bandwidth: tuple = (1e-4, 1.5e-3)  # log, RMS (SASE ~0.2-0.4 % FWHM)
    xfel: bool = False  # the xfel_* ranges on every detector (XFEL stills on a Rayonix, Eiger, Pilatus), not only CSPAD
    # with ``xfel`` only: micro-crystals of 0.15-3 um (a 50 nm domain alone spreads a spot over ~2
    # binned Rayonix pixels) and a CCD's point spread of a fiber-optic taper read at its binned
    # pixel (0.1-0.6 px): XFEL spots on a CCD are 1-3 px, their brightest pixel holds ~40 % of them
    xfel_domain_size_um: tuple = (0.15, 3.0)  # log
    xfel_psf_sigma_px: tuple = (0.1, 0.6)

    def for_detector(self, det: DetectorModel) -> "SimRanges":
        """The ranges used on ``det``: the ``xfel_*`` ones on CSPAD-like detectors (on all with ``xfel``)."""
        if det.kind != CSPAD and not self.xfel:
            return self
        import dataclasses

        out = dataclasses.replace(self, spot_photons=self.xfel_spot_photons, divergence_mrad=self.xfel_divergence_mrad,
                                  mosaicity_deg=self.xfel_mosaicity_deg, bandwidth=self.xfel_bandwidth)
        return dataclasses.replace(out, domain_size_um=self.xfel_domain_size_um) if self.xfel else out


def _log_u(rng, lo_hi) -> float:
    lo, hi = lo_hi
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def draw_background(rng: np.random.Generator, r: SimRanges, det: DetectorModel,
                    wavelength_a: Optional[float] = None) -> tuple:
    """A random background whose median over the detector's pixels is drawn log-uniformly from
    ``r.background_photons``; returns (params, that median)."""
    from .background import median_background

    target = _log_u(rng, r.background_photons)
    if det.kind == CSPAD and rng.random() < 0.6:  # XFEL CSPAD backgrounds are usually < 1 photon
        target = min(target, _log_u(rng, (0.02, 1.0)))
    water_share = rng.uniform(0.2, 0.9)
    bg = BackgroundParams(
        air=(1 - water_share) * rng.uniform(0.8, 2.5),
        air_decay=_log_u(rng, (0.08, 0.6)),
        saxs=rng.uniform(0.0, 3.0) if rng.random() < 0.5 else 0.0,
        saxs_width=_log_u(rng, (0.005, 0.03)),
        water=water_share,
        water_d=rng.uniform(3.0, 3.7),
        water_width=_log_u(rng, (0.025, 0.16)),
        water_tail=rng.uniform(0.2, 0.9),
        tail_decay=_log_u(rng, (0.05, 0.6)),
        water2=water_share * rng.uniform(0.1, 0.5),
        water2_d=rng.uniform(2.0, 2.25),
        water2_width=rng.uniform(0.04, 0.09),
        flat=rng.uniform(0.0, 0.15),
        scale=1.0,
        polarisation=rng.uniform(0.9, 1.0),
        polarisation_axis_deg=float(rng.choice([0.0, 0.0, 90.0])),
    )
    med = median_background(det.pixels, bg, wavelength_a or det.wavelength_a)
    bg.scale = float(target / max(med, 1e-6))
    return bg, target


def draw_crystals(rng: np.random.Generator, r: SimRanges, strength_scale: float = 1.0) -> list:
    n = 1 + int(rng.choice(len(r.lattices), p=np.asarray(r.lattices) / np.sum(r.lattices)))
    cell = random_cell(rng)
    mosaic = _log_u(rng, r.mosaicity_deg)
    domain = _log_u(rng, r.domain_size_um)
    b = rng.uniform(*r.b_factor)
    d_limit = r.d_limit_a[0] + (r.d_limit_a[1] - r.d_limit_a[0]) * rng.random() ** 2
    median3 = _log_u(rng, r.spot_photons) * strength_scale
    crystals = []
    base_rot = random_rotation(rng)
    for i in range(n):
        if i == 0:
            rot = base_rot
        elif rng.random() < 0.7:  # an unrelated second crystal
            rot = random_rotation(rng)
        else:  # a split crystal: a few degrees apart
            rot = small_rotation(rng, np.deg2rad(3)) @ base_rot
        share = 1.0 if i == 0 else rng.uniform(0.1, 1.0)
        # median of |F|^2 ~ Exp(1) is ln 2; Wilson factor at 3 A is exp(-B / 18)
        strength = median3 * share / (np.log(2.0) * np.exp(-b / 18.0))
        crystals.append(CrystalParams(cell=cell, rotation=rot.tolist(), mosaicity_deg=mosaic * rng.uniform(0.8, 1.25),
                                      domain_size_um=domain, b_factor=b, d_limit_a=d_limit, strength=float(strength)))
    return crystals


def draw_spot_shape(rng: np.random.Generator, r: SimRanges, det: DetectorModel) -> SpotShape:
    lo, hi = r.sigma_px
    xfel = det.kind == CSPAD or r.xfel  # XFEL micro-crystals on small pixels: mostly sharp, compact spots
    if xfel:
        lo, hi = r.xfel_sigma_px if rng.random() < r.xfel_p_small else (r.xfel_sigma_px[1], 1.2)
    # real thaumatin spots are elongated ~1.6x along fs (a beam wider than high): "fixed" along a
    # detector axis is as common as along 2-theta (bandwidth) or across it (mosaic arcs)
    mode = str(rng.choice(["radial", "tangential", "fixed"], p=[0.3, 0.3, 0.4]))
    angle = float(rng.choice([0.0, 90.0]) + rng.normal(0, 10)) if rng.random() < 0.6 else float(rng.uniform(0, 180))
    return SpotShape(
        sigma_px=float(rng.uniform(lo, hi)),
        sigma_jitter=float(rng.uniform(0.05, 0.3)),
        lorentz=float(rng.uniform(0.0, 0.2 if xfel else 0.4)),
        elongation=(float(rng.uniform(1.2, 2.0)) if rng.random() < 0.3 else 1.0) if xfel else
        (float(rng.uniform(1.5, 3.2)) if rng.random() < 0.7 else 1.0),
        elongated_fraction=float(rng.uniform(0.5, 1.0)),
        elongation_mode=mode,
        elongation_angle_deg=angle,
    )


def draw_rings(rng: np.random.Generator, bg_level: float) -> list:
    out = []
    for _ in range(1 + int(rng.random() < 0.3)):
        name = str(rng.choice(list(MATERIALS)))
        d, inten = MATERIALS[name]
        n_arcs = int(rng.choice([0, 1, 2, 3], p=[0.35, 0.3, 0.2, 0.15]))
        arcs = [(float(rng.uniform(-180, 180)), float(rng.uniform(15, 200))) for _ in range(n_arcs)]
        peak = max(bg_level, 0.3) * _log_u(rng, (1.5, 40.0))
        out.append(RingArtifact(
            material=name, d_spacings=list(d), intensities=list(inten), peak_photons=float(peak),
            fwhm_px=_log_u(rng, (1.0, 6.0)) if not name.startswith("ice") else _log_u(rng, (1.5, 10.0)),
            arcs=arcs, granularity=float(rng.uniform(0.0, 0.8)),
            speckles=int(rng.choice([0, 5, 20, 60])), speckle_photons=float(peak * _log_u(rng, (5.0, 200.0))),
            speckle_sigma_px=float(rng.uniform(0.6, 1.6)), seed=int(rng.integers(2**31)),
        ))
    return out


def draw_streak(rng: np.random.Generator, bg_level: float) -> StreakArtifact:
    return StreakArtifact(angle_deg=float(rng.uniform(0, 180)), width_px=_log_u(rng, (1.0, 5.0)),
                          peak_photons=float(max(bg_level, 0.3) * _log_u(rng, (2.0, 50.0))),
                          decay_px=_log_u(rng, (80.0, 1500.0)), two_sided=bool(rng.random() < 0.6),
                          start_px=float(rng.uniform(0, 40)))


def draw_kapton(rng: np.random.Generator, bg_level: float) -> KaptonArtifact:
    n = 1 + int(rng.random() < 0.4)
    return KaptonArtifact(d_spacings=[float(rng.uniform(4.3, 5.9)) for _ in range(n)], fwhm_px=_log_u(rng, (4.0, 20.0)),
                          peak_photons=float(max(bg_level, 0.3) * _log_u(rng, (1.5, 15.0))),
                          axis_deg=float(rng.uniform(0, 180)), sharpness=float(rng.uniform(1.0, 8.0)))


def draw_beamstop(rng: np.random.Generator, det: DetectorModel) -> Optional[Beamstop]:
    lo, hi = det.beamstop_radius_px
    if hi <= 0:
        return None
    return Beamstop(radius_px=float(rng.uniform(lo, hi)), offset_px=(float(rng.normal(0, 2)), float(rng.normal(0, 2))),
                    arm_angle_deg=float(rng.uniform(0, 360)),
                    arm_width_px=float(rng.uniform(0.4, 0.9) * rng.uniform(lo, hi)) if rng.random() < 0.8 else 0.0,
                    transmission=_log_u(rng, (0.003, 0.08)), edge_px=float(rng.uniform(0.5, 3.0)))


def draw_frame_params(kind: str, det: DetectorModel, seed: int, ranges: SimRanges = SimRanges(),
                      photon_energy_ev: Optional[float] = None) -> FrameParams:
    """Random parameters of one frame of ``kind`` on ``det`` (deterministic in ``seed``)."""
    if kind not in KINDS:
        raise ValueError(f"frame kind must be one of {KINDS}, not {kind!r}")
    rng = np.random.default_rng(seed)
    ranges = ranges.for_detector(det)
    wl = 12398.419843320026 / (photon_energy_ev or det.photon_energy_ev)
    bg, level = draw_background(rng, ranges, det, wl)
    p = FrameParams(kind=kind, seed=int(rng.integers(2**31)),
                    photon_energy_ev=float(photon_energy_ev or det.photon_energy_ev),
                    bandwidth=_log_u(rng, ranges.bandwidth), background=bg)
    dh, dv = sorted((_log_u(rng, ranges.divergence_mrad), _log_u(rng, ranges.divergence_mrad)), reverse=True)
    p.divergence_mrad = (dh, dv) if rng.random() < 0.75 else (dv, dh)
    p.spot = draw_spot_shape(rng, ranges, det)
    if rng.random() < ranges.p_beamstop:
        p.beamstop = draw_beamstop(rng, det)
    if kind == "hit":
        p.crystals = draw_crystals(rng, ranges)
        if rng.random() < ranges.p_rings_hit:
            p.rings = draw_rings(rng, level)
        if rng.random() < ranges.p_streak_hit:
            p.streaks = [draw_streak(rng, level)]
        if rng.random() < ranges.p_kapton:
            p.kapton = [draw_kapton(rng, level)]
    elif kind == "blank":
        if rng.random() < 0.1:
            p.streaks = [draw_streak(rng, level)]
    elif kind == "rings":
        p.rings = draw_rings(rng, level)
        if rng.random() < 0.6:
            p.crystals = draw_crystals(rng, ranges)
        if rng.random() < 0.3:
            p.streaks = [draw_streak(rng, level)]
        if rng.random() < 0.25:
            p.kapton = [draw_kapton(rng, level)]
    elif kind == "calibrant":
        p.calibrant = CalibrantArtifact(calibrant=str(rng.choice(["AgBh", "AgBh", "CeO2", "LaB6"])),
                                        peak_photons=float(max(level, 0.5) * _log_u(rng, (3.0, 100.0))),
                                        fwhm_px=float(rng.choice([1.0, 1.5, 2.0, 3.0, 4.0])),  # few widths: cached
                                        granularity=float(rng.uniform(0.0, 0.5)),
                                        seed=int(rng.integers(2**31)))
    _calibrate_strength(p)
    return p


def _calibrate_strength(p: FrameParams, undo: bool = False) -> None:
    """Make ``spot_photons`` mean *recorded* photons: divide the full-reflection strength by the
    partiality a still typically records at 3 A with this frame's beam and crystal (or undo that)."""
    import dataclasses

    from ..geometry.detector import HC_EV_A
    from .reflections import typical_partiality

    wl = HC_EV_A / p.photon_energy_ev
    div = tuple(v * 1e-3 for v in p.divergence_mrad)
    out = []
    for c in p.crystals:
        t = typical_partiality(c, wl, p.bandwidth, div)
        out.append(dataclasses.replace(c, strength=c.strength * t if undo else c.strength / t))
    p.crystals = out


def count_reflections(p: FrameParams, det: DetectorModel) -> int:
    """How many reflections ``p``'s crystals excite on ``det`` (partiality >= 0.02, any strength)."""
    from ..geometry.detector import HC_EV_A
    from .reflections import excite

    if not p.crystals:
        return 0
    wl = HC_EV_A / p.photon_energy_ev
    tth_max = float(det.pixels.tth_sorted[-1])
    d_min = wl / (2 * np.sin(max(tth_max, 1e-3) / 2))
    rng = np.random.default_rng(0)
    div = tuple(v * 1e-3 for v in p.divergence_mrad)
    return sum(len(excite(c, wl, p.bandwidth, d_min, rng, max_twotheta=tth_max, divergence=div)) for c in p.crystals)


def limit_reflections(p: FrameParams, det: DetectorModel, max_reflections: int) -> FrameParams:
    """Shrink the Ewald-shell thickness (mosaicity, bandwidth, 1/domain size) of a frame whose
    crystals would excite more than ``max_reflections`` reflections (real stills rarely show more
    than a few thousand spots; busier frames only cost time).  Returns ``p`` (changed in place)."""
    import dataclasses

    for _ in range(4):
        n = count_reflections(p, det)
        if n <= max_reflections:
            break
        _calibrate_strength(p, undo=True)
        f = 0.9 * max_reflections / n
        p.bandwidth *= f
        p.divergence_mrad = tuple(v * f for v in p.divergence_mrad)
        p.crystals = [dataclasses.replace(c, mosaicity_deg=c.mosaicity_deg * f, domain_size_um=c.domain_size_um / f)
                      for c in p.crystals]
        _calibrate_strength(p)
    return p
