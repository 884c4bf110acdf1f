"""Labelled runs, frame split, crop sampling and augmentation."""

import numpy as np
import pytest

from _model_data import make_labelled_run
from peaknet_gui.errors import InputError
from peaknet_gui.model.augment import AugmentSettings, augment_crop, augment_frame, bin2x2, crop_with_rotation
from peaknet_gui.model.dataset import FramePool, LabelledRun, split_frames, spread_across_runs, write_labels


@pytest.fixture(scope="module")
def run_path(tmp_path_factory):
    return make_labelled_run(tmp_path_factory.mktemp("d") / "r.cxi", n_frames=4, shape=(80, 90))


def test_split_by_frame():
    train, val = split_frames([10, 1, 5], val_fraction=0.2, seed=0)
    assert len(val) == 3 and len(train) == 13
    assert not set(train) & set(val)
    assert (1, 0) in train
    assert split_frames([10, 1, 5], 0.2, 0) == (train, val)


def test_capped_validation_covers_every_run():
    _, val = split_frames([40, 40, 40, 12, 30], val_fraction=0.1, seed=3)
    picked = spread_across_runs(val, 8)
    assert len(picked) == 8 and set(picked) <= set(val)
    assert {r for r, _ in picked} == {0, 1, 2, 3, 4}  # the first runs alone would fill the cap
    assert sorted(spread_across_runs(val, 100)) == sorted(val)  # no cap: all of them, once


def test_labelled_run_and_truth(run_path):
    run = LabelledRun(run_path)
    assert len(run) == 4 and run.frame_shape == (80, 90)
    assert set(np.unique(run.labels(0))) <= {0, 1, 2}
    t = run.truth(0)
    assert len(t.fs) > 0 and t.snr is not None
    run.close()


def test_write_labels_for_fine_tuning(tmp_path):
    import h5py

    p = tmp_path / "hits.cxi"
    with h5py.File(p, "w") as f:
        f["/entry_1/data_1/data"] = np.zeros((3, 20, 30), np.float32)
    lab = np.zeros((20, 30), np.uint8)
    lab[5, 5] = 1
    write_labels(p, 1, lab)
    run = LabelledRun(p)
    assert run.labels(0).max() == 255 and (run.labels(0) == 255).all()  # unlabelled frames
    assert run.labels(1)[5, 5] == 1 and run.labels(1).sum() == 1
    run.close()
    with pytest.raises(InputError, match="must be 0, 1, 2 or 255"):
        write_labels(p, 0, np.full((20, 30), 7, np.uint8))
    with pytest.raises(InputError, match="out of range"):
        write_labels(p, 5, lab)


def test_pool_samples_crops_with_peaks(run_path):
    run = LabelledRun(run_path)
    rng = np.random.default_rng(0)
    pool = FramePool([run], [(0, 0), (0, 1), (0, 2)], 3, rng, AugmentSettings())
    x, y = pool.sample(16, 48)
    assert x.shape == (16, 1, 48, 48) and y.shape == (16, 48, 48)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert (y == 1).any(axis=(1, 2)).mean() > 0.4  # biased towards peaks
    pool.refresh(2)
    run.close()


def test_rotation_keeps_values_and_labels_aligned():
    img = np.arange(100 * 100, dtype=np.float32).reshape(100, 100)
    lab = (np.arange(100 * 100).reshape(100, 100) % 3).astype(np.uint8)
    x, y = crop_with_rotation(img, lab, 50, 50, 32, angle=0.7)
    inside = x > 0
    assert np.array_equal(y[inside], (x[inside].astype(np.int64) % 3))
    x0, _ = crop_with_rotation(img, lab, 10, 10, 32)
    assert (x0[:5] == 0).all()  # outside the frame -> 0
    xr, yr = crop_with_rotation(img, lab, 50, 50, 20, restrict=(slice(0, 50), slice(0, 100)))
    assert (xr[10:] == 0).all() and (yr[10:] == 0).all()


def test_masking_sets_zero_and_background():
    rng = np.random.default_rng(1)
    aug = AugmentSettings(rect_per_megapixel=200.0, rect_min=10, rect_max=20, flip_prob=0, gap_stripe_prob=1.0)
    x = np.ones((64, 64), np.float32)
    y = np.ones((64, 64), np.int64)
    x, y = augment_crop(x, y, rng, aug)
    assert (x == 0).any() and np.array_equal(x == 0, y == 0)


def test_frame_personality_and_binning():
    rng = np.random.default_rng(2)
    data = rng.poisson(3, (64, 64)).astype(np.float32)
    lab = np.zeros((64, 64), np.uint8)
    lab[10, 11] = 1
    lab[30:32, 30:32] = 2
    bad = np.zeros((64, 64), bool)
    aug = AugmentSettings(personality_prob=1.0, binning_prob=0.0)
    d2, l2, b2, _ = augment_frame(data, lab, bad, None, rng, aug)
    assert d2.shape == data.shape and not np.array_equal(d2, data)
    d3, l3, b3, p3 = bin2x2(data, lab, bad, [(slice(0, 64), slice(0, 32)), (slice(0, 64), slice(32, 64))])
    assert d3.shape == (32, 32) and d3.sum() == pytest.approx(data.sum())
    assert l3[5, 5] == 1 and l3[15, 15] == 2 and p3[1] == (slice(0, 32), slice(16, 32))
