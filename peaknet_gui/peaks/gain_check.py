"""Does the frame's background agree with the detector gain its geometry states?

The pixel-SNR test of the operating point floors the local noise at one photon where the
geometry gives the gain (``adu_per_photon`` / ``adu_per_eV``; :func:`~.detmaps.photon_adu`):
on the photon-sparse backgrounds of XFEL stills, stray photons otherwise stand 5-10 "sigmas"
above a background whose robust spread is the read noise.  A geometry that states a gain far
below the detector's (the CSPAD geometry converted by dxtbx says 1 ADU per photon where the
detector gives ~25) leaves the floor at a fraction of a photon, and a sensitive operating point
then keeps hundreds of photon blobs per frame.

A photon-limited background has a variance at most its mean in photons (Poisson; read noise
adds to the variance, pedestal offsets to the mean, detector response to neither much).  So in
the stated photons, ``var / mean`` of blank background blocks is about 1 where the stated gain
is right (measured on every shared real frame whose geometry states its gain: thaumatin, I03,
I23 and L-cysteine Pilatus/Eiger frames 0.95-1.03, the JUNGFRAU module 0.90, the CSPAD tile with
25 ADU/photon 0.90; simulated detectors with their gain 0.06-1.0) and the true gain over the
stated one at least where it is understated (the CSPAD stills with 1 ADU/photon: 5.0).  Above
:data:`UNDERSTATED_DISPERSION` the stated gain cannot be right and the photon floor is not
trusted (:func:`check_gain`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..geometry import Geometry
from .detmaps import DetectorMaps, photon_adu

#: background blocks are this many pixels on a side
BLOCK = 8
#: at most this many blocks are measured per frame (evenly strided): the median settles long before
MAX_BLOCKS = 6000
#: fewer usable blocks than this: no verdict
MIN_BLOCKS = 200
#: a block holding a pixel this many robust sigmas above the frame's median holds a spot, not background
SPOT_SIGMAS = 30.0
#: var / mean of the background in the stated photons above this: the stated gain is too small.
#: Right gains give 0.06-1.05 on every detector measured; the understated CSPAD gain gives 5
UNDERSTATED_DISPERSION = 2.5


@dataclass(frozen=True)
class GainCheck:
    """``dispersion``: median var / mean of blank background blocks in the geometry's photons
    (NaN: not measurable -- no gain stated, too few blank blocks); ``stated_adu``: the stated
    gain (ADU per photon; NaN: none); ``reliable``: the photon floor can be trusted."""

    dispersion: float
    stated_adu: float
    reliable: bool

    def message(self, name: str, figures: bool = True) -> str:
        """One line for the user when the floor is not trusted (``figures``: with this frame's
        dispersion; without, the same text for every frame of a run and geometry)."""
        if not np.isfinite(self.stated_adu):
            return (f"{name}: the geometry states no detector gain (adu_per_photon or adu_per_eV), so the pixel-SNR test "
                    "has no one-photon floor; the operating point for an unknown gain is used")
        how_much = f" {self.dispersion:.1f}x" if figures else ""
        return (f"{name}: the background varies{how_much} more than {self.stated_adu:g} ADU per photon allows "
                "(the geometry's gain is too small); the operating point for an unknown gain is used -- state the "
                "detector's adu_per_photon in the geometry for the sensitive one")


def background_dispersion(data: np.ndarray, usable: np.ndarray, adu: float) -> float:
    """Median over blank ``BLOCK``-square blocks (every pixel usable, none a spot's) of
    var / mean, in photons of ``adu`` ADU; NaN with fewer than ``MIN_BLOCKS`` such blocks or a
    non-positive background."""
    h, w = (data.shape[0] // BLOCK) * BLOCK, (data.shape[1] // BLOCK) * BLOCK
    if h == 0 or w == 0 or not np.isfinite(adu) or adu <= 0:
        return float("nan")
    nb_s, nb_f = h // BLOCK, w // BLOCK
    step = max(1, int(np.ceil(np.sqrt(nb_s * nb_f / MAX_BLOCKS))))
    rows, cols = np.arange(0, nb_s, step), np.arange(0, nb_f, step)
    ss = (rows[:, None] * BLOCK + np.arange(BLOCK)[None, :]).ravel()
    fs = (cols[:, None] * BLOCK + np.arange(BLOCK)[None, :]).ravel()
    sub = np.asarray(data)[np.ix_(ss, fs)].astype(np.float64)
    ok = np.asarray(usable, dtype=bool)[np.ix_(ss, fs)] & np.isfinite(sub)
    if not ok.any():
        return float("nan")
    vals = sub[ok]
    med = float(np.median(vals))
    spread = max(1.4826 * float(np.median(np.abs(vals - med))), 1e-6)
    blocks = sub.reshape(len(rows), BLOCK, len(cols), BLOCK).transpose(0, 2, 1, 3).reshape(-1, BLOCK * BLOCK)
    good = ok.reshape(len(rows), BLOCK, len(cols), BLOCK).transpose(0, 2, 1, 3).reshape(-1, BLOCK * BLOCK).all(axis=1)
    blocks = blocks[good]
    blocks = blocks[blocks.max(axis=1) < med + SPOT_SIGMAS * spread]
    if len(blocks) < MIN_BLOCKS:
        return float("nan")
    mean = blocks.mean(axis=1) / adu
    var = blocks.var(axis=1, ddof=1) / (adu * adu)
    lit = mean > max(0.5 * float(np.median(mean)), 1e-3)  # blocks with background to measure
    if lit.sum() < MIN_BLOCKS:
        return float("nan")
    return float(np.median(var[lit] / mean[lit]))


def check_gain(data: np.ndarray, usable: np.ndarray, geometry: Optional[Geometry],
               maps: Optional[DetectorMaps] = None, photon_energy_ev: Optional[float] = None) -> GainCheck:
    """Whether the photon floor of the pixel-SNR test can be trusted on this frame: the geometry
    states a gain and the background is not overdispersed in its photons (a frame too empty or
    too small to measure keeps the stated gain).  Multi-panel detectors are judged on the gain
    of their first panel with pixels (the geometries met state one gain for all panels)."""
    if geometry is None:
        return GainCheck(float("nan"), float("nan"), False)
    panels = np.arange(len(geometry.panels))
    adus = photon_adu(geometry, panels, photon_energy_ev)
    stated = float(adus[np.isfinite(adus)][0]) if np.isfinite(adus).any() else float("nan")
    if not np.isfinite(stated):
        return GainCheck(float("nan"), stated, False)
    if maps is not None:
        usable = usable & (maps.panel >= 0)
    dispersion = background_dispersion(data, usable, stated)
    reliable = not (np.isfinite(dispersion) and dispersion > UNDERSTATED_DISPERSION)
    return GainCheck(dispersion, stated, reliable)


def check_frame_gain(data: np.ndarray, bad: Optional[np.ndarray], geometry: Optional[Geometry],
                     maps: Optional[DetectorMaps] = None, photon_energy_ev: Optional[float] = None) -> GainCheck:
    """:func:`check_gain` of a frame whose ``bad`` pixels (and non-finite values) are not background."""
    usable = np.isfinite(data) if data.dtype.kind == "f" else np.ones(data.shape, dtype=bool)
    if bad is not None:
        usable &= ~np.asarray(bad, dtype=bool)
    return check_gain(data, usable, geometry, maps, photon_energy_ev)
