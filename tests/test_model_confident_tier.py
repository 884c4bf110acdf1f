"""The operating point's second tier: a component the model is sure of needs a lower pixel SNR."""

import numpy as np
import pytest

from peaknet_gui.model.evaluate import FramePeaks
from peaknet_gui.model.operating_point import OperatingPoint, fit_operating_point, write_operating_point
from peaknet_gui.peaks.components import peaks_from_mask
from peaknet_gui.peaks.filters import ConfidentTier, passes_operating_point
from peaknet_gui.peaks.peaklist import PeakList


def test_the_tier_adds_sure_peaks_below_the_pixel_snr_and_nothing_else():
    peaks = PeakList(fs=np.arange(5.0), ss=np.zeros(5), confidence=np.array([0.9, 0.9, 0.2, 0.9, 0.6]),
                     max_snr=np.array([8.0, 4.5, 8.0, 2.0, 4.5]))
    assert passes_operating_point(peaks, 0.0, 6.0).tolist() == [True, False, True, False, False]
    tier = ConfidentTier(0.8, 4.0)
    assert passes_operating_point(peaks, 0.0, 6.0, tier).tolist() == [True, True, True, False, False]
    # a tier without a photometric floor takes every sure component
    assert passes_operating_point(peaks, 0.0, 6.0, ConfidentTier(0.8)).tolist() == [True, True, True, True, False]


