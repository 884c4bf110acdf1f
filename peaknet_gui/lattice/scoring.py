"""Lattice recall, on-lattice fraction and the rotated-lattice control (pure numpy).

Positions are compared in the detector plane, in pixels: for a single flat panel that is the
data array itself; for multi-panel detectors (CSPAD) data positions are mapped to the lab plane
first (:class:`DetectorPlane`), so that "within 2 px" and "rotated about the beam" mean what
they say whatever the raw slab layout.

* ``lattice recall`` = strong predicted reflections with a found peak within ``radius``
  (one-to-one greedy matching, :func:`peaknet_gui.peaks.matching.match_peaks`) / strong ones.
* ``on-lattice fraction`` = found peaks within ``radius`` of *any* predicted reflection / found
  peaks (not one-to-one: two peaks on one reflection both count -- it asks "is this peak where
  the lattice says a spot can be").
* control: the same found peaks against the predicted reflections rotated about the beam by
  ``control_deg`` (default 7 degrees); rotated positions that leave the detector's panels are
  dropped from the control, so chance is measured at the same spot density.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
from scipy.spatial import cKDTree

from ..peaks.matching import match_peaks

DEFAULT_CONTROL_DEG = 7.0


@dataclass
class LatticeScore:
    """Scores of one finder on one frame (or summed over frames: counts add)."""

    n_found: int = 0
    n_strong: int = 0
    n_predicted: int = 0
    strong_found: int = 0
    found_on_lattice: int = 0
    control_strong: int = 0
    control_strong_found: int = 0
    control_found: int = 0
    control_found_on_lattice: int = 0

    @property
    def lattice_recall(self) -> float:
        return self.strong_found / self.n_strong if self.n_strong else float("nan")

    @property
    def on_lattice_fraction(self) -> float:
        return self.found_on_lattice / self.n_found if self.n_found else float("nan")

    @property
    def control_recall(self) -> float:
        return self.control_strong_found / self.control_strong if self.control_strong else float("nan")

    @property
    def control_on_lattice(self) -> float:
        return self.control_found_on_lattice / self.control_found if self.control_found else float("nan")

    def __add__(self, other: "LatticeScore") -> "LatticeScore":
        a, b = asdict(self), asdict(other)
        return LatticeScore(**{k: a[k] + b[k] for k in a})

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(lattice_recall=self.lattice_recall, on_lattice_fraction=self.on_lattice_fraction,
                 control_recall=self.control_recall, control_on_lattice=self.control_on_lattice)
        return d


@dataclass
class DetectorPlane:
    """Maps data-array positions (pixel indices) to the lab plane in pixels and tells whether a
    lab-plane position lies on a panel.  ``panels``: objects with ``min_fs, max_fs, min_ss,
    max_ss, corner_x, corner_y, fs, ss`` (:class:`peaknet_gui.geometry.Panel`); None: the data
    array is the plane (one flat panel) of ``shape`` (ss, fs)."""

    panels: Optional[Sequence] = None
    shape: Optional[tuple] = None

    def to_plane(self, fs, ss) -> np.ndarray:
        fs = np.asarray(fs, dtype=float)
        ss = np.asarray(ss, dtype=float)
        if not self.panels:
            return np.stack([fs, ss], axis=-1).reshape(-1, 2)
        out = np.full((fs.size, 2), np.nan)
        for p in self.panels:
            sel = (fs >= p.min_fs - 0.5) & (fs < p.max_fs + 0.5) & (ss >= p.min_ss - 0.5) & (ss < p.max_ss + 0.5)
            u = fs[sel] - p.min_fs + 0.5
            v = ss[sel] - p.min_ss + 0.5
            out[sel, 0] = p.corner_x + u * p.fs[0] + v * p.ss[0]
            out[sel, 1] = p.corner_y + u * p.fs[1] + v * p.ss[1]
        return out

    def on_detector(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if not self.panels:
            if self.shape is None:
                return np.ones(len(xy), dtype=bool)
            h, w = self.shape
            return (xy[:, 0] >= -0.5) & (xy[:, 0] < w - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] < h - 0.5)
        ok = np.zeros(len(xy), dtype=bool)
        for p in self.panels:
            m = np.array([[p.fs[0], p.ss[0]], [p.fs[1], p.ss[1]]], dtype=float)
            u, v = np.linalg.solve(m, (xy - [p.corner_x, p.corner_y]).T)
            ok |= (u >= 0) & (u < p.max_fs - p.min_fs + 1) & (v >= 0) & (v < p.max_ss - p.min_ss + 1)
        return ok

    def beam_centre(self) -> tuple:
        """The beam in plane coordinates: lab (0, 0) for panels; for a bare data array the caller
        must give it."""
        return (0.0, 0.0)


def rotate_about_beam(xy: np.ndarray, centre: tuple, angle_deg: float) -> np.ndarray:
    """Positions rotated by ``angle_deg`` about ``centre`` (same plane coordinates)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    d = xy - np.asarray(centre, dtype=float)
    return np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], axis=1) + np.asarray(centre, dtype=float)


def _finite(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return xy[np.all(np.isfinite(xy), axis=1)]


def _near_any(found: np.ndarray, points: np.ndarray, radius: float) -> int:
    if len(found) == 0 or len(points) == 0:
        return 0
    d, _ = cKDTree(points).query(found, k=1, distance_upper_bound=radius)
    return int(np.sum(d <= radius))


def lattice_score(found_xy, predicted_xy, strong, *, radius: float = 2.0, beam_xy: tuple = (0.0, 0.0),
                  control_deg: float = DEFAULT_CONTROL_DEG, on_detector=None) -> LatticeScore:
    """Score found peaks against predicted reflections (all in one plane, pixels).

    ``strong``: bool per predicted reflection (I/sigma >= cut); ``beam_xy``: the beam in the same
    plane; ``on_detector``: callable(xy) -> bool array for the control (None: keep all)."""
    found = _finite(found_xy)
    pred_all = np.asarray(predicted_xy, dtype=float).reshape(-1, 2)
    strong = np.asarray(strong, dtype=bool).reshape(-1)
    if len(strong) != len(pred_all):
        raise ValueError(f"strong has {len(strong)} entries for {len(pred_all)} predicted reflections")
    keep = np.all(np.isfinite(pred_all), axis=1)
    pred, strong = pred_all[keep], strong[keep]
    m = match_peaks(found, pred[strong], radius)
    score = LatticeScore(n_found=len(found), n_strong=int(strong.sum()), n_predicted=len(pred), strong_found=m.tp,
                         found_on_lattice=_near_any(found, pred, radius))
    rot = rotate_about_beam(pred, beam_xy, control_deg)
    ok = on_detector(rot) if on_detector is not None else np.ones(len(rot), dtype=bool)
    mc = match_peaks(found, rot[ok & strong], radius)
    score.control_strong = int(np.sum(ok & strong))
    score.control_strong_found = mc.tp
    score.control_found = len(found)
    score.control_found_on_lattice = _near_any(found, rot[ok], radius)
    return score
