"""Training augmentation: detector "personalities" on whole frames, geometry and masking on crops.

Frame level (:func:`augment_frame`, before normalisation, in units of the frame's own noise
scale ``s`` so it works whatever the simulator's units are) -- closes the gap between the
simulated detectors and real ones:

* extra Gaussian read noise (CCD/CSPAD electronics), sigma up to ``read_noise_max * s``;
* coarser ADC quantisation (rounding to a quantum of up to ``quantum_max * s``);

  (both kept small -- 0.3 s and 0.5 s by default -- because the peak labels follow what a
  DIALS-like spot finder sees in the frame as simulated: much more noise would turn labelled
  spots invisible);
* per-panel pedestal residuals (CSPAD ASIC offsets), up to ``panel_offset_max * s``;
* 2x2 binning (sum; labels: peak over artifact over background) with ``binning_prob``;
* isolated hot pixels (label background) at ``hot_pixel_rate``;
* bright or dark detector columns/rows (CSPAD common-mode and column defects), label unchanged,
  with ``line_defect_prob``.

Gain and offset changes are no-ops after :func:`~.normalize.normalize` (it is invariant to
them), so they are not drawn.

Crop level (:func:`crop_with_rotation`, :func:`augment_crop`, after normalisation):

* random in-plane rotation (any angle, nearest-neighbour so that pixel values and noise
  statistics stay exactly those of the detector) and random shifts (crop centre jitter);
* flips;
* random rectangular masking as in the PeakNet paper (50 rectangles of 80-120 px on a
  1920x1920 frame, i.e. ``rect_per_megapixel`` ~ 13.6, scaled to the crop's area), and
  module-gap stripes: masked pixels become 0 (the normalised bad value) with label background;
* zero padding outside one panel for multi-panel detectors (``panel_crop_prob``; the
  predictor runs CSPAD ASICs one by one, padded with zeros).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import List, Optional, Tuple

import numpy as np

from .normalize import panel_stats


@dataclass
class AugmentSettings:
    # crop sampling
    peak_bias: float = 0.5
    artifact_bias: float = 0.2
    crop_jitter: float = 0.35  # crop centre offset, fraction of the crop size
    rotate_prob: float = 0.7
    flip_prob: float = 0.5
    panel_crop_prob: float = 0.6
    # masking
    rect_per_megapixel: float = 50 / (1920 * 1920 / 1e6)
    rect_min: int = 80
    rect_max: int = 120
    gap_stripe_prob: float = 0.25
    # detector personality (whole frames)
    personality_prob: float = 0.6
    read_noise_max: float = 0.3
    quantum_max: float = 0.5
    panel_offset_max: float = 1.0
    binning_prob: float = 0.05
    hot_pixel_rate: float = 5e-6
    line_defect_prob: float = 0.3

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def none(cls) -> "AugmentSettings":
        """No augmentation at all (validation)."""
        return cls(rotate_prob=0, flip_prob=0, panel_crop_prob=0, rect_per_megapixel=0, gap_stripe_prob=0,
                   personality_prob=0, binning_prob=0, hot_pixel_rate=0, crop_jitter=0, line_defect_prob=0)


Panels = Optional[List[Tuple[slice, slice]]]


def bin2x2(data: np.ndarray, labels: np.ndarray, bad: np.ndarray, panels: Panels):
    """2x2 binning: data summed, a binned pixel is bad if any is, labels by priority
    peak > artifact > background (255 only when all four are unlabelled)."""
    h, w = (data.shape[0] // 2) * 2, (data.shape[1] // 2) * 2
    d = data[:h, :w].astype(np.float32)
    d = d[0::2, 0::2] + d[1::2, 0::2] + d[0::2, 1::2] + d[1::2, 1::2]
    b = bad[:h, :w]
    b = b[0::2, 0::2] | b[1::2, 0::2] | b[0::2, 1::2] | b[1::2, 1::2]
    lab = labels[:h, :w]
    quads = [lab[0::2, 0::2], lab[1::2, 0::2], lab[0::2, 1::2], lab[1::2, 1::2]]
    out = np.full(d.shape, 255, dtype=np.uint8)
    for cls in (0, 2, 1):  # later classes win
        hit = np.zeros(d.shape, dtype=bool)
        for q in quads:
            hit |= q == cls
        out[hit] = cls
    newp = None
    if panels:
        newp = [(slice(sl[0].start // 2, max(sl[0].start // 2 + 1, sl[0].stop // 2)),
                 slice(sl[1].start // 2, max(sl[1].start // 2 + 1, sl[1].stop // 2))) for sl in panels]
    return d, out, b, newp


def augment_frame(data: np.ndarray, labels: np.ndarray, bad: np.ndarray, panels: Panels,
                  rng: np.random.Generator, aug: AugmentSettings):
    """A frame with a random detector personality (see the module docstring)."""
    data = np.asarray(data)
    bad = np.asarray(bad, dtype=bool)
    if aug.binning_prob and rng.random() < aug.binning_prob:
        data, labels, bad, panels = bin2x2(data, labels, bad, panels)
    if not (aug.personality_prob and rng.random() < aug.personality_prob):
        return data, labels, bad, panels
    x = data.astype(np.float32, copy=True)
    x[bad] = 0
    _, s = panel_stats(x, ~bad)
    if rng.random() < 0.5 and aug.read_noise_max > 0:
        x += rng.normal(0.0, rng.uniform(0, aug.read_noise_max) * s, size=x.shape).astype(np.float32)
    if panels and rng.random() < 0.5 and aug.panel_offset_max > 0:
        for sl in panels:
            x[sl] += np.float32(rng.normal(0.0, aug.panel_offset_max * s))
    if rng.random() < 0.3 and aug.quantum_max > 0:
        q = np.float32(rng.uniform(0.05, aug.quantum_max) * s)
        x = np.round(x / q) * q
    if aug.line_defect_prob and rng.random() < aug.line_defect_prob:
        regions = panels or [(slice(0, x.shape[0]), slice(0, x.shape[1]))]
        for _ in range(int(rng.integers(1, 8))):
            sl = regions[int(rng.integers(len(regions)))]
            r0, r1 = sl[0].start or 0, sl[0].stop or x.shape[0]
            c0, c1 = sl[1].start or 0, sl[1].stop or x.shape[1]
            amp = np.float32(rng.uniform(1.5, 8.0) * s * (1 if rng.random() < 0.8 else -1))
            if rng.random() < 0.5:
                c = int(rng.integers(c0, c1))
                x[r0:r1, c] += amp
            else:
                r = int(rng.integers(r0, r1))
                x[r, c0:c1] += amp
    if aug.hot_pixel_rate > 0:
        n = rng.poisson(aug.hot_pixel_rate * x.size)
        if n:
            iy = rng.integers(0, x.shape[0], n)
            ix = rng.integers(0, x.shape[1], n)
            x[iy, ix] += (s * 10 ** rng.uniform(1, 3, n)).astype(np.float32)
            labels = labels.copy()
            labels[iy, ix] = 0
    return x, labels, bad, panels


def crop_with_rotation(image: np.ndarray, labels: np.ndarray, cy: float, cx: float, crop: int,
                       angle: float = 0.0, restrict: Optional[Tuple[slice, slice]] = None):
    """``crop x crop`` window centred at (cy, cx), rotated by ``angle`` (radians), sampled with
    nearest neighbours; outside the frame (or outside ``restrict``) -> image 0, label 0."""
    h, w = image.shape
    y0, y1, x0, x1 = 0, h, 0, w
    if restrict is not None:
        y0, y1 = restrict[0].start or 0, restrict[0].stop or h
        x0, x1 = restrict[1].start or 0, restrict[1].stop or w
    r = np.arange(crop, dtype=np.float32) - (crop - 1) / 2.0
    if angle == 0.0:
        iy = np.rint(cy + r).astype(np.int64)[:, None] + np.zeros((1, crop), np.int64)
        ix = np.rint(cx + r).astype(np.int64)[None, :] + np.zeros((crop, 1), np.int64)
    else:
        c, s = math.cos(angle), math.sin(angle)
        yy, xx = r[:, None], r[None, :]
        iy = np.rint(cy + c * yy - s * xx).astype(np.int64)
        ix = np.rint(cx + s * yy + c * xx).astype(np.int64)
    ok = (iy >= y0) & (iy < y1) & (ix >= x0) & (ix < x1)
    x = np.zeros((crop, crop), dtype=np.float32)
    y = np.zeros((crop, crop), dtype=np.int64)
    x[ok] = image[iy[ok], ix[ok]]
    y[ok] = labels[iy[ok], ix[ok]]
    return x, y


def augment_crop(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, aug: AugmentSettings):
    """Flips and masking of a normalised crop (in place where possible)."""
    if aug.flip_prob and rng.random() < aug.flip_prob:
        x, y = x[:, ::-1], y[:, ::-1]
    if aug.flip_prob and rng.random() < aug.flip_prob:
        x, y = x[::-1], y[::-1]
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    h, w = x.shape
    n = rng.poisson(aug.rect_per_megapixel * h * w / 1e6) if aug.rect_per_megapixel > 0 else 0
    for _ in range(n):
        rh, rw = rng.integers(aug.rect_min, aug.rect_max + 1, size=2)
        ry, rx = rng.integers(-rh // 2, h), rng.integers(-rw // 2, w)
        sl = (slice(max(0, ry), max(0, ry + rh)), slice(max(0, rx), max(0, rx + rw)))
        x[sl] = 0
        y[sl] = 0
    if aug.gap_stripe_prob and rng.random() < aug.gap_stripe_prob:
        width = int(rng.integers(1, 13))
        rows = rng.random() < 0.5
        pos = int(rng.integers(0, max(1, (h if rows else w) - width)))
        if rows:
            x[pos : pos + width] = 0
            y[pos : pos + width] = 0
        else:
            x[:, pos : pos + width] = 0
            y[:, pos : pos + width] = 0
    return x, y
