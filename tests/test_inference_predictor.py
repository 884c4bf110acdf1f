"""The Predictor: padding to the stride, multi-panel batching and stitching, torch vs ONNX
Runtime, device choice and CUDA fallback (CUDA-only tests skip without a GPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from peaknet_gui.errors import DeviceError, ModelError
from peaknet_gui.geometry import Geometry, Panel
from peaknet_gui.inference.device import cuda_available, resolve_device
from peaknet_gui.inference.layout import FrameLayout
from peaknet_gui.inference.predictor import DeviceThresholds, Predictor
from peaknet_gui.peaks.filters import peak_mask_from_probabilities

needs_cuda = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")


class PixelModel(torch.nn.Module):
    """logits = (0, k*x, -k*x): peak probability grows with the input; stride-checked."""

    def __init__(self, stride=8, k=2.0):
        super().__init__()
        self.stride = stride
        self.k = torch.nn.Parameter(torch.tensor(float(k)))
        self.shapes = []

    def forward(self, x):
        assert x.shape[-1] % self.stride == 0 and x.shape[-2] % self.stride == 0, x.shape
        self.shapes.append(tuple(x.shape))
        z = torch.zeros_like(x)
        return torch.cat([z, self.k * x, -self.k * x], dim=1)


class SmallConvNet(torch.nn.Module):
    """A small random conv net with a strided stage (exercises ONNX export + ORT)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stride = 4
        self.down = torch.nn.Conv2d(1, 8, 4, stride=4)
        self.mid = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.up = torch.nn.ConvTranspose2d(8, 8, 4, stride=4)
        self.full = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.head = torch.nn.Conv2d(12, 3, 1)

    def forward(self, x):
        y = self.up(torch.relu(self.mid(torch.relu(self.down(x)))))
        return self.head(torch.cat([y, torch.relu(self.full(x))], dim=1))


def identity(data, bad=None):
    out = np.asarray(data, dtype=np.float32).copy()
    if bad is not None:
        out[bad] = 0
    return out


def expected_peak_prob(x, k=2.0):
    e1, e2 = np.exp(k * x), np.exp(-k * x)
    return e1 / (1 + e1 + e2)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PEAKNET_CACHE_DIR", str(tmp_path / "cache"))


def test_odd_frame_sizes_are_padded_and_cropped_back():
    model = PixelModel(stride=8)
    pred = Predictor(model=model, device="cpu", backend="torch", normalizer=identity)
    rng = np.random.default_rng(0)
    frames = [rng.normal(0, 1, (37, 53)).astype(np.float32), rng.normal(0, 1, (64, 9)).astype(np.float32)]
    out = pred.predict(frames)
    assert [o.peak_prob.shape for o in out] == [(37, 53), (64, 9)]
    assert out[0].peak_prob.dtype == np.float16
    for f, o in zip(frames, out):
        np.testing.assert_allclose(o.peak_prob.astype(np.float32), expected_peak_prob(f), atol=1e-3)
        np.testing.assert_allclose(o.artifact_prob.astype(np.float32), expected_peak_prob(-f), atol=1e-3)
    assert (40, 56) in [s[-2:] for s in model.shapes] and (64, 16) in [s[-2:] for s in model.shapes]
    assert "normalise" in out[0].timings_ms and out[0].timings_ms["model"] > 0


def slab_geometry():
    # a 30 x 70 slab holding two panels of different sizes side by side, a gap column between
    a = Panel("a", 0, 29, 0, 19, corner_x=-40.0, corner_y=-10.0, res=1e4, clen=0.1)
    b = Panel("b", 31, 69, 0, 29, corner_x=5.0, corner_y=-15.0, res=1e4, clen=0.1)
    return Geometry(panels=[a, b], photon_energy_ev=9000.0, clen=0.1)


