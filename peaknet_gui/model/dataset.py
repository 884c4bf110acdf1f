"""Labelled runs for training: reading, frame split, a pool of prepared frames, crop sampling.

Label format (written by ``peaknet simulate`` and by the GUI for fine-tuning)
---------------------------------------------------------------------------
Labels live *beside the frames* in the same CXI file (CONTRACTS "CXI run layout"):

* ``/entry_1/data_1/data``   (N, ss, fs) detector values (any numeric dtype)
* ``/entry_1/data_1/labels`` (N, ss, fs) ``uint8``, one class per pixel:
  ``0`` background, ``1`` Bragg peak, ``2`` artifact scattering (rings, streaks, shadows to be
  masked), ``255`` not labelled -- ignored by the loss.  A GUI correction that labels only a
  few regions writes 255 everywhere else.  Chunked one frame per chunk, compressed.
  Attribute ``classes = "0 background, 1 peak, 2 artifact, 255 unlabelled"``.
* ``/entry_1/data_1/mask``   (N, ss, fs) ``uint8``, optional: non-zero = bad pixel.
* optional truth: ``/entry_1/result_1/nPeaks``, ``peakXPosRaw``, ``peakYPosRaw`` (pixel indices)
  and ``peakSNR`` of the label-1 spots, and the marginal (label-255) spots in
  ``/entry_1/sim/nMarginal``, ``marginalXPosRaw``, ``marginalYPosRaw`` and the faint true
  reflections (label 0, expected SNR >= 2) in ``nFaint``, ``faintXPosRaw``, ``faintYPosRaw``
  (evaluation only).
* a CrystFEL ``.geom`` with the same stem beside the file gives the panels (multi-panel slabs
  are normalised per panel and the network is run per panel, as at inference).

:func:`write_labels` creates or updates the labels dataset of a run (used by the GUI).

Training data flow: :func:`split_frames` holds out whole frames for validation;
:class:`FramePool` keeps ``size`` frames in memory, each with a random detector "personality"
(:func:`~.augment.augment_frame`) applied *before* normalisation, and replaces a few of them
every step; :meth:`FramePool.sample` draws crops biased towards peaks and artifacts, with
rotations, flips, rectangular masking and per-panel zero padding (:mod:`.augment`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from .augment import AugmentSettings, augment_crop, augment_frame, crop_with_rotation
from .normalize import normalize

log = logging.getLogger(__name__)

DATA = "/entry_1/data_1/data"
LABELS = "/entry_1/data_1/labels"
MASK = "/entry_1/data_1/mask"
RESULT = "/entry_1/result_1"
SIM = "/entry_1/sim"
IGNORE = 255
CLASSES_ATTR = "0 background, 1 peak, 2 artifact, 255 unlabelled"


def _h5():
    import h5py

    try:
        import hdf5plugin  # noqa: F401  (lz4/bitshuffle filters)
    except ImportError:  # pragma: no cover
        pass
    return h5py


@dataclass
class TruthPeaks:
    """Label-1 (visible) truth peaks, and the marginal (label-255) spots where known."""

    fs: np.ndarray
    ss: np.ndarray
    snr: Optional[np.ndarray] = None
    marginal_fs: Optional[np.ndarray] = None
    marginal_ss: Optional[np.ndarray] = None
    npix: Optional[np.ndarray] = None  # labelled pixels of each peak (peakNPixels)
    faint_fs: Optional[np.ndarray] = None  # label-0 true reflections of expected SNR >= 2 (nFaint; newer runs)
    faint_ss: Optional[np.ndarray] = None

    def dont_care_xy(self) -> np.ndarray:
        """(K, 2) fs, ss of the spots a found peak may match without being a hit or a false
        positive: the marginal (label-255) spots and the faint true reflections."""
        parts = [np.stack([a, b], 1) for a, b in ((self.marginal_fs, self.marginal_ss), (self.faint_fs, self.faint_ss))
                 if a is not None]
        return np.concatenate(parts) if parts else np.zeros((0, 2))


class LabelledRun:
    """One CXI run with labels.  Opens the file lazily; :meth:`close` releases it."""

    def __init__(self, path, *, require_labels: bool = True):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: training run not found")
        h5py = _h5()
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as e:
            raise InputError(f"{self.path}: not a readable HDF5/CXI file ({e})") from e
        if DATA not in self._f:
            self.close()
            raise InputError(f"{self.path}: no {DATA} dataset (not a CXI run in the peaknet layout)")
        self._data = self._f[DATA]
        if self._data.ndim != 3:
            self.close()
            raise InputError(f"{self.path}: {DATA} has shape {self._data.shape}, expected (frames, ss, fs)")
        self._labels = self._f[LABELS] if LABELS in self._f else None
        if self._labels is None and require_labels:
            self.close()
            raise InputError(f"{self.path}: no {LABELS} dataset -- not a labelled run (see peaknet_gui.model.dataset)")
        if self._labels is not None and self._labels.shape != self._data.shape:
            self.close()
            raise InputError(f"{self.path}: labels shape {self._labels.shape} does not match data shape {self._data.shape}")
        self._mask = self._f[MASK] if MASK in self._f else None
        self._hot: Optional[np.ndarray] = None  # the run's hot and dead pixels (mask_hot_pixels)
        self.geometry = self._read_geometry()  # the run's .geom beside it, None without one
        self.panels = None if self.geometry is None or len(self.geometry.panels) <= 1 else [
            p.slices() for p in self.geometry.panels]

    def _read_geometry(self):
        geom = self.path.with_suffix(".geom")
        if not geom.exists():
            return None
        try:
            from ..geometry import read_geom

            return read_geom(geom)
        except Exception as e:  # a broken geometry should not stop training: whole frame
            log.warning("%s: geometry not usable (%s); frames normalised as one panel", geom, e)
            return None

    def __len__(self) -> int:
        return int(self._data.shape[0])

    @property
    def frame_shape(self) -> Tuple[int, int]:
        return tuple(self._data.shape[1:])

    def _read(self, ds, i, what):
        try:
            return ds[i]
        except (OSError, ValueError) as e:
            raise InputError(f"{self.path}: cannot read {what} of frame {i} ({e})") from e

    def data(self, i: int) -> np.ndarray:
        return self._read(self._data, i, "data")

    def labels(self, i: int) -> np.ndarray:
        if self._labels is None:
            raise InputError(f"{self.path}: no {LABELS} dataset")
        return self._read(self._labels, i, "labels")

    def bad(self, i: int, data: Optional[np.ndarray] = None) -> np.ndarray:
        """Bad pixels: the run's mask (non-zero), NaN/inf values and, after :meth:`mask_hot_pixels`,
        the run's hot and dead pixels."""
        data = self.data(i) if data is None else data
        bad = ~np.isfinite(data) if data.dtype.kind == "f" else np.zeros(data.shape, dtype=bool)
        if self._mask is not None:
            bad |= self._read(self._mask, i, "mask") != 0
        if self._hot is not None and self._hot.shape == bad.shape:
            bad |= self._hot
        return bad

    def mask_hot_pixels(self, max_frames: Optional[int] = None) -> int:
        """From now on count the run's hot and dead pixels as bad, found as the program finds them
        (:class:`~peaknet_gui.masks.hot_pixels.HotPixelTracker` over up to ``max_frames`` frames
        spread over the run, by default as many as :func:`~peaknet_gui.pipeline.hot_scan.prime_hot_pixels`
        primes the analyser with): evaluation then scores the peaks the program reports, not stuck pixels it never
        shows.  Returns how many pixels were flagged (0 where the run is too short to decide)."""
        from ..masks.hot_pixels import PRIME_FRAMES, HotPixelTracker, spread_sample

        self._hot = None
        tracker = HotPixelTracker()
        for i in spread_sample(len(self), PRIME_FRAMES if max_frames is None else max_frames).tolist():
            data = self.data(i)
            tracker.update(data, self.bad(i, data), key=i)
        hot = tracker.run_mask()
        if hot is not None and hot.any():
            self._hot = hot
        return 0 if self._hot is None else int(self._hot.sum())

    def _sim_positions(self, i: int, kind: str) -> tuple:
        """(fs, ss) of frame ``i``'s ``/entry_1/sim/<kind>XPosRaw``, ``<kind>YPosRaw`` (``n<Kind>`` of
        them; the simulator's run writer, ``_write_positions``), or (None, None) where the run has none."""
        sim = self._f.get(SIM)
        count = f"n{kind[0].upper()}{kind[1:]}"
        if sim is None or count not in sim:
            return None, None
        k = int(sim[count][i])
        return tuple(np.asarray(sim[f"{kind}{axis}PosRaw"][i, :k], dtype=np.float64) for axis in ("X", "Y"))

    def truth(self, i: int) -> Optional[TruthPeaks]:
        if RESULT not in self._f or "nPeaks" not in self._f[RESULT]:
            return None
        r = self._f[RESULT]
        n = int(r["nPeaks"][i])
        fs = np.asarray(r["peakXPosRaw"][i, :n], dtype=np.float64)
        ss = np.asarray(r["peakYPosRaw"][i, :n], dtype=np.float64)
        snr = np.asarray(r["peakSNR"][i, :n], dtype=np.float64) if "peakSNR" in r else None
        npix = np.asarray(r["peakNPixels"][i, :n], dtype=np.float64) if "peakNPixels" in r else None
        mfs, mss = self._sim_positions(i, "marginal")
        ffs, fss = self._sim_positions(i, "faint")
        return TruthPeaks(fs, ss, snr, mfs, mss, npix, ffs, fss)

    def close(self) -> None:
        try:
            self._f.close()
        except Exception:  # pragma: no cover
            pass


