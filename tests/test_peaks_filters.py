"""Peak masks from class probabilities, user filters and the hit decision."""

from __future__ import annotations

import numpy as np
import pytest

from peaknet_gui.peaks.filters import filter_peaks, is_hit, peak_mask_from_probabilities
from peaknet_gui.peaks.peaklist import PeakList
from peaknet_gui.pipeline.settings import FinderSettings


def softmax3(rng, shape):
    logits = rng.normal(0, 2, (3,) + shape).astype(np.float32)
    e = np.exp(logits - logits.max(axis=0))
    return e / e.sum(axis=0), logits


def test_argmax_reproduced_from_peak_and_artifact_probabilities():
    rng = np.random.default_rng(0)
    probs, logits = softmax3(rng, (64, 64))
    mask = peak_mask_from_probabilities(probs[1], probs[2], threshold=None)
    assert np.array_equal(mask, logits.argmax(axis=0) == 1)
    # float16 caches (what FrameResult keeps) give the same decision except at near-ties
    mask16 = peak_mask_from_probabilities(probs[1].astype(np.float16), probs[2].astype(np.float16))
    assert (mask16 != mask).mean() < 0.01


def test_probability_threshold():
    p = np.array([[0.1, 0.5], [0.49, 0.9]], dtype=np.float16)
    assert peak_mask_from_probabilities(p, None, 0.5).tolist() == [[False, True], [False, True]]
    assert peak_mask_from_probabilities(p, None, 0.05).all()


def make_peaks():
    return PeakList(
        fs=np.arange(6, dtype=float),
        ss=np.zeros(6),
        intensity=np.array([10.0, 50.0, 30.0, 5.0, 80.0, 20.0]),
        npix=np.array([1, 3, 5, 8, 12, 4]),
        snr=np.array([2.0, 9.0, 6.0, 1.0, 20.0, 7.0]),
        resolution=np.array([0.1, 0.3, 0.5, np.nan, 0.8, 0.2]),  # 1/d in 1/Angstrom
    )


def test_pixel_snr_resolution_and_count_limits():
    peaks = make_peaks()
    s = FinderSettings(min_pixels=2, max_pixels=10)
    assert filter_peaks(peaks, s).fs.tolist() == [1, 2, 3, 5]
    s = FinderSettings(min_snr=5.0)
    assert filter_peaks(peaks, s).fs.tolist() == [1, 2, 4, 5]
    # keep 2.5 A .. 10 A: 1/d in [0.1, 0.4]; unknown resolution kept
    s = FinderSettings(min_res_a=2.5, max_res_a=10.0)
    assert filter_peaks(peaks, s).fs.tolist() == [0, 1, 3, 5]
    s = FinderSettings(max_peaks=3)
    kept = filter_peaks(peaks, s)
    assert kept.fs.tolist() == [1, 2, 4]  # the three strongest, original order
    assert len(filter_peaks(PeakList(), s)) == 0


def test_hit_needs_min_peaks():
    peaks = make_peaks()
    assert is_hit(peaks, 6)
    assert not is_hit(peaks, 7)
    assert is_hit(PeakList(), 0)


@pytest.mark.parametrize("n", [0, 1])
def test_max_peaks_zero_or_one(n):
    kept = filter_peaks(make_peaks(), FinderSettings(max_peaks=n))
    assert len(kept) == n


def test_float16_fast_path_equals_float32_arithmetic():
    rng = np.random.default_rng(5)
    probs, _ = softmax3(rng, (200, 300))
    p16, a16 = probs[1].astype(np.float16), probs[2].astype(np.float16)
    p32, a32 = p16.astype(np.float32), a16.astype(np.float32)
    # argmax decision on the float16 values, computed the slow way
    slow = (p32 > 1.0 - p32 - a32) & (p32 >= a32)
    assert np.array_equal(peak_mask_from_probabilities(p16, a16), slow)
    assert np.array_equal(peak_mask_from_probabilities(p32, a32), slow)
    for thr in (0.0, 0.1, 1 / 3, 0.5, 0.77777, 0.999, 1.0, 1.5):
        assert np.array_equal(peak_mask_from_probabilities(p16, a16, thr), p32 >= thr), thr
    # exact ties at representable float16 values
    t = np.array([0.5, 0.25, 0.3333], dtype=np.float16)
    assert peak_mask_from_probabilities(t, None, 0.25).tolist() == [True, True, True]
    assert peak_mask_from_probabilities(t, None, 0.5).tolist() == [True, False, False]
