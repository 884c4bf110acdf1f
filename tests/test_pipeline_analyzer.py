"""FrameAnalyzer: PeakNet and peakfinder8 paths, re-thresholding without the model, masks."""

from __future__ import annotations

import numpy as np
import pytest
from _pipeline_frames import SHAPE, ThresholdModel, simulated_frame

from peaknet_gui.frame import FrameMetadata
from peaknet_gui.geometry import Geometry
from peaknet_gui.pipeline.analyzer import FrameAnalyzer
from peaknet_gui.pipeline.settings import FinderSettings, MaskSettings


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PEAKNET_CACHE_DIR", str(tmp_path / "cache"))


def analyzer(**kw):
    model = kw.pop("model", None) or ThresholdModel()
    finder = kw.pop("finder", None) or FinderSettings(min_peaks_for_hit=5, min_pixels=2)
    return FrameAnalyzer("peaknet", device="cpu", backend="torch", model=model, finder=finder, **kw), model


def nearest(peaks, centres):
    d = np.hypot(peaks.ss[:, None] - centres[None, :, 0], peaks.fs[:, None] - centres[None, :, 1])
    return d.min(axis=1), d.min(axis=0)


def test_peaknet_finds_spots_masks_artifacts_and_caches_probabilities():
    rng = np.random.default_rng(0)
    frames = [simulated_frame(rng, serial=i) for i in range(2)]
    an, model = analyzer()
    results = an.analyze([f for f, _ in frames])
    assert model.calls == 1  # one batch
    for (frame, centres), res in zip(frames, results):
        to_true, from_true = nearest(res.peaks, centres)
        assert len(res.peaks) == len(centres)
        assert to_true.max() < 0.3 and from_true.max() < 0.3
        assert res.hit and res.algorithm == "peaknet" and res.serial == frame.serial
        h = SHAPE[0]
        assert res.artifact_mask[h - 25 : h - 5, 5:35].all()  # the dark box is artifact
        assert res.artifact_mask.mean() < 0.08
        assert res.peak_prob.dtype == np.float16 and res.peak_prob.shape == SHAPE
        assert res.artifact_prob.dtype == np.float16
        assert {"normalise", "model", "postprocess"} <= set(res.timings_ms)
    assert "cpu" in an.device_name and an.model_info["algorithm"] == "peaknet"


def test_rethreshold_uses_cached_probabilities_without_the_model():
    rng = np.random.default_rng(1)
    frame, centres = simulated_frame(rng)
    an, model = analyzer()
    res = an.analyze([frame])[0]
    calls = model.calls
    same = an.rethreshold(res, frame, an.finder, an.mask)
    assert model.calls == calls
    np.testing.assert_array_equal(same.peaks.fs, res.peaks.fs)
    np.testing.assert_array_equal(same.artifact_mask, res.artifact_mask)
    assert same.timings_ms["model"] == res.timings_ms["model"]
    # a stricter probability threshold keeps fewer pixels per peak; a very strict one fewer peaks
    strict = an.rethreshold(res, frame, FinderSettings(peak_threshold=0.999, min_peaks_for_hit=5), MaskSettings())
    assert strict.peaks.npix.sum() < res.peaks.npix.sum()
    none = an.rethreshold(res, frame, FinderSettings(peak_threshold=1.001, min_peaks_for_hit=5), MaskSettings())
    assert len(none.peaks) == 0 and not none.hit
    # hit decision and mask dilation follow the new settings
    few = an.rethreshold(res, frame, FinderSettings(min_peaks_for_hit=100), MaskSettings(dilation=2))
    assert not few.hit
    assert few.artifact_mask.sum() > res.artifact_mask.sum()
    assert model.calls == calls


def test_peakfinder8_algorithm_needs_no_model():
    rng = np.random.default_rng(2)
    frame, centres = simulated_frame(rng, dark_box=False)
    an = FrameAnalyzer("peakfinder8", device="cpu", finder=FinderSettings(min_peaks_for_hit=5))
    res = an.analyze([frame])[0]
    assert not an.model_loaded
    assert res.algorithm == "peakfinder8" and res.peak_prob is None
    to_true, from_true = nearest(res.peaks, centres)
    assert len(res.peaks) == len(centres) and from_true.max() < 0.3
    again = an.rethreshold(res, frame, FinderSettings(max_peaks=3), MaskSettings())
    assert len(again.peaks) == 3
    assert an.device_name.startswith("cpu") and an.model_info == {"algorithm": "peakfinder8"}