def test_multi_panel_frames_run_as_one_batch_and_stitch_back():
    geom = slab_geometry()
    layout = FrameLayout.for_frame((30, 70), geom, stride=8)
    assert layout.tile_shape == (32, 40) and layout.n_tiles == 2
    model = PixelModel(stride=8)
    pred = Predictor(model=model, device="cpu", backend="torch", normalizer=identity)
    rng = np.random.default_rng(1)
    frames = [rng.normal(0, 1, (30, 70)).astype(np.float32) for _ in range(3)]
    out = pred.predict(frames, geometry=geom)
    assert model.shapes == [(6, 1, 32, 40)]  # 3 frames x 2 panels in one call
    for f, o in zip(frames, out):
        exp = expected_peak_prob(f)
        got = o.peak_prob.astype(np.float32)
        np.testing.assert_allclose(got[0:20, 0:30], exp[0:20, 0:30], atol=1e-3)
        np.testing.assert_allclose(got[0:30, 31:70], exp[0:30, 31:70], atol=1e-3)
        assert (got[20:, 0:30] == 0).all() and (got[:, 30] == 0).all()  # outside every panel


def test_batches_respect_the_pixel_budget():
    model = PixelModel(stride=8)
    pred = Predictor(model=model, device="cpu", backend="torch", normalizer=identity, max_batch_pixels=2 * 32 * 40)
    frames = [np.zeros((30, 70), np.float32) for _ in range(3)]
    pred.predict(frames, geometry=slab_geometry())
    assert [s[0] for s in model.shapes] == [2, 2, 2]


