"""Label operations of the curation loop (Qt-free): start from the model's prediction, remove a
false peak, add a missed one, paint or erase artifact pixels -- with undo.

Labels are the training format of :mod:`peaknet_gui.model.dataset`: ``uint8`` per data pixel,
``0`` background, ``1`` peak, ``2`` artifact, ``255`` unlabelled (ignored by the loss).
Positions are pixel indices of the data array (fs = column, ss = row), as everywhere.

* :func:`labels_from_prediction` -- the frame as the model sees it: the peak-class components
  that became peaks are ``1``, the peak-class components the finder's filters dropped are
  ``255`` (neither peak nor background), the artifact class is ``2``, bad pixels ``255``;
* :func:`peak_component` / :meth:`LabelEditor.remove_peak` -- the label-1 component at (or
  nearest to, within ``radius``) a click becomes background;
* :func:`spot_pixels` -- the pixels of a spot at a click from a local threshold: the median of a
  small box around the click plus ``k`` robust sigmas (MAD), the connected pixels above it that
  touch the brightest above-threshold pixel near the click (the preview before
  :meth:`LabelEditor.add_peak`);
* :meth:`LabelEditor.paint_artifact` / :meth:`LabelEditor.erase_artifact` -- brush pixels become
  artifact / artifact pixels among them become background.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

BACKGROUND, PEAK, ARTIFACT, UNLABELLED = 0, 1, 2, 255
EIGHT = np.ones((3, 3), dtype=bool)


def labels_from_prediction(shape: Tuple[int, int], peak_mask: Optional[np.ndarray], artifact_mask: Optional[np.ndarray],
                           peaks_fs: Sequence[float] = (), peaks_ss: Sequence[float] = (),
                           bad: Optional[np.ndarray] = None, data: Optional[np.ndarray] = None) -> np.ndarray:
    """Labels of a frame from the model's class maps (bool, data shape) and the peaks it kept.

    A peak-class component containing a kept peak (its rounded centre, else the nearest pixel of
    the component within 2 px) is ``1``; the other peak-class components are ``255``.  Without
    a peak map (the classical finder, a compact stored result) each peak's pixels come from
    :func:`spot_pixels` on ``data``.  Artifact pixels are ``2``, ``bad`` pixels ``255``.
    """
    shape = (int(shape[0]), int(shape[1]))
    labels = np.zeros(shape, dtype=np.uint8)
    if artifact_mask is not None:
        labels[np.asarray(artifact_mask, dtype=bool)] = ARTIFACT
    fs = np.asarray(peaks_fs, dtype=np.float64).ravel()
    ss = np.asarray(peaks_ss, dtype=np.float64).ravel()
    if peak_mask is not None:
        pm = np.asarray(peak_mask, dtype=bool)
        comp, n = ndimage.label(pm, structure=EIGHT)
        keep = np.zeros(n + 1, dtype=bool)
        for x, y in zip(fs, ss):
            c = _component_near(comp, x, y, 2.0)
            if c:
                keep[c] = True
        labels[pm] = UNLABELLED
        labels[keep[comp] & pm] = PEAK
    elif data is not None:
        for x, y in zip(fs, ss):
            labels[spot_pixels(data, x, y, bad=bad)] = PEAK
    if bad is not None:
        labels[np.asarray(bad, dtype=bool)] = UNLABELLED
    return labels


def _component_near(comp: np.ndarray, fs: float, ss: float, radius: float) -> int:
    """The component id at (fs, ss), else the nearest non-zero pixel's within ``radius`` (0: none)."""
    h, w = comp.shape
    r, c = int(round(ss)), int(round(fs))
    if 0 <= r < h and 0 <= c < w and comp[r, c]:
        return int(comp[r, c])
    k = int(np.ceil(radius))
    r0, r1, c0, c1 = max(0, r - k), min(h, r + k + 1), max(0, c - k), min(w, c + k + 1)
    if r0 >= r1 or c0 >= c1:
        return 0
    sub = comp[r0:r1, c0:c1]
    ys, xs = np.nonzero(sub)
    if not len(ys):
        return 0
    d2 = (ys + r0 - ss) ** 2 + (xs + c0 - fs) ** 2
    j = int(np.argmin(d2))
    return int(sub[ys[j], xs[j]]) if d2[j] <= radius * radius else 0


