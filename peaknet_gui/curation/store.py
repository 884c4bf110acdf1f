"""The curation file: curated frames with their labels, in the labelled-run layout that
``peaknet train`` and ``peaknet evaluate`` read (:mod:`peaknet_gui.model.dataset`).

``RUN.curation.cxi`` beside the run (or in a folder the user chooses when the run's folder is
read-only -- :class:`ReadOnlyFolderError` says so), with a ``RUN.curation.geom`` beside it when
the run has a geometry (multi-panel frames are normalised per panel, as at inference):

* ``/entry_1/data_1/data``   (N, ss, fs) float32 -- the frames as read
* ``/entry_1/data_1/labels`` (N, ss, fs) uint8 -- 0 background, 1 peak, 2 artifact, 255 unlabelled
* ``/entry_1/data_1/mask``   (N, ss, fs) uint8 -- 1 = bad pixel
* ``/entry_1/result_1/nPeaks``, ``peakXPosRaw``, ``peakYPosRaw``, ``peakNPixels`` -- the label-1
  components (pixel indices), the truth list ``peaknet evaluate`` scores against
* ``/entry_1/curation/source`` (the frame's ``file //N``), ``event`` (its 0-based index in the
  run), ``split`` (0 train, 1 held out), ``saved`` (time)

Saving is atomic (:func:`~peaknet_gui.export.atomic.atomic_path`: a copy of the old file is
extended, then renamed over it) and appends: a frame saved again (same source) has its labels
replaced and keeps its split.  The split is fixed when a frame is first saved
(:func:`assign_split`): about a quarter of the frames -- the second one first -- are held out for
the before/after figures of a fine-tune and never trained on.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError, WriteError
from ..export.atomic import atomic_path
from ..model.dataset import CLASSES_ATTR, DATA, IGNORE, LABELS, MASK, RESULT
from .labels import peak_table

CURATION = "/entry_1/curation"
SUFFIX = ".curation.cxi"
HELD_OUT_FRACTION = 0.25
TRAIN, HELD_OUT = 0, 1


class ReadOnlyFolderError(WriteError):
    """The run's folder cannot take the curation file: choose another folder."""


@dataclass
class CuratedFrame:
    source: str  # the frame's "file //N"
    event: int  # its 0-based index in the run
    data: np.ndarray
    labels: np.ndarray
    bad: Optional[np.ndarray] = None


@dataclass
class SaveOutcome:
    path: str
    n_frames: int
    added: int
    replaced: int
    held_out: int

    def text(self) -> str:
        return (f"{self.path}: {self.n_frames} curated frame{'s' * (self.n_frames != 1)} "
                f"({self.held_out} held out); {self.added} added, {self.replaced} replaced")


def _h5():
    from ..model.dataset import _h5 as h5

    return h5()


def curation_path(run_path: Optional[str], folder: Optional[str] = None) -> Path:
    """``<folder or the run's folder>/<run stem>.curation.cxi``; ``curation.cxi`` without a run
    file (the demo) in ``folder``, which is then required."""
    stem = "curation"
    if run_path:
        name = Path(run_path).name
        for ext in (".cxi", ".h5", ".hdf5", ".nxs", ".cbf.gz", ".cbf.bz2", ".cbf", ".img", ".mccd", ".edf", ".tif", ".tiff"):
            if name.lower().endswith(ext):
                name = name[: -len(ext)]
                break
        stem = name.rstrip(".") or "run"
        if folder is None:
            folder = str(Path(run_path).parent)
    if folder is None:
        raise ReadOnlyFolderError("no folder for the curation file: choose one")
    return Path(folder) / (stem + SUFFIX)