def _faint_pair(seed=4):
    """Gaussian background (sigma 1) with two 2-pixel spots of pixel SNR ~5; the score map is sure
    of the first (0.8), not of the second (0.2)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(10.0, 1.0, (48, 48)).astype(np.float32)
    mask = np.zeros(data.shape, bool)
    score = np.zeros(data.shape, np.float32)
    for (y, x), p in (((12, 12), 0.8), ((34, 34), 0.2)):
        data[y, x : x + 2] = 15.5
        mask[y, x : x + 2] = True
        score[y, x : x + 2] = p
    return data, mask, score


def test_components_keep_a_sure_faint_spot_through_the_tier():
    data, mask, score = _faint_pair()
    every = peaks_from_mask(data, mask, score=score)
    assert len(every) == 2 and np.all((every.max_snr > 4.0) & (every.max_snr < 7.0))
    assert len(peaks_from_mask(data, mask, score=score, min_pixel_snr=7.0)) == 0
    kept = peaks_from_mask(data, mask, score=score, min_pixel_snr=7.0, confident=ConfidentTier(0.5, 4.0))
    assert len(kept) == 1 and kept.fs[0] == pytest.approx(12.5, abs=0.1) and kept.confidence[0] == pytest.approx(0.8)
    # the tier reaches below the point's own minimum confidence, not only its pixel SNR
    kept = peaks_from_mask(data, mask, score=score, min_score=0.9, min_pixel_snr=7.0, confident=ConfidentTier(0.5, 4.0))
    assert len(kept) == 1
    # nor does it take the sure spot when its pixel SNR is below the tier's
    assert len(peaks_from_mask(data, mask, score=score, min_pixel_snr=7.0, confident=ConfidentTier(0.5, 9.0))) == 0


def _records():
    """A hit with 6 bright sure peaks and 4 faint sure ones (pixel SNR 4.5), a blank frame with 5
    faint unsure noise peaks (pixel SNR 4.5, confidence 0.2)."""
    truth = np.array([[10.0 + 12 * k, 20.0] for k in range(10)])
    found = PeakList(fs=truth[:, 0], ss=truth[:, 1], confidence=np.array([0.9] * 6 + [0.8] * 4),
                     max_snr=np.array([12.0] * 6 + [4.5] * 4))
    hit = FramePeaks("val.cxi//0", truth.copy(), found.confidence, truth, np.full(10, 10.0), np.zeros((0, 2)),
                     found=found)
    noise_xy = np.array([[15.0 + 20 * k, 60.0] for k in range(5)])
    noise = PeakList(fs=noise_xy[:, 0], ss=noise_xy[:, 1], confidence=np.full(5, 0.2), max_snr=np.full(5, 4.5))
    blank = FramePeaks("val.cxi//1", noise_xy, noise.confidence, np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)),
                       found=noise)
    return [(0, hit), (0, blank)]


def test_fit_adds_the_tier_that_finds_the_faint_sure_peaks_and_keeps_blanks_blank(monkeypatch, tmp_path):
    import peaknet_gui.model.operating_point as opm

    monkeypatch.setattr(opm, "collect_frames", lambda *a, **k: {0.0: _records()})
    kw = dict(grid=(0.0,), snr_grid=(0.0, 6.0), peak_thresholds=(0.0,), max_blank_peaks=2.0)
    op, rep = fit_operating_point(None, ["val.cxi"], tier_confidences=(0.1, 0.5, 0.7, 0.9), tier_snrs=(0.0, 4.0, 5.0),
                                  **kw)
    # pixel SNR 6 alone: the blank frame holds no peak, the 4 faint true ones are lost (recall 0.6)
    assert op.peak_min_pixel_snr == 6.0 and rep["chosen"]["mean_f1"] == pytest.approx(0.75)
    # confidence 0.1 would admit the blank frame's noise, 0.9 and pixel SNR 5 lose the faint peaks;
    # of the tiers that find them the most conservative is kept
    assert (op.confident_min_confidence, op.confident_min_pixel_snr) == (0.7, 4.0)
    assert rep["tier"]["mean_f1"] == pytest.approx(1.0) and rep["tier"]["blank_peaks_max"] == 0
    assert {(t["min_confidence"], t["pixel_snr"]) for t in rep["tier_curve"]} == {
        (c, s) for c in (0.1, 0.5, 0.7, 0.9) for s in (0.0, 4.0, 5.0)}
    assert "second tier" in op.objective
    # a tier that raises F1 (0.75 -> 0.8) by putting the 5 noise peaks on the blank frame is refused even
    # where the limit (10) would allow them: the tier may add nothing to the point's worst blank frame
    loose = dict(kw, max_blank_peaks=10.0, snr_grid=(6.0,))
    op_loose, rep_loose = fit_operating_point(None, ["val.cxi"], tier_confidences=(0.1,), tier_snrs=(4.0,), **loose)
    assert rep_loose["tier_curve"][0]["mean_f1"] == pytest.approx(0.8) and rep_loose["tier_curve"][0]["blank_peaks_max"] == 5
    assert op_loose.confident_tier is None
    # no tier helps: none is kept
    op_none, rep_none = fit_operating_point(None, ["val.cxi"], tier_confidences=(0.1, 0.95), tier_snrs=(0.0,), **kw)
    assert op_none.confident_tier is None and rep_none["tier"] is None
    # stored and read back with the point
    unet = pytest.importorskip("peaknet_gui.model.unet")
    from peaknet_gui.model.weights import load_weights, save_weights

    w = tmp_path / "w.safetensors"
    save_weights(unet.PeakNet(unet.PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=2)), w)
    write_operating_point(w, op, rep)
    back = OperatingPoint.from_metadata(load_weights(w)[1].metadata)
    assert back.confident_tier == ConfidentTier(0.7, 4.0) and back.peak_min_pixel_snr == 6.0


@pytest.mark.parametrize("raw, tier", [
    ({"peak_min_pixel_snr": 6}, None),  # sidecars before the tier
    ({"peak_min_pixel_snr": 6, "confident_min_confidence": 0.6, "confident_min_pixel_snr": 4.5}, ConfidentTier(0.6, 4.5)),
    ({"confident_min_confidence": "x", "confident_min_pixel_snr": 4.5}, None),  # unreadable: no tier
    ({"confident_min_confidence": 1.5}, None),
])
def test_the_tier_read_from_a_sidecar(raw, tier):
    assert OperatingPoint.from_metadata({"operating_point": raw}).confident_tier == tier


def test_the_analyzer_takes_the_weights_tier_unless_the_user_sets_a_cut(tmp_path, monkeypatch):
    unet = pytest.importorskip("peaknet_gui.model.unet")
    from _pipeline_frames import ThresholdModel, simulated_frame

    from peaknet_gui.model.weights import save_weights
    from peaknet_gui.pipeline.analyzer import FrameAnalyzer
    from peaknet_gui.pipeline.settings import FinderSettings

    monkeypatch.setenv("PEAKNET_CACHE_DIR", str(tmp_path / "cache"))
    w = tmp_path / "w.safetensors"
    save_weights(unet.PeakNet(unet.PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=2)), w)
    write_operating_point(w, OperatingPoint(0.0, peak_min_pixel_snr=6.5, confident_min_confidence=0.7,
                                            confident_min_pixel_snr=4.0))
    an = FrameAnalyzer("peaknet", weights=w, device="cpu", backend="torch")
    an.predictor
    assert an.confident_tier() == ConfidentTier(0.7, 4.0)
    assert an.confident_tier(FinderSettings(min_pixel_snr=5.0)) is None
    assert an.confident_tier(FinderSettings(min_confidence=0.5)) is None

    # on a frame: no peak passes the pixel SNR, the tier keeps exactly the sure ones
    rng = np.random.default_rng(5)
    frame, _ = simulated_frame(rng, amplitude=60.0)
    an = FrameAnalyzer("peaknet", device="cpu", backend="torch", model=ThresholdModel(),
                       finder=FinderSettings(min_peaks_for_hit=5, min_pixels=2))
    every = an.analyze([frame])[0].peaks
    cut = float(np.median(every.confidence))
    monkeypatch.setattr(FrameAnalyzer, "min_pixel_snr", lambda self, finder=None, op=None: 1e9)
    assert len(an.analyze([frame])[0].peaks) == 0
    monkeypatch.setattr(FrameAnalyzer, "confident_tier", lambda self, finder=None, op=None: ConfidentTier(cut, 0.0))
    kept = an.analyze([frame])[0].peaks
    assert 0 < len(kept) == int((every.confidence >= np.float32(cut)).sum()) < len(every)
