"""Input normalisation: gain/offset invariance, bad/NaN/negative pixels, numpy == torch."""

import numpy as np
import pytest
import torch

from peaknet_gui.model.normalize import normalize, normalize_torch, panel_stats


def _frame(rng, bg=3.0, shape=(300, 260)):
    img = rng.poisson(bg, shape).astype(np.float64)
    for y, x in [(40, 50), (150, 200), (250, 30)]:
        img[y - 1 : y + 2, x - 1 : x + 2] += 200
    return img


@pytest.mark.parametrize("gain,offset", [(1.0, 0.0), (30.0, 0.0), (0.3, -50.0), (25.0, 1000.0)])
def test_invariant_to_gain_and_offset(gain, offset):
    rng = np.random.default_rng(0)
    img = _frame(rng)
    ref = normalize(img)
    out = normalize(img * gain + offset)
    np.testing.assert_allclose(out, ref, atol=2e-5)


def test_background_is_zero_and_peaks_are_large():
    rng = np.random.default_rng(1)
    img = _frame(rng, bg=10.0)
    out = normalize(img)
    assert abs(float(np.median(out))) < 0.05
    # sigma of Poisson(10) is ~3.2: a +200 peak is ~60 sigma -> asinh ~ 4.8
    assert out[40, 50] > 4.0
    assert np.percentile(np.abs(out), 50) < 1.0


def test_bad_nan_and_negative_pixels():
    rng = np.random.default_rng(2)
    img = _frame(rng)
    img[:, 100:110] = -1  # Pilatus module gap
    img[5, 5] = np.nan
    img[6, 6] = np.inf
    bad = img < 0
    out = normalize(img, bad)
    assert np.isfinite(out).all()
    assert (out[:, 100:110] == 0).all() and out[5, 5] == 0 and out[6, 6] == 0
    # gaps and NaNs do not change the statistics of the rest
    clean = normalize(np.where(bad | ~np.isfinite(img), 3.0, img), bad | ~np.isfinite(img))
    np.testing.assert_allclose(out, clean, atol=1e-6)
    # negative values that are real data (CSPAD pedestal-subtracted) stay data
    cspad = rng.normal(0, 5, (64, 64))
    out = normalize(cspad)
    assert (out < -0.5).mean() > 0.1


def test_sparse_photon_counting_frame_uses_quantum_floor():
    rng = np.random.default_rng(3)
    img = rng.poisson(0.05, (256, 256)).astype(np.int32)
    b, s = panel_stats(img, np.ones(img.shape, bool))
    assert b == 0 and s == pytest.approx(0.5)
    out = normalize(img)
    assert out[img == 1].min() == pytest.approx(np.arcsinh(2.0), rel=1e-5)


def test_constant_and_all_bad_frames():
    assert (normalize(np.full((32, 32), 7.0)) == 0).all()
    assert (normalize(np.ones((16, 16)), np.ones((16, 16), bool)) == 0).all()


def test_panels_normalised_independently():
    rng = np.random.default_rng(4)
    img = rng.normal(0, 4, (100, 200))
    img[:, 100:] += 40  # per-ASIC pedestal residual
    panels = [(slice(0, 100), slice(0, 100)), (slice(0, 100), slice(100, 200))]
    out = normalize(img, panels=panels)
    assert abs(np.median(out[:, :100])) < 0.05 and abs(np.median(out[:, 100:])) < 0.05
    assert np.median(normalize(img)[:, 100:]) > 2


def test_torch_matches_numpy_batched():
    rng = np.random.default_rng(5)
    frames = np.stack([_frame(rng, bg=b, shape=(130, 140)) for b in (0.2, 5.0)]).astype(np.float32)
    bad = np.zeros(frames.shape, bool)
    bad[0, 10:20, 10:20] = True
    frames[1, 3, 3] = np.nan
    ref = np.stack([normalize(frames[i], bad[i]) for i in range(2)])
    out = normalize_torch(torch.from_numpy(frames)[:, None], torch.from_numpy(bad)[:, None])
    assert out.shape == (2, 1, 130, 140)
    np.testing.assert_allclose(out[:, 0].numpy(), ref, atol=1e-5)


def test_shape_errors():
    with pytest.raises(ValueError):
        normalize(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError):
        normalize(np.zeros((4, 4)), np.zeros((3, 3), bool))