def test_onnxruntime_agrees_with_torch_and_choice_is_cached(tmp_path):
    net = SmallConvNet().eval()
    rng = np.random.default_rng(2)
    frames = [rng.normal(0, 1, (45, 61)).astype(np.float32)]
    p_torch = Predictor(model=net, device="cpu", backend="torch", normalizer=identity).predict(frames)[0]
    p_ort_pred = Predictor(model=net, device="cpu", backend="onnxruntime", normalizer=identity)
    assert p_ort_pred.backend.name == "onnxruntime"
    p_ort = p_ort_pred.predict(frames)[0]
    np.testing.assert_allclose(p_ort.peak_prob.astype(np.float32), p_torch.peak_prob.astype(np.float32), atol=2e-3)
    np.testing.assert_allclose(p_ort.artifact_prob.astype(np.float32), p_torch.artifact_prob.astype(np.float32), atol=2e-3)
    onnx_files = list((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(onnx_files) == 1
    # automatic choice measures both once, then remembers the winner
    auto = Predictor(model=net, device="cpu", backend="auto", normalizer=identity)
    assert auto.backend.name in ("torch", "onnxruntime")
    choices = json.loads((tmp_path / "cache" / "cpu_backend.json").read_text())
    (entry,) = choices.values()
    assert entry["backend"] == auto.backend.name and entry["torch_s"] > 0 and entry["onnxruntime_s"] > 0
    entry["backend"] = "torch" if auto.backend.name == "onnxruntime" else "onnxruntime"
    (tmp_path / "cache" / "cpu_backend.json").write_text(json.dumps(choices))
    again = Predictor(model=net, device="cpu", backend="auto", normalizer=identity)
    assert again.backend.name == entry["backend"]


def test_unknown_or_missing_devices():
    with pytest.raises(DeviceError):
        resolve_device("tpu")
    if not cuda_available():
        with pytest.raises(DeviceError, match="no usable CUDA"):
            Predictor(model=PixelModel(), device="cuda", normalizer=identity)
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(DeviceError):
        Predictor(model=PixelModel(), device="cpu", backend="tensorflow", normalizer=identity)


def test_cuda_failure_falls_back_to_cpu_with_a_warning(monkeypatch):
    pred = Predictor(model=PixelModel(stride=8), device="cpu", backend="torch", normalizer=identity)
    real_run_chunk = pred._run_chunk
    calls = {"cuda": 0}

    def fake_run_chunk(x, thresholds):
        if pred.device.type == "cuda":
            calls["cuda"] += 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_run_chunk(x, thresholds)

    monkeypatch.setattr(pred, "_run_chunk", fake_run_chunk)
    pred.device = torch.device("cuda:0")  # pretend the predictor lives on a GPU
    frames = [np.ones((16, 16), np.float32), np.zeros((16, 16), np.float32)]
    with pytest.warns(RuntimeWarning, match="continuing on the CPU"):
        out = pred.predict(frames)
    assert calls["cuda"] == 2  # the batch of 2, then its first half; then the CPU takes over
    assert pred.device.type == "cpu" and pred.warnings
    np.testing.assert_allclose(out[0].peak_prob.astype(np.float32), expected_peak_prob(np.ones((16, 16))), atol=1e-3)


def test_model_failures_become_peaknet_errors():
    class Broken(torch.nn.Module):
        stride = 1

        def forward(self, x):
            raise RuntimeError("simulated allocator failure")

    pred = Predictor(model=Broken(), device="cpu", backend="torch", normalizer=identity)
    with pytest.raises(DeviceError, match="simulated allocator failure"):
        pred.predict([np.zeros((8, 8), np.float32)])

    class WrongShape(torch.nn.Module):
        stride = 1

        def forward(self, x):
            return torch.zeros(x.shape[0], 3, 2, 2)

    pred = Predictor(model=WrongShape(), device="cpu", backend="torch", normalizer=identity)
    with pytest.raises(ModelError, match="returned shape"):
        pred.predict([np.zeros((8, 8), np.float32)])


@needs_cuda
def test_cuda_fp16_agrees_with_cpu_and_masks_on_device():
    net = SmallConvNet().eval()
    rng = np.random.default_rng(3)
    frames = [rng.normal(0, 1, (131, 257)).astype(np.float32) for _ in range(3)]
    cpu = Predictor(model=net, device="cpu", backend="torch", normalizer=identity).predict(frames)
    gpu_pred = Predictor(model=SmallConvNet().eval(), device="cuda", normalizer=identity)
    assert "cuda" in gpu_pred.device_name
    gpu = gpu_pred.predict(frames, thresholds=DeviceThresholds(None, None))
    for c, g in zip(cpu, gpu):
        np.testing.assert_allclose(g.peak_prob.astype(np.float32), c.peak_prob.astype(np.float32), atol=2e-2)
        # masks computed on the GPU equal the CPU thresholding of the same float16 probabilities
        assert np.array_equal(g.peak_mask, peak_mask_from_probabilities(g.peak_prob, g.artifact_prob))


def test_device_error_when_cpu_fallback_fails_too(monkeypatch):
    pred = Predictor(model=PixelModel(stride=8), device="cpu", backend="torch", normalizer=identity)

    def always_fails(x, thresholds):
        if pred.device.type == "cuda":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        raise RuntimeError("DefaultCPUAllocator: not enough memory")

    monkeypatch.setattr(pred, "_run_chunk", always_fails)
    pred.device = torch.device("cuda:0")
    with pytest.warns(RuntimeWarning), pytest.raises(DeviceError, match="on CUDA .* and then on the CPU"):
        pred.predict([np.zeros((16, 16), np.float32)])


@pytest.mark.parametrize("config", ["fast", "paper"])
def test_peaknet_configs_agree_between_torch_and_onnxruntime(config):
    unet = pytest.importorskip("peaknet_gui.model.unet")
    torch.manual_seed(0)
    net = unet.PeakNet(getattr(unet.PeakNetConfig, config)()).eval()
    rng = np.random.default_rng(4)
    frames = [rng.normal(0, 1, (50, 70)).astype(np.float32)]
    a = Predictor(model=net, device="cpu", backend="torch", normalizer=identity).predict(frames)[0]
    b = Predictor(model=net, device="cpu", backend="onnxruntime", normalizer=identity).predict(frames)[0]
    assert a.peak_prob.shape == (50, 70)
    np.testing.assert_allclose(b.peak_prob.astype(np.float32), a.peak_prob.astype(np.float32), atol=3e-3)
    np.testing.assert_allclose(b.artifact_prob.astype(np.float32), a.artifact_prob.astype(np.float32), atol=3e-3)


def test_device_class_masks_equal_the_cpu_thresholding():
    # the GPU post-processing is device-agnostic torch code: check it on CPU tensors
    from peaknet_gui.inference.gpu_post import class_masks_torch
    from peaknet_gui.masks.automask import artifact_mask_from_probabilities

    rng = np.random.default_rng(8)
    logits = rng.normal(0, 2, (2, 3, 40, 60)).astype(np.float32)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs16 = (e / e.sum(axis=1, keepdims=True))[:, 1:].astype(np.float16)
    for pt, at in [(None, None), (0.3, 0.6), (0.5, None)]:
        pk, ar = class_masks_torch(torch.from_numpy(probs16), pt, at)
        for b in range(2):
            assert np.array_equal(pk[b].numpy(), peak_mask_from_probabilities(probs16[b, 0], probs16[b, 1], pt))
            assert np.array_equal(ar[b].numpy(), artifact_mask_from_probabilities(probs16[b, 1], probs16[b, 0], at))