def peak_component(labels: np.ndarray, fs: float, ss: float, radius: float = 3.0, window: int = 48) -> np.ndarray:
    """Bool mask (data shape) of the label-1 component at (fs, ss) or nearest to it within
    ``radius`` pixels; all False when there is none.  Only a ``window`` around the click is
    searched (peaks are small), so this stays fast on large detectors."""
    h, w = labels.shape
    r, c = int(round(ss)), int(round(fs))
    r0, r1, c0, c1 = max(0, r - window), min(h, r + window + 1), max(0, c - window), min(w, c + window + 1)
    out = np.zeros(labels.shape, dtype=bool)
    if r0 >= r1 or c0 >= c1:
        return out
    comp, _ = ndimage.label(labels[r0:r1, c0:c1] == PEAK, structure=EIGHT)
    cid = _component_near(comp, fs - c0, ss - r0, radius)
    if cid:
        out[r0:r1, c0:c1] = comp == cid
    return out


@dataclass
class SpotThreshold:
    """How :func:`spot_pixels` decides: box half-size, ``k`` sigmas, search radius of the seed."""

    half_box: int = 7
    k: float = 3.0
    seed_radius: int = 2


def local_threshold(data: np.ndarray, fs: float, ss: float, bad: Optional[np.ndarray] = None,
                    half_box: int = 7, k: float = 3.0) -> Tuple[float, float, float, tuple]:
    """(threshold, median, sigma, (r0, r1, c0, c1)) of the box around (fs, ss): median of the
    usable pixels + ``k`` x 1.4826 MAD (sigma at least sqrt(median) for counting data, and > 0)."""
    h, w = data.shape
    r, c = int(round(ss)), int(round(fs))
    r0, r1, c0, c1 = max(0, r - half_box), min(h, r + half_box + 1), max(0, c - half_box), min(w, c + half_box + 1)
    box = np.asarray(data[r0:r1, c0:c1], dtype=np.float64)
    ok = np.isfinite(box)
    if bad is not None:
        ok &= ~np.asarray(bad[r0:r1, c0:c1], dtype=bool)
    vals = box[ok]
    if vals.size == 0:
        return float("inf"), float("nan"), float("nan"), (r0, r1, c0, c1)
    med = float(np.median(vals))
    sigma = 1.4826 * float(np.median(np.abs(vals - med)))
    if med > 0:
        sigma = max(sigma, 0.5 * np.sqrt(med))
    sigma = max(sigma, 1e-6 * max(1.0, abs(med)))
    return med + k * sigma, med, sigma, (r0, r1, c0, c1)


def spot_pixels(data: np.ndarray, fs: float, ss: float, bad: Optional[np.ndarray] = None,
                settings: Optional[SpotThreshold] = None, limit: Optional[Tuple[slice, slice]] = None) -> np.ndarray:
    """Bool mask (data shape) of the spot at a click: the pixels of the box above the local
    threshold (:func:`local_threshold`), 8-connected to the brightest above-threshold pixel
    within ``seed_radius`` of the click.  ``limit`` (a panel's (ss, fs) slices) keeps the box on
    one panel.  All False when nothing near the click stands above the threshold."""
    s = settings or SpotThreshold()
    out = np.zeros(data.shape, dtype=bool)
    if limit is not None:
        sl_ss, sl_fs = limit
        sub = data[sl_ss, sl_fs]
        sub_bad = None if bad is None else bad[sl_ss, sl_fs]
        inner = spot_pixels(sub, fs - sl_fs.start, ss - sl_ss.start, sub_bad, s)
        out[sl_ss, sl_fs] = inner
        return out
    thr, _, _, (r0, r1, c0, c1) = local_threshold(data, fs, ss, bad, s.half_box, s.k)
    if not np.isfinite(thr):
        return out
    box = np.asarray(data[r0:r1, c0:c1], dtype=np.float64)
    above = np.isfinite(box) & (box > thr)
    if bad is not None:
        above &= ~np.asarray(bad[r0:r1, c0:c1], dtype=bool)
    if not above.any():
        return out
    yy, xx = np.mgrid[r0:r1, c0:c1]
    near = above & ((yy - ss) ** 2 + (xx - fs) ** 2 <= (s.seed_radius + 0.5) ** 2)
    if not near.any():
        return out
    seed = np.unravel_index(int(np.argmax(np.where(near, box, -np.inf))), box.shape)
    comp, _ = ndimage.label(above, structure=EIGHT)
    out[r0:r1, c0:c1] = comp == comp[seed]
    return out