def write_labels(path, index: int, labels: np.ndarray) -> None:
    """Create (filled with 255) or update ``/entry_1/data_1/labels`` of a CXI run for frame
    ``index`` -- how the GUI stores corrected labels for fine-tuning."""
    h5py = _h5()
    path = Path(path)
    try:
        with h5py.File(path, "r+") as f:
            if DATA not in f:
                raise InputError(f"{path}: no {DATA} dataset to label")
            shape = f[DATA].shape
            if labels.shape != tuple(shape[1:]):
                raise InputError(f"{path}: labels shape {labels.shape} does not match frames {tuple(shape[1:])}")
            if not 0 <= index < shape[0]:
                raise InputError(f"{path}: frame {index} out of range (run has {shape[0]} frames)")
            bad = np.setdiff1d(np.unique(labels), [0, 1, 2, IGNORE])
            if bad.size:
                raise InputError(f"{path}: labels must be 0, 1, 2 or 255, got {bad[:5].tolist()}")
            if LABELS not in f:
                ds = f.create_dataset(LABELS, shape=shape, dtype="u1", chunks=(1,) + tuple(shape[1:]),
                                      compression="gzip", compression_opts=1, fillvalue=IGNORE)
                ds.attrs["classes"] = CLASSES_ATTR
            f[LABELS][index] = labels.astype(np.uint8)
    except OSError as e:
        raise InputError(f"{path}: cannot write labels ({e})") from e