def test_resolution_from_frame_metadata_when_no_geometry_is_given():
    rng = np.random.default_rng(3)
    md = FrameMetadata(photon_energy_ev=12000.0, detector_distance_m=0.08, pixel_size_m=172e-6, beam_center_fs=60.0, beam_center_ss=50.0)
    frame, _ = simulated_frame(rng, metadata=md)
    an, _ = analyzer()
    res = an.analyze([frame])[0]
    geom = Geometry.single_panel(SHAPE, 172e-6, 0.08, 60.0, 50.0, photon_energy_ev=12000.0)
    np.testing.assert_allclose(res.peaks.resolution, geom.resolution(res.peaks.fs, res.peaks.ss), rtol=1e-9)
    assert (res.peaks.panel == 0).all()
    # a low-resolution cut removes the peaks close to the beam
    cut = an.rethreshold(res, frame, FinderSettings(max_res_a=1.0 / np.median(res.peaks.resolution)), MaskSettings())
    assert 0 < len(cut.peaks) < len(res.peaks)


def test_static_mask_and_bad_pixels_exclude_peaks():
    rng = np.random.default_rng(4)
    frame, centres = simulated_frame(rng)
    y, x = np.rint(centres[0]).astype(int)
    static = np.zeros(SHAPE, dtype=bool)
    static[y - 3 : y + 4, x - 3 : x + 4] = True
    y2, x2 = np.rint(centres[1]).astype(int)
    frame.bad = np.zeros(SHAPE, dtype=bool)
    frame.bad[y2 - 3 : y2 + 4, x2 - 3 : x2 + 4] = True
    an, _ = analyzer(static_mask=static)
    res = an.analyze([frame])[0]
    _, from_true = nearest(res.peaks, centres)
    assert from_true[0] > 2 and from_true[1] > 2 and (from_true[2:] < 0.3).all()
    assert res.artifact_mask[static].all() and res.artifact_mask[frame.bad].all()
    # hiding static parts of the mask does not let peaks back in
    hidden = an.rethreshold(res, frame, an.finder, MaskSettings(include_static=False, include_gaps=False))
    assert not hidden.artifact_mask[static].all()
    assert len(hidden.peaks) == len(res.peaks)


def test_bad_settings_and_shapes():
    with pytest.raises(ValueError):
        FrameAnalyzer("dials")
    rng = np.random.default_rng(5)
    frame, _ = simulated_frame(rng)
    an, _ = analyzer(static_mask=np.zeros((3, 3), bool))
    from peaknet_gui.errors import InputError

    with pytest.raises(InputError, match="static mask"):
        an.analyze([frame])
    assert FrameAnalyzer(finder=FinderSettings(algorithm="peakfinder8")).algorithm == "peakfinder8"


def test_real_peaknet_model_runs_through_the_analyzer():
    unet = pytest.importorskip("peaknet_gui.model.unet")
    net = unet.PeakNet(unet.PeakNetConfig.fast()).eval()
    rng = np.random.default_rng(6)
    frame, _ = simulated_frame(rng, shape=(70, 90))
    an = FrameAnalyzer("peaknet", device="cpu", backend="torch", model=net)
    res = an.analyze([frame])[0]
    assert res.peak_prob.shape == (70, 90)
    p = res.peak_prob.astype(np.float32) + res.artifact_prob.astype(np.float32)
    assert (p >= 0).all() and (p <= 1.001).all()


