"""Lattice truth: what an indexed crystal lattice says a frame's Bragg spots are.

A frame is indexed with CrystFEL's ``indexamajig`` (xgandalf, the known cell) from a generous
list of candidate peaks; the reflections the lattice predicts on the detector whose integrated
I/sigma(I) reaches a cut (3 by default) are the truth.  A peak finder is then scored by

* **lattice recall**: the fraction of those strong predicted reflections it found (a found peak
  within ``radius`` px),
* **on-lattice fraction**: the fraction of its peaks within ``radius`` px of *any* predicted
  reflection (weak ones included),

each with a **control**: the same found peaks scored against the predicted reflections rotated
about the beam by a fixed angle, which shows what chance gives at that spot density.

Modules (no Qt; CrystFEL is only *called*, when its programs are on ``PATH``):

* :mod:`.crystfel`  -- finding ``indexamajig``/``pattern_sim``, cell specs, running indexamajig
* :mod:`.streamrefl` -- an indexamajig stream's chunks with crystals and reflection lists
* :mod:`.scoring`   -- lattice recall, on-lattice fraction and the rotated control (pure numpy)
* :mod:`.frames`    -- real frames written as HDF5 + a CrystFEL geometry that indexamajig reads
* :mod:`.evaluate`  -- the whole evaluation of ``peaknet evaluate --lattice``
"""

from .scoring import LatticeScore, lattice_score, rotate_about_beam

__all__ = ["LatticeScore", "lattice_score", "rotate_about_beam"]