def check_writable(path) -> Path:
    """Raise :class:`ReadOnlyFolderError` (naming the folder) unless a file can be written at ``path``."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise ReadOnlyFolderError(f"{folder}: folder for the curation file does not exist; choose another folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ReadOnlyFolderError(f"{folder}: read-only, cannot write the curation file {path.name} there; "
                                  "choose a folder for it")
    return path


def assign_split(n_frames: int, n_held_out: int) -> int:
    """Split of the next new frame: held out while fewer than ceil(25 % of the frames) are (never
    the first frame, so one frame trains); else train."""
    if n_frames >= 1 and n_held_out < math.ceil(HELD_OUT_FRACTION * (n_frames + 1)):
        return HELD_OUT
    return TRAIN


def _str_dtype():
    return _h5().string_dtype()


def _create(f, shape: Tuple[int, int]) -> None:
    h, w = shape
    for name, dtype, fill in ((DATA, "f4", 0), (LABELS, "u1", IGNORE), (MASK, "u1", 0)):
        ds = f.create_dataset(name, shape=(0, h, w), maxshape=(None, h, w), dtype=dtype, chunks=(1, h, w),
                              compression="gzip", compression_opts=1, fillvalue=fill)
        if name == LABELS:
            ds.attrs["classes"] = CLASSES_ATTR
    f.create_dataset(RESULT + "/nPeaks", shape=(0,), maxshape=(None,), dtype="i4", chunks=(256,))
    for name in ("peakXPosRaw", "peakYPosRaw", "peakNPixels"):
        f.create_dataset(f"{RESULT}/{name}", shape=(0, 16), maxshape=(None, None), dtype="f4", chunks=(16, 64))
    f.create_dataset(CURATION + "/source", shape=(0,), maxshape=(None,), dtype=_str_dtype(), chunks=(256,))
    f.create_dataset(CURATION + "/saved", shape=(0,), maxshape=(None,), dtype=_str_dtype(), chunks=(256,))
    f.create_dataset(CURATION + "/event", shape=(0,), maxshape=(None,), dtype="i8", chunks=(256,))
    f.create_dataset(CURATION + "/split", shape=(0,), maxshape=(None,), dtype="u1", chunks=(256,))
    f[CURATION].attrs["split"] = "0 train, 1 held out (before/after figures of a fine-tune)"


def _sources(f) -> List[str]:
    return [s.decode() if isinstance(s, bytes) else str(s) for s in f[CURATION + "/source"][()]]


def _write_row(f, i: int, fr: CuratedFrame, split: Optional[int]) -> None:
    n = f[DATA].shape[0]
    if i >= n:
        for name in (DATA, LABELS, MASK, RESULT + "/nPeaks", CURATION + "/source", CURATION + "/saved",
                     CURATION + "/event", CURATION + "/split"):
            f[name].resize(i + 1, axis=0)
    labels = np.asarray(fr.labels, dtype=np.uint8).copy()
    bad = np.zeros(labels.shape, dtype=bool) if fr.bad is None else np.asarray(fr.bad, dtype=bool)
    labels[bad] = IGNORE
    f[DATA][i] = np.asarray(fr.data, dtype=np.float32)
    f[LABELS][i] = labels
    f[MASK][i] = bad.astype(np.uint8)
    fs, ss, npix = peak_table(labels, fr.data)
    k = len(fs)
    for name, vals in (("peakXPosRaw", fs), ("peakYPosRaw", ss), ("peakNPixels", npix)):
        ds = f[f"{RESULT}/{name}"]
        if ds.shape[0] <= i:
            ds.resize(i + 1, axis=0)
        if ds.shape[1] < k:
            ds.resize(k, axis=1)
        row = np.zeros(ds.shape[1], dtype=np.float32)
        row[:k] = vals
        ds[i] = row
    f[RESULT + "/nPeaks"][i] = k
    f[CURATION + "/source"][i] = fr.source
    f[CURATION + "/event"][i] = int(fr.event)
    f[CURATION + "/saved"][i] = time.strftime("%Y-%m-%d %H:%M:%S")
    if split is not None:
        f[CURATION + "/split"][i] = split


def save_frames(path, frames: Sequence[CuratedFrame], geometry=None) -> SaveOutcome:
    """Add (or replace, by source) ``frames`` in the curation file at ``path``, atomically;
    ``geometry`` (the run's) goes to ``path.geom`` when there is none yet."""
    if not frames:
        raise InputError(f"{path}: no curated frames to save")
    path = check_writable(path)
    shape = tuple(frames[0].labels.shape)
    for fr in frames:
        if tuple(fr.labels.shape) != shape or tuple(fr.data.shape) != shape:
            raise InputError(f"{path}: frame {fr.source}: labels {fr.labels.shape} / data {fr.data.shape} "
                             f"differ from {shape}")
    h5py = _h5()
    added = replaced = 0
    try:
        if geometry is not None and len(getattr(geometry, "panels", ())) > 1 and not path.with_suffix(".geom").exists():
            from ..geometry.crystfel_geom import write_geom

            with atomic_path(path.with_suffix(".geom"), suffix=".geom") as tmp:
                write_geom(geometry, tmp)
        with atomic_path(path, suffix=".cxi") as tmp:
            if path.exists():
                shutil.copyfile(path, tmp)
            with h5py.File(tmp, "a") as f:
                if DATA not in f:
                    _create(f, shape)
                elif CURATION not in f:
                    raise InputError(f"{path}: not a curation file (no {CURATION} group); choose another name")
                elif tuple(f[DATA].shape[1:]) != shape:
                    raise InputError(f"{path}: holds frames of {f[DATA].shape[2]}x{f[DATA].shape[1]} pixels; "
                                     f"this frame has {shape[1]}x{shape[0]} (another detector: another curation file)")
                for fr in frames:
                    sources = _sources(f)
                    if fr.source in sources:
                        _write_row(f, sources.index(fr.source), fr, None)
                        replaced += 1
                    else:
                        split = f[CURATION + "/split"][()]
                        _write_row(f, len(sources), fr, assign_split(len(sources), int(np.sum(split == HELD_OUT))))
                        added += 1
                n = int(f[DATA].shape[0])
                held = int(np.sum(f[CURATION + "/split"][()] == HELD_OUT))
    except OSError as e:
        raise WriteError(f"{path}: cannot write the curation file ({e.strerror or e})") from e
    return SaveOutcome(str(path), n, added, replaced, held)


@dataclass
class CurationIndex:
    path: str
    sources: List[str]
    events: List[int]
    split: List[int]
    shape: Tuple[int, int]

    @property
    def train(self) -> List[int]:
        return [i for i, s in enumerate(self.split) if s == TRAIN]

    @property
    def held_out(self) -> List[int]:
        return [i for i, s in enumerate(self.split) if s == HELD_OUT]

    def __len__(self) -> int:
        return len(self.sources)


def _open(path):
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: curation file not found")
    try:
        f = _h5().File(path, "r")
    except OSError as e:
        raise InputError(f"{path}: not a readable curation file ({e})") from e
    if DATA not in f or LABELS not in f or CURATION not in f:
        f.close()
        raise InputError(f"{path}: not a curation file (needs {DATA}, {LABELS} and {CURATION})")
    return f


def read_index(path) -> CurationIndex:
    """What the curation file holds (no pixels)."""
    with _open(path) as f:
        try:
            return CurationIndex(str(path), _sources(f), [int(e) for e in f[CURATION + "/event"][()]],
                                 [int(s) for s in f[CURATION + "/split"][()]], tuple(f[DATA].shape[1:]))
        except (OSError, KeyError, ValueError) as e:
            raise InputError(f"{path}: unreadable curation index ({e})") from e


def saved_labels(path, source: str) -> Optional[np.ndarray]:
    """The labels saved for ``source`` (None when the file or the frame is not there)."""
    if not Path(path).exists():
        return None
    with _open(path) as f:
        sources = _sources(f)
        if source not in sources:
            return None
        try:
            return f[LABELS][sources.index(source)]
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: cannot read the labels of {source} ({e})") from e


def write_subset(path, rows: Sequence[int], out) -> Path:
    """A labelled run (``out``, atomically; its ``.geom`` beside it when the curation file has
    one) of the curation file's frames ``rows`` -- the train or held-out part for a fine-tune."""
    out = Path(out)
    rows = [int(r) for r in rows]
    if not rows:
        raise InputError(f"{path}: no frames for {out.name}")
    h5py = _h5()
    try:
        with _open(path) as f, atomic_path(out, suffix=".cxi") as tmp:
            with h5py.File(tmp, "w") as g:
                for name in (DATA, LABELS, MASK):
                    src = f[name]
                    ds = g.create_dataset(name, shape=(len(rows),) + src.shape[1:], dtype=src.dtype,
                                          chunks=(1,) + src.shape[1:], compression="gzip", compression_opts=1)
                    for k, r in enumerate(rows):
                        ds[k] = src[r]
                    for a, v in src.attrs.items():
                        ds.attrs[a] = v
                g[RESULT + "/nPeaks"] = f[RESULT + "/nPeaks"][()][rows]
                for name in ("peakXPosRaw", "peakYPosRaw", "peakNPixels"):
                    g[f"{RESULT}/{name}"] = f[f"{RESULT}/{name}"][()][rows]
                names = _sources(f)
                g.create_dataset(CURATION + "/source", data=[names[r] for r in rows], dtype=_str_dtype())
        geom = Path(path).with_suffix(".geom")
        if geom.exists():
            with atomic_path(out.with_suffix(".geom"), suffix=".geom") as tmp:
                shutil.copyfile(geom, tmp)
    except OSError as e:
        raise WriteError(f"{out}: cannot write the curated frames ({e.strerror or e})") from e
    return out