def test_geometry_changes_are_picked_up():
    rng = np.random.default_rng(7)
    frame, _ = simulated_frame(rng)
    geom = Geometry.single_panel(SHAPE, 172e-6, 0.08, 60.0, 50.0, photon_energy_ev=12000.0)
    an, _ = analyzer(geometry=geom)
    res = an.analyze([frame])[0]
    geom.panels[0].clen = 0.16  # the GUI edits the detector distance in place
    moved = an.rethreshold(res, frame)
    assert np.all(moved.peaks.resolution < res.peaks.resolution)
    an.geometry = Geometry.single_panel(SHAPE, 172e-6, 0.08, 60.0, 50.0, photon_energy_ev=6000.0)
    other = an.rethreshold(res, frame)
    np.testing.assert_allclose(other.peaks.resolution, res.peaks.resolution / 2, rtol=1e-9)


def test_device_masks_give_the_same_result_as_cpu_thresholding():
    # what the GPU path does (class masks by torch on the device), checked with CPU tensors
    import torch

    from peaknet_gui.inference.gpu_post import class_masks_torch

    rng = np.random.default_rng(8)
    frame, _ = simulated_frame(rng)
    an, _ = analyzer(mask=MaskSettings(dilation=1))
    res = an.analyze([frame])[0]
    probs = torch.from_numpy(np.stack([res.peak_prob, res.artifact_prob])[None])
    pk, ar = class_masks_torch(probs, an.finder.peak_threshold, an.mask.artifact_threshold)
    dev = an._from_probabilities(frame, res.peak_prob, res.artifact_prob, an.finder, an.mask,
                                 peak_mask=pk[0].numpy(), artifact_mask=ar[0].numpy())
    np.testing.assert_array_equal(dev.peaks.fs, res.peaks.fs)
    np.testing.assert_array_equal(dev.artifact_mask, res.artifact_mask)


@pytest.mark.parametrize("figure, setting, seed", [("confidence", "min_confidence", 5), ("max_snr", "min_pixel_snr", 7)])
def test_the_operating_point_filters_whole_peaks_from_the_cached_probabilities(figure, setting, seed):
    """Each peak carries its confidence and pixel SNR; a minimum of either drops whole peaks
    (positions of the others unchanged) without a model run."""
    rng = np.random.default_rng(seed)
    frame, centres = simulated_frame(rng, amplitude=60.0)
    an, model = analyzer()
    res = an.analyze([frame])[0]
    values = getattr(res.peaks, figure)
    assert len(values) >= 4 and np.all(np.isfinite(values))
    if figure == "confidence":
        assert np.all((values > 1 / 3) & (values <= 1.0))
    cut = float(np.median(values))
    calls = model.calls
    settings = FinderSettings(min_pixels=2, min_peaks_for_hit=5, **{setting: cut})
    kept = an.rethreshold(res, frame, settings, MaskSettings())
    assert model.calls == calls
    cut_as_compared = np.float32(cut) if figure == "confidence" else cut  # confidences are float32 maps
    assert len(kept.peaks) == int((values >= cut_as_compared).sum()) and 0 < len(kept.peaks) < len(res.peaks)
    assert np.all(getattr(kept.peaks, figure) >= cut_as_compared)
    assert set(np.round(kept.peaks.fs, 4)) <= set(np.round(res.peaks.fs, 4))


def test_default_minimum_confidence_is_the_weights_operating_point(tmp_path):
    unet = pytest.importorskip("peaknet_gui.model.unet")
    from peaknet_gui.model.operating_point import OperatingPoint, write_operating_point
    from peaknet_gui.model.weights import save_weights

    w = tmp_path / "w.safetensors"
    save_weights(unet.PeakNet(unet.PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=2)), w)
    an = FrameAnalyzer("peaknet", weights=w, device="cpu", backend="torch")
    an.predictor  # load
    assert an.min_confidence() == 0.0  # weights without an operating point: every argmax component
    write_operating_point(w, OperatingPoint(0.7))
    an = FrameAnalyzer("peaknet", weights=w, device="cpu", backend="torch")
    an.predictor
    assert an.min_confidence() == 0.7
    assert an.min_confidence(FinderSettings(min_confidence=0.2)) == 0.2
    assert an.min_confidence(FinderSettings(min_confidence=0.0)) == 0.0
    assert an.min_pixel_snr() == 0.0  # an operating point without a pixel SNR: no photometric test
    write_operating_point(w, OperatingPoint(0.7, peak_min_pixel_snr=6.5))
    an = FrameAnalyzer("peaknet", weights=w, device="cpu", backend="torch")
    an.predictor
    assert an.min_pixel_snr() == 6.5
    assert an.min_pixel_snr(FinderSettings(min_pixel_snr=0.0)) == 0.0
    assert an.pixel_snr_photon_floor() is False  # fitted before the photon floor
    write_operating_point(w, OperatingPoint(0.7, peak_min_pixel_snr=6.5, pixel_snr_photon_floor=True))
    an = FrameAnalyzer("peaknet", weights=w, device="cpu", backend="torch")
    an.predictor
    assert an.pixel_snr_photon_floor() is True and an.min_pixel_snr() == 6.5


