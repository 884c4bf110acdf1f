"""Calibrant reflections from pyFAI's calibrant registry (AgBh, CeO2, LaB6, Si, ...).

:func:`ring_table` gives the rings a calibrant makes at one wavelength: d-spacing, 2-theta,
q and relative intensity.  d-spacings, Miller indices and (where pyFAI's calibrant file lists
them) intensities and multiplicities come from ``pyFAI.calibrant.get_calibrant``; nothing is
typed in here.  Calibrants without tabulated intensities (AgBh) get an exponential falloff in q,
which is how the lamellar orders of a real silver behenate frame fade.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from ..errors import CalibrationError

log = logging.getLogger(__name__)

#: default falloff (1/Angstrom) of ring intensities for calibrants whose file lists none
DEFAULT_Q_FALLOFF = 0.5

CalibrantLike = Union[str, "object"]  # a calibrant name or a pyFAI Calibrant instance


def calibrant_names() -> list:
    """Names of every calibrant pyFAI knows (``AgBh``, ``CeO2``, ``LaB6``, ``Si``, ...)."""
    from pyFAI.calibrant import CALIBRANT_FACTORY

    return sorted(CALIBRANT_FACTORY.keys())


def load_calibrant(calibrant: CalibrantLike, wavelength_a: Optional[float] = None):
    """A fresh pyFAI ``Calibrant`` (name, case-insensitive, or instance), wavelength set in Angstrom."""
    from pyFAI.calibrant import Calibrant, get_calibrant

    if isinstance(calibrant, Calibrant):
        cal = Calibrant(dspacing=list(_dspacing(calibrant)))
        cal.config = getattr(calibrant, "config", None)
    else:
        name = str(calibrant)
        known = {n.lower(): n for n in calibrant_names()}
        if name.lower() not in known:
            raise CalibrationError(
                f"unknown calibrant {name!r}; pyFAI knows: {', '.join(calibrant_names())}"
            )
        cal = get_calibrant(known[name.lower()])
    if wavelength_a is not None:
        if not np.isfinite(wavelength_a) or wavelength_a <= 0:
            raise CalibrationError(f"wavelength must be a positive number of Angstrom, not {wavelength_a}")
        cal.wavelength = wavelength_a * 1e-10
    return cal


def calibrant_name(calibrant: CalibrantLike) -> str:
    if isinstance(calibrant, str):
        return calibrant
    name = getattr(calibrant, "name", None)
    return str(name() if callable(name) else name or "calibrant")


def _dspacing(cal) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = cal.dspacing if hasattr(cal, "dspacing") else cal.dSpacing
        d = d() if callable(d) else d
    return np.asarray(d, dtype=np.float64)


@dataclass
class RingTable:
    """Rings of a calibrant at one wavelength, in order of increasing 2-theta.

    ``index`` is the ring's position in the calibrant's full list (0 = largest d), which is the
    ring number pyFAI's control points use.  ``intensity`` is relative (strongest = 1).
    """

    calibrant: str
    wavelength_a: float
    index: np.ndarray
    d_a: np.ndarray
    twotheta_rad: np.ndarray
    q_inv_a: np.ndarray  # 4 pi sin(theta) / lambda
    intensity: np.ndarray
    hkl: list

    def __len__(self) -> int:
        return len(self.d_a)

    def select(self, keep) -> "RingTable":
        """A table holding only the rings ``keep`` (bool mask or positions in this table)."""
        keep = np.asarray(keep)
        pos = np.flatnonzero(keep) if keep.dtype == bool else keep.astype(np.int64)
        return RingTable(
            self.calibrant, self.wavelength_a, self.index[pos], self.d_a[pos], self.twotheta_rad[pos],
            self.q_inv_a[pos], self.intensity[pos], [self.hkl[i] for i in pos],
        )


def ring_table(
    calibrant: CalibrantLike,
    wavelength_a: float,
    max_twotheta_rad: float = np.pi,
    q_falloff: float = DEFAULT_Q_FALLOFF,
) -> RingTable:
    """The calibrant's rings at ``wavelength_a`` (Angstrom) up to ``max_twotheta_rad``.

    Relative intensities: the calibrant file's ``intensity`` (times nothing -- pyFAI's tabulated
    values already include multiplicity) where given, else ``exp(-q / q_falloff)``.
    """
    cal = load_calibrant(calibrant, wavelength_a)
    name = calibrant_name(calibrant)
    d = _dspacing(cal)
    reflections = list(getattr(getattr(cal, "config", None), "reflections", None) or [])
    inten = np.full(len(d), np.nan)
    hkl = [None] * len(d)
    for i, ref in enumerate(reflections[: len(d)]):
        if abs(ref.dspacing - d[i]) < 1e-6 * max(1.0, d[i]):
            if ref.intensity is not None:
                inten[i] = float(ref.intensity)
            if ref.hkl is not None:
                hkl[i] = tuple(int(v) for v in ref.hkl)
    ok = d > wavelength_a / 2.0
    tth = np.full(len(d), np.nan)
    tth[ok] = 2.0 * np.arcsin(wavelength_a / (2.0 * d[ok]))
    q = 4.0 * np.pi * np.sin(tth / 2.0) / wavelength_a
    if np.all(np.isnan(inten)):
        inten = np.exp(-q / q_falloff)
    else:
        inten = np.where(np.isnan(inten), np.nanmin(inten), inten)
    keep = ok & (tth <= max_twotheta_rad)
    idx = np.flatnonzero(keep)
    order = idx[np.argsort(tth[idx], kind="stable")]
    peak = inten[order].max() if len(order) else 1.0
    return RingTable(
        calibrant=name,
        wavelength_a=float(wavelength_a),
        index=order.astype(np.int64),
        d_a=d[order],
        twotheta_rad=tth[order],
        q_inv_a=q[order],
        intensity=inten[order] / peak if peak > 0 else inten[order],
        hkl=[hkl[i] for i in order],
    )