def split_frames(lengths: Sequence[int], val_fraction: float = 0.1, seed: int = 0):
    """Split frames (run index, frame index) into train and validation lists, by whole frames.

    Each run with at least 2 frames gives ``max(1, round(val_fraction * n))`` validation frames
    chosen with a seeded permutation; single-frame runs go to training.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for r, n in enumerate(lengths):
        perm = rng.permutation(n)
        k = 0 if n < 2 or val_fraction <= 0 else max(1, int(round(val_fraction * n)))
        val += [(r, int(i)) for i in sorted(perm[:k])]
        train += [(r, int(i)) for i in sorted(perm[k:])]
    return train, val


def spread_across_runs(frames: Sequence[Tuple[int, int]], limit: int) -> List[Tuple[int, int]]:
    """At most ``limit`` of ``frames`` (run index, frame index), taken round-robin over the runs so
    that a capped validation set covers every detector kind rather than the first runs only."""
    by_run: dict = {}
    for r, i in frames:
        by_run.setdefault(r, []).append((r, i))
    queues = [by_run[r] for r in sorted(by_run)]
    picked: List[Tuple[int, int]] = []
    depth = 0
    while len(picked) < limit and any(depth < len(q) for q in queues):
        picked += [q[depth] for q in queues if depth < len(q)][: limit - len(picked)]
        depth += 1
    return picked


@dataclass
class PreparedFrame:
    """A normalised frame with its labels and where its peaks/artifacts are (for sampling)."""

    image: np.ndarray  # float32 normalised
    labels: np.ndarray  # uint8
    panels: Optional[List[Tuple[slice, slice]]]
    peak_pixels: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))
    artifact_pixels: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))
    source: str = ""


def prepare_frame(run: LabelledRun, i: int, rng: Optional[np.random.Generator], aug: Optional[AugmentSettings]) -> PreparedFrame:
    """Read, augment (detector personality; ``rng`` None = no augmentation) and normalise."""
    data = run.data(i)
    labels = run.labels(i)
    bad = run.bad(i, data)
    panels = run.panels
    if rng is not None and aug is not None:
        data, labels, bad, panels = augment_frame(data, labels, bad, panels, rng, aug)
    image = normalize(data, bad, panels=panels)
    peaks = np.argwhere(labels == 1).astype(np.int32)
    arts = np.argwhere(labels == 2).astype(np.int32)
    if len(arts) > 20000:  # a subsample is enough to pick crop centres
        arts = arts[:: len(arts) // 20000]
    return PreparedFrame(image, labels, panels, peaks, arts, f"{run.path.name}//{i}")


class FramePool:
    """Frames in memory to draw training crops from; :meth:`refresh` swaps some for new ones."""

    def __init__(self, runs: Sequence[LabelledRun], frames: Sequence[Tuple[int, int]], size: int,
                 rng: np.random.Generator, aug: Optional[AugmentSettings] = None):
        if not frames:
            raise InputError("no training frames (every run went to validation?)")
        self.runs = list(runs)
        self.frames = list(frames)
        self.rng = rng
        self.aug = aug or AugmentSettings()
        self.size = max(1, min(size, len(self.frames) * 4))
        self.pool: List[PreparedFrame] = [self._load() for _ in range(self.size)]

    def _load(self) -> PreparedFrame:
        r, i = self.frames[int(self.rng.integers(len(self.frames)))]
        return prepare_frame(self.runs[r], i, self.rng, self.aug)

    def refresh(self, n: int = 1) -> None:
        for _ in range(n):
            self.pool[int(self.rng.integers(len(self.pool)))] = self._load()

    def sample(self, batch: int, crop: int) -> Tuple[np.ndarray, np.ndarray]:
        """(batch, 1, crop, crop) float32 images and (batch, crop, crop) int64 labels."""
        xs = np.zeros((batch, 1, crop, crop), dtype=np.float32)
        ys = np.zeros((batch, crop, crop), dtype=np.int64)
        for b in range(batch):
            pf = self.pool[int(self.rng.integers(len(self.pool)))]
            x, y = sample_crop(pf, crop, self.rng, self.aug)
            xs[b, 0], ys[b] = x, y
        return xs, ys


def _pick_centre(pf: PreparedFrame, rng: np.random.Generator, aug: AugmentSettings) -> Tuple[float, float]:
    u = rng.random()
    h, w = pf.image.shape
    if u < aug.peak_bias and len(pf.peak_pixels):
        cy, cx = pf.peak_pixels[int(rng.integers(len(pf.peak_pixels)))]
    elif u < aug.peak_bias + aug.artifact_bias and len(pf.artifact_pixels):
        cy, cx = pf.artifact_pixels[int(rng.integers(len(pf.artifact_pixels)))]
    else:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    return float(cy), float(cx)


def sample_crop(pf: PreparedFrame, crop: int, rng: np.random.Generator, aug: AugmentSettings):
    """One augmented crop (image, labels) of a prepared frame."""
    cy, cx = _pick_centre(pf, rng, aug)
    jitter = rng.uniform(-aug.crop_jitter, aug.crop_jitter, size=2) * crop
    cy, cx = cy + jitter[0], cx + jitter[1]
    restrict = None
    if pf.panels and rng.random() < aug.panel_crop_prob:
        # as at inference for multi-panel detectors: one panel, zero outside it
        for sl in pf.panels:
            if sl[0].start <= cy < sl[0].stop and sl[1].start <= cx < sl[1].stop:
                restrict = sl
                break
    angle = rng.uniform(0, 2 * np.pi) if rng.random() < aug.rotate_prob else 0.0
    x, y = crop_with_rotation(pf.image, pf.labels, cy, cx, crop, angle, restrict=restrict)
    return augment_crop(x, y, rng, aug)