def test_photon_floor_of_the_operating_point_reaches_the_peaks(monkeypatch):
    """With the weights' photon floor on, the analyser measures pixel SNRs against at least one
    photon of the geometry's gain: a stray photon on an empty CSPAD-like background is no spot."""
    from peaknet_gui.geometry import Geometry, Panel

    rng = np.random.default_rng(11)
    frame, _ = simulated_frame(rng, amplitude=60.0)
    panel = Panel("p", 0, frame.shape[1] - 1, 0, frame.shape[0] - 1, res=1 / 110e-6, clen=0.1, adu_per_photon=50.0)
    geom = Geometry(panels=[panel], photon_energy_ev=9500.0, clen=0.1)
    an, _ = analyzer()
    an.geometry_for = lambda fr: geom
    plain = an.analyze([frame])[0].peaks
    monkeypatch.setattr(FrameAnalyzer, "pixel_snr_photon_floor", lambda self, op=None: True)
    floored = an.analyze([frame])[0].peaks
    assert len(plain) == len(floored) >= 4
    np.testing.assert_array_equal(plain.fs, floored.fs)
    assert np.all(floored.max_snr <= plain.max_snr) and np.any(floored.max_snr < plain.max_snr)


class SmoothModel(ThresholdModel):
    """A stand-in whose peak probability falls off smoothly around a spot (a 3 x 3 mean of the
    normalised input): the argmax takes a spot's core, a low threshold its tails as well."""

    def forward(self, x):
        self.calls += 1
        import torch
        import torch.nn.functional as F

        y = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([torch.zeros_like(x), 4.0 * (y - 3.8), torch.full_like(x, -20.0)], dim=1)


def test_a_low_peak_threshold_keeps_neighbouring_spots_apart():
    """Below the model's own decision a threshold reaches further into the spots' tails and joins
    close neighbours; the analyzer splits such components at the model's argmax cores."""
    from scipy import ndimage

    from peaknet_gui.peaks.filters import peak_mask_from_probabilities

    rng = np.random.default_rng(41)
    frame, _ = simulated_frame(rng, n_spots=0, dark_box=False)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    centres = np.array([(cy, cx + dx) for cy, cx in [(30.3, 30.6), (70.2, 60.4), (40.7, 100.1)] for dx in (0.0, 5.0)])
    signal = sum(400.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 0.9**2)) for cy, cx in centres)
    frame.data[:] = rng.poisson(20.0 + signal).astype(np.float32)
    an, _ = analyzer(model=SmoothModel())
    res = an.analyze([frame])[0]
    low = an.rethreshold(res, frame, FinderSettings(peak_threshold=0.02, min_peaks_for_hit=5, min_pixels=2), MaskSettings())
    # the low threshold joins each pair into one component ...
    joined = peak_mask_from_probabilities(res.peak_prob.astype(np.float32), res.artifact_prob.astype(np.float32), 0.02)
    assert ndimage.label(joined, structure=np.ones((3, 3)))[1] == len(centres) // 2
    assert low.peaks.npix.sum() > 1.3 * res.peaks.npix.sum()
    # ... and the peaks are still one per spot, at the spot
    for r in (res, low):
        to_true, from_true = nearest(r.peaks, centres)
        assert len(r.peaks) == len(centres) and from_true.max() < 0.3
