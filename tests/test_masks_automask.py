"""Auto-mask from artifact probabilities, dilation, static masks, mask files and run masks."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from peaknet_gui.errors import InputError
from peaknet_gui.geometry import Geometry
from peaknet_gui.masks import RunMaskAccumulator, artifact_mask_from_probabilities, dilate, frame_mask, read_mask_file, static_mask
from peaknet_gui.pipeline.settings import MaskSettings


def probs(rng, shape=(40, 50)):
    logits = rng.normal(0, 2, (3,) + shape).astype(np.float32)
    e = np.exp(logits - logits.max(axis=0))
    return e / e.sum(axis=0), logits


def test_default_threshold_reproduces_argmax_and_threshold_works():
    rng = np.random.default_rng(0)
    p, logits = probs(rng)
    assert np.array_equal(artifact_mask_from_probabilities(p[2], p[1], None), logits.argmax(axis=0) == 2)
    m = artifact_mask_from_probabilities(p[2], p[1], 0.8)
    assert np.array_equal(m, p[2] >= 0.8)
    # a lower threshold masks a superset
    assert (artifact_mask_from_probabilities(p[2], p[1], 0.3) >= m).all()


def test_dilation_grows_by_n_pixels():
    m = np.zeros((21, 21), dtype=bool)
    m[10, 10] = True
    d2 = dilate(m, 2)
    assert d2.sum() == 25 and d2[8:13, 8:13].all()
    assert dilate(m, 0) is m
    edge = np.zeros((5, 5), dtype=bool)
    edge[0, 0] = True
    assert dilate(edge, 1).sum() == 4


def test_frame_mask_union_and_switches():
    shape = (30, 30)
    art = np.zeros(shape, dtype=np.float16)
    art[5, 5] = 0.9
    static = np.zeros(shape, dtype=bool)
    static[20, :] = True
    bad = np.zeros(shape, dtype=bool)
    bad[:, 25] = True
    s = MaskSettings(artifact_threshold=0.5, dilation=1)
    m = frame_mask(art, None, s, static=static, frame_bad=bad)
    assert m[4:7, 4:7].all() and m[20].all() and m[:, 25].all()
    assert m.sum() == 9 + 30 + 30 - 1
    m = frame_mask(art, None, MaskSettings(artifact_threshold=0.5, include_static=False, include_gaps=False), static=static, frame_bad=bad)
    assert m.sum() == 1
    # classical finder: no probabilities, static parts only
    m = frame_mask(None, None, MaskSettings(), static=static, frame_bad=bad)
    assert m.sum() == 59


def test_mask_files_polarity(tmp_path):
    shape = (16, 20)
    bad = np.zeros(shape, dtype=bool)
    bad[3, 4] = bad[10, 11] = True
    # .npy, non-zero = bad
    np.save(tmp_path / "m.npy", bad.astype(np.uint8))
    assert np.array_equal(read_mask_file(tmp_path / "m.npy", polarity="bad_nonzero"), bad)
    assert np.array_equal(read_mask_file(tmp_path / "m.npy"), bad)  # auto: minority is bad
    # Cheetah-style: 1 = good
    np.save(tmp_path / "good.npy", (~bad).astype(np.uint8))
    assert np.array_equal(read_mask_file(tmp_path / "good.npy", polarity="good_nonzero"), bad)
    assert np.array_equal(read_mask_file(tmp_path / "good.npy"), bad)
    # HDF5 with an explicit polarity attribute that contradicts the majority heuristic
    mostly_bad = ~bad
    with h5py.File(tmp_path / "m.h5", "w") as f:
        ds = f.create_dataset("/data/data", data=mostly_bad.astype(np.uint8))
        ds.attrs["polarity"] = "1 = bad pixel (non-zero is bad)"
    assert np.array_equal(read_mask_file(tmp_path / "m.h5"), mostly_bad)
    # EDF through fabio
    import fabio.edfimage

    fabio.edfimage.EdfImage(data=bad.astype(np.int32)).write(str(tmp_path / "m.edf"))
    assert np.array_equal(read_mask_file(tmp_path / "m.edf", polarity="bad_nonzero"), bad)


def test_mask_file_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.h5"):
        read_mask_file(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(InputError, match="junk.h5"):
        read_mask_file(tmp_path / "junk.h5")
    np.save(tmp_path / "small.npy", np.zeros((4, 4)))
    with pytest.raises(InputError, match="does not match"):
        read_mask_file(tmp_path / "small.npy", shape=(8, 8))
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"] = np.zeros((4, 4))
        f["b"] = np.zeros((4, 4))
    with pytest.raises(InputError, match="which dataset"):
        read_mask_file(tmp_path / "two.h5")
    assert read_mask_file(tmp_path / "two.h5", dataset="/b").shape == (4, 4)


def test_static_mask_with_geometry_regions(tmp_path):
    pytest.importorskip("peaknet_gui.geometry.static_mask")
    from peaknet_gui.geometry import BadRegion

    geom = Geometry.single_panel((20, 30), 100e-6, 0.1, 15.0, 10.0)
    geom.bad_regions.append(BadRegion("bad_corner", min_fs=0, max_fs=4, min_ss=0, max_ss=2, panel="p0"))
    user = np.zeros((20, 30), dtype=bool)
    user[19, 29] = True
    np.save(tmp_path / "u.npy", user)
    m = static_mask((20, 30), mask_file=tmp_path / "u.npy", polarity="bad_nonzero", geometry=geom)
    assert m[0:3, 0:5].all() and m[19, 29]
    assert m.sum() == 15 + 1
    assert static_mask((20, 30)) is None


def test_run_mask_fractions_and_accumulation():
    acc = RunMaskAccumulator(fraction=0.5)
    assert acc.mask() is None
    frames = [np.zeros((4, 4), dtype=bool) for _ in range(4)]
    frames[0][0, 0] = True  # masked in 1/4
    for f in frames[:2]:
        f[1, 1] = True  # 2/4
    for f in frames[:3]:
        f[2, 2] = True  # 3/4
    for f in frames:
        f[3, 3] = True  # 4/4
        acc.add(f)
    assert acc.n_frames == 4
    assert np.flatnonzero(acc.mask(0.25)).tolist() == [0, 5, 10, 15]
    assert np.flatnonzero(acc.mask()).tolist() == [5, 10, 15]  # default 0.5
    assert np.flatnonzero(acc.mask(0.75)).tolist() == [10, 15]
    assert np.flatnonzero(acc.mask(1.0)).tolist() == [15]
    with pytest.raises(ValueError):
        acc.mask(0.0)
    with pytest.raises(ValueError):
        acc.add(np.zeros((5, 5), dtype=bool))
    acc.reset()
    assert acc.mask() is None
