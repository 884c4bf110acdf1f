"""Matching found peaks to reference peaks: greedy one-to-one within a radius.

All candidate pairs closer than ``radius`` (Euclidean, pixels) are taken in order of increasing
distance; a pair is accepted when neither peak is matched yet.  This is the usual scoring of
peak finders against a reference list (precision = tp / found, recall = tp / reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


@dataclass
class MatchResult:
    """``pairs``: (n, 2) int array of (found index, reference index); ``distances`` of the pairs."""

    tp: int
    fp: int
    fn: int
    pairs: np.ndarray
    distances: np.ndarray

    @property
    def precision(self) -> float:
        n = self.tp + self.fp
        return self.tp / n if n else 1.0

    @property
    def recall(self) -> float:
        n = self.tp + self.fn
        return self.tp / n if n else 1.0

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 1.0

    def as_dict(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision,
                "recall": self.recall, "f1": self.f1}


def _xy(points) -> np.ndarray:
    a = np.asarray(points, dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, 2))
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"expected (n, 2) coordinates, got shape {a.shape}")
    return a


def match_peaks(found, reference, radius: float = 2.0) -> MatchResult:
    """Greedy one-to-one matching of ``found`` to ``reference`` points ((n, 2) arrays of (fs, ss)
    in the same convention) within ``radius`` pixels."""
    f = _xy(found)
    r = _xy(reference)
    if len(f) == 0 or len(r) == 0:
        return MatchResult(0, len(f), len(r), np.zeros((0, 2), dtype=np.int64), np.zeros(0))
    tree_r = cKDTree(r)
    tree_f = cKDTree(f)
    sdm = tree_f.sparse_distance_matrix(tree_r, radius, output_type="coo_matrix")
    # sparse_distance_matrix drops exact zeros; add coincident pairs back
    zi, zj = [], []
    for i, js in enumerate(tree_f.query_ball_tree(tree_r, 0.0)):
        for j in js:
            zi.append(i)
            zj.append(j)
    rows = np.concatenate([sdm.row, np.asarray(zi, dtype=np.int64)]).astype(np.int64)
    cols = np.concatenate([sdm.col, np.asarray(zj, dtype=np.int64)]).astype(np.int64)
    dist = np.concatenate([sdm.data, np.zeros(len(zi))])
    order = np.lexsort((cols, rows, dist))  # by distance, ties by index: deterministic
    used_f = np.zeros(len(f), dtype=bool)
    used_r = np.zeros(len(r), dtype=bool)
    pairs, dists = [], []
    for k in order:
        i, j = rows[k], cols[k]
        if used_f[i] or used_r[j] or dist[k] > radius:
            continue
        used_f[i] = used_r[j] = True
        pairs.append((i, j))
        dists.append(dist[k])
    tp = len(pairs)
    return MatchResult(
        tp, len(f) - tp, len(r) - tp,
        np.asarray(pairs, dtype=np.int64).reshape(-1, 2), np.asarray(dists, dtype=np.float64),
    )
