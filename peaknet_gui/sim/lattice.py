"""Crystal lattices: unit cells of every lattice system, centring absences, Miller indices.

Conventions: reciprocal vectors carry no factor 2*pi (|q| = 1/d, inverse Angstrom).  The
direct basis is the standard crystallographic orthogonalisation (a along x, b in the x-y plane);
:meth:`UnitCell.reciprocal_matrix` ``B`` has the reciprocal basis vectors a*, b*, c* as columns, so
``q = B @ (h, k, l)`` and ``d = 1/|q|``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

from ..errors import InputError

#: lattice centrings (R means rhombohedral in the hexagonal setting, "obverse": -h+k+l = 3n)
CENTRINGS = ("P", "A", "B", "C", "I", "F", "R")

#: lattice systems and the centrings they admit (Bravais lattices)
LATTICE_SYSTEMS = {
    "triclinic": ("P",),
    "monoclinic": ("P", "C"),
    "orthorhombic": ("P", "C", "I", "F"),
    "tetragonal": ("P", "I"),
    "trigonal": ("P", "R"),
    "hexagonal": ("P",),
    "cubic": ("P", "I", "F"),
}


@dataclass(frozen=True)
class UnitCell:
    """a, b, c in Angstrom; alpha, beta, gamma in degrees; ``centering`` one of :data:`CENTRINGS`."""

    a: float
    b: float
    c: float
    alpha: float = 90.0
    beta: float = 90.0
    gamma: float = 90.0
    centering: str = "P"

    def __post_init__(self):
        if self.centering not in CENTRINGS:
            raise InputError(f"unit cell: centring must be one of {', '.join(CENTRINGS)}, not {self.centering!r}")
        if min(self.a, self.b, self.c) <= 0:
            raise InputError(f"unit cell: edges must be positive ({self.a}, {self.b}, {self.c})")
        if not np.isfinite(self.volume) or self.volume <= 0:
            raise InputError(f"unit cell: angles ({self.alpha}, {self.beta}, {self.gamma}) do not make a cell")

    @property
    def volume(self) -> float:
        ca, cb, cg = np.cos(np.deg2rad([self.alpha, self.beta, self.gamma]))
        v2 = 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg
        return float(self.a * self.b * self.c * np.sqrt(v2)) if v2 > 0 else float("nan")

    def direct_matrix(self) -> np.ndarray:
        """Rows are the direct basis vectors a, b, c (Angstrom), a along x, b in the x-y plane."""
        al, be, ga = np.deg2rad([self.alpha, self.beta, self.gamma])
        a_vec = np.array([self.a, 0.0, 0.0])
        b_vec = np.array([self.b * np.cos(ga), self.b * np.sin(ga), 0.0])
        cx = self.c * np.cos(be)
        cy = self.c * (np.cos(al) - np.cos(be) * np.cos(ga)) / np.sin(ga)
        cz = np.sqrt(max(self.c * self.c - cx * cx - cy * cy, 0.0))
        return np.array([a_vec, b_vec, [cx, cy, cz]])

    def reciprocal_matrix(self) -> np.ndarray:
        """Columns are a*, b*, c* (1/Angstrom, no 2 pi): ``q = B @ hkl``."""
        return np.linalg.inv(self.direct_matrix())

    def d_spacing(self, hkl) -> np.ndarray:
        q = np.asarray(hkl, dtype=np.float64) @ self.reciprocal_matrix().T
        with np.errstate(divide="ignore"):
            return 1.0 / np.linalg.norm(q, axis=-1)

    def as_dict(self) -> dict:
        return asdict(self)


def centring_allowed(hkl: np.ndarray, centering: str) -> np.ndarray:
    """True for reflections the lattice centring allows (general reflection conditions)."""
    h, k, l = (np.asarray(hkl)[..., i] for i in range(3))
    if centering == "P":
        return np.ones(h.shape, dtype=bool)
    if centering == "A":
        return (k + l) % 2 == 0
    if centering == "B":
        return (h + l) % 2 == 0
    if centering == "C":
        return (h + k) % 2 == 0
    if centering == "I":
        return (h + k + l) % 2 == 0
    if centering == "F":
        return ((h + k) % 2 == 0) & ((k + l) % 2 == 0) & ((h + l) % 2 == 0)
    if centering == "R":
        return (-h + k + l) % 3 == 0
    raise InputError(f"unknown centring {centering!r}")


@dataclass(frozen=True)
class MillerTable:
    """Allowed reflections of a cell to a resolution, with what does not depend on orientation:
    ``hkl`` int32 (N, 3), ``hkl_f`` the same as float32 (for fast pre-selection), ``qn2`` =
    |B h|^2 (1/A^2, float32)."""

    hkl: np.ndarray
    hkl_f: np.ndarray
    qn2: np.ndarray

    def __len__(self) -> int:
        return len(self.qn2)


def miller_indices(cell: UnitCell, d_min: float) -> np.ndarray:
    """All (h, k, l) != 0 allowed by the centring with d >= ``d_min``, int32 (N, 3)."""
    return miller_table(cell, d_min).hkl.copy()


def miller_table(cell: UnitCell, d_min: float) -> MillerTable:
    """The :class:`MillerTable` of ``cell`` to ``d_min`` (cached: a run reuses its cells)."""
    if not d_min > 0:
        raise InputError(f"d_min must be positive, not {d_min}")
    return _miller_cached(cell, round(float(d_min), 3))


@lru_cache(maxsize=8)
def _miller_cached(cell: UnitCell, d_min: float) -> MillerTable:
    direct = cell.direct_matrix()
    # |h| = |q . a| <= |q| |a|  ->  |h| <= |a| / d_min
    hmax = np.floor(np.linalg.norm(direct, axis=1) / d_min).astype(int)
    B = cell.reciprocal_matrix()
    qmax2 = 1.0 / (d_min * d_min)
    out = []
    ks = np.arange(-hmax[1], hmax[1] + 1)
    ls = np.arange(-hmax[2], hmax[2] + 1)
    kk, ll = np.meshgrid(ks, ls, indexing="ij")
    kl = np.stack([kk.ravel(), ll.ravel()], axis=1)
    qkl = kl @ B[:, 1:].T  # (M, 3)
    for h in range(-hmax[0], hmax[0] + 1):  # one slab of h at a time keeps memory small
        q = qkl + h * B[:, 0]
        keep = np.einsum("ij,ij->i", q, q) <= qmax2
        if np.any(keep):
            sel = kl[keep]
            out.append(np.column_stack([np.full(len(sel), h), sel]))
    hkl = np.concatenate(out).astype(np.int32) if out else np.zeros((0, 3), np.int32)
    hkl = hkl[np.any(hkl != 0, axis=1)]
    hkl = hkl[centring_allowed(hkl, cell.centering)]
    q = hkl.astype(np.float64) @ B.T
    return MillerTable(hkl, hkl.astype(np.float32), np.einsum("ij,ij->i", q, q).astype(np.float32))


def random_cell(rng: np.random.Generator, system: Optional[str] = None, *, edge_range=(35.0, 220.0),
                max_volume: float = 4e6) -> UnitCell:
    """A random protein-like cell of the given (or a random) lattice system, with a Bravais centring."""
    systems = list(LATTICE_SYSTEMS)
    if system is None:
        # weighted towards the systems proteins crystallise in most
        weights = np.array([0.05, 0.2, 0.3, 0.15, 0.1, 0.1, 0.1])
        system = systems[rng.choice(len(systems), p=weights / weights.sum())]
    if system not in LATTICE_SYSTEMS:
        raise InputError(f"unknown lattice system {system!r} (one of {', '.join(systems)})")
    centering = str(rng.choice(LATTICE_SYSTEMS[system]))
    lo, hi = np.log(edge_range[0]), np.log(edge_range[1])
    for _ in range(100):
        a, b, c = np.exp(rng.uniform(lo, hi, size=3))
        al = be = ga = 90.0
        if system == "triclinic":
            al, be, ga = rng.uniform(70, 115, size=3)
        elif system == "monoclinic":
            be = rng.uniform(92, 120)
        elif system == "tetragonal":
            b = a
        elif system in ("trigonal", "hexagonal"):
            b, ga = a, 120.0
        elif system == "cubic":
            b = c = a
        try:
            cell = UnitCell(float(a), float(b), float(c), float(al), float(be), float(ga), centering)
        except InputError:
            continue
        if cell.volume <= max_volume:
            return cell
    return UnitCell(60.0, 70.0, 80.0, centering="P")


#: thaumatin (the real test crystal): P 41 21 2, a = b = 57.8, c = 150.0 Angstrom
THAUMATIN = UnitCell(57.8, 57.8, 150.0, 90.0, 90.0, 90.0, "P")
#: thermolysin (the real CSPAD crystal): P 61 22, a = b = 92.9, c = 130.4 Angstrom
THERMOLYSIN = UnitCell(92.9, 92.9, 130.4, 90.0, 90.0, 120.0, "P")
#: lysozyme, the XFEL workhorse: P 43 21 2, a = b = 79.1, c = 38.0 Angstrom
LYSOZYME = UnitCell(79.1, 79.1, 38.0, 90.0, 90.0, 90.0, "P")