def disc_pixels(shape: Tuple[int, int], fs: float, ss: float, radius: float) -> np.ndarray:
    """Bool mask of the pixels whose centres lie within ``radius`` of (fs, ss) (a brush dab on an
    unassembled frame; the window maps its strokes through the display geometry instead)."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - ss) ** 2 + (xx - fs) ** 2 <= radius * radius


@dataclass
class _Change:
    label: str
    index: np.ndarray  # flat pixel indices
    old: np.ndarray  # their labels before


@dataclass
class LabelEditor:
    """The labels of one frame being curated, with undo/redo of every edit.

    Every operation returns the number of pixels whose label changed; ``bad`` pixels keep 255.
    """

    data: np.ndarray
    labels: np.ndarray
    bad: Optional[np.ndarray] = None
    undo_stack: List[_Change] = field(default_factory=list)
    redo_stack: List[_Change] = field(default_factory=list)

    def __post_init__(self):
        if self.labels.shape != self.data.shape:
            raise ValueError(f"labels {self.labels.shape} and data {self.data.shape} differ in shape")
        self.labels = np.array(self.labels, dtype=np.uint8, copy=True)
        if self.bad is not None:
            self.bad = np.asarray(self.bad, dtype=bool)
            self.labels[self.bad] = UNLABELLED

    @property
    def shape(self) -> Tuple[int, int]:
        return tuple(self.labels.shape)

    def _set(self, where: np.ndarray, value: int, label: str) -> int:
        where = np.asarray(where, dtype=bool) & (self.labels != value)
        if self.bad is not None:
            where &= ~self.bad
        idx = np.flatnonzero(where)
        if not idx.size:
            return 0
        flat = self.labels.reshape(-1)
        self.undo_stack.append(_Change(label, idx, flat[idx].copy()))
        self.redo_stack.clear()
        flat[idx] = value
        return int(idx.size)

    def remove_peak(self, fs: float, ss: float, radius: float = 3.0) -> int:
        """The peak (label-1 component) at or near the click becomes background."""
        return self._set(peak_component(self.labels, fs, ss, radius), BACKGROUND, "remove peak")

    def spot_at(self, fs: float, ss: float, settings: Optional[SpotThreshold] = None,
                limit: Optional[Tuple[slice, slice]] = None) -> np.ndarray:
        """The preview of :meth:`add_peak`: the spot's pixels at a click (see :func:`spot_pixels`)."""
        return spot_pixels(self.data, fs, ss, self.bad, settings, limit)

    def add_peak(self, pixels: np.ndarray) -> int:
        """Accept a previewed spot: its pixels become peak."""
        return self._set(pixels, PEAK, "add peak")

    def paint_artifact(self, pixels: np.ndarray) -> int:
        return self._set(pixels, ARTIFACT, "paint artifact")

    def erase_artifact(self, pixels: np.ndarray) -> int:
        """Artifact pixels among ``pixels`` become background (other labels stay)."""
        return self._set(np.asarray(pixels, dtype=bool) & (self.labels == ARTIFACT), BACKGROUND, "erase artifact")

    def _swap(self, src: List[_Change], dst: List[_Change]) -> Optional[str]:
        if not src:
            return None
        ch = src.pop()
        flat = self.labels.reshape(-1)
        now = flat[ch.index].copy()
        flat[ch.index] = ch.old
        dst.append(_Change(ch.label, ch.index, now))
        return ch.label

    def undo(self) -> Optional[str]:
        return self._swap(self.undo_stack, self.redo_stack)

    def redo(self) -> Optional[str]:
        return self._swap(self.redo_stack, self.undo_stack)

    def counts(self) -> dict:
        """Pixels per class and the number of peaks (label-1 components)."""
        _, n = ndimage.label(self.labels == PEAK, structure=EIGHT)
        return {"peaks": int(n), "peak_pixels": int(np.count_nonzero(self.labels == PEAK)),
                "artifact_pixels": int(np.count_nonzero(self.labels == ARTIFACT)),
                "unlabelled_pixels": int(np.count_nonzero(self.labels == UNLABELLED))}


def peak_table(labels: np.ndarray, data: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fs, ss, npix) of the label-1 components: the truth list the curation file stores for
    ``peaknet evaluate`` (centre weighted by the data above the component's minimum)."""
    comp, n = ndimage.label(labels == PEAK, structure=EIGHT)
    if n == 0:
        z = np.zeros(0, dtype=np.float64)
        return z, z, z
    idx = np.arange(1, n + 1)
    d = np.nan_to_num(np.asarray(data, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low = ndimage.minimum(d, comp, idx)
    w = d - np.asarray(low)[np.maximum(comp - 1, 0)] + 1e-3
    w[comp == 0] = 0.0
    cy = np.asarray(ndimage.sum(w * np.arange(d.shape[0])[:, None], comp, idx))
    cx = np.asarray(ndimage.sum(w * np.arange(d.shape[1])[None, :], comp, idx))
    tot = np.asarray(ndimage.sum(w, comp, idx))
    npix = np.asarray(ndimage.sum(np.ones_like(w), comp, idx))
    return cx / tot, cy / tot, npix
