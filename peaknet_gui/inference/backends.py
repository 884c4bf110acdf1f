"""Model runtimes: torch (CPU or CUDA, fp16 autocast) and ONNX Runtime (CPU).

Both run :class:`ProbabilityHead` -- the network followed by a softmax over the three classes,
keeping the peak and artifact probabilities -- on (B, 1, H, W) float32 normalised inputs and
return (B, 2, H, W) float16 probabilities (channel 0 = peak, 1 = artifact).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ModelError
from .device import cpu_threads

log = logging.getLogger(__name__)

ONNX_OPSET = 17


def _torch():
    import torch

    return torch


def make_probability_head(net):
    """Wrap ``net`` (logits (B,3,H,W)) into a module giving (B,2,H,W) [peak, artifact] probabilities."""
    torch = _torch()

    class ProbabilityHead(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.net = inner

        def forward(self, x):
            logits = self.net(x).float()
            m = torch.amax(logits, dim=1, keepdim=True)
            e = torch.exp(logits - m)
            return e[:, 1:3] / torch.sum(e, dim=1, keepdim=True)

    head = ProbabilityHead(net)
    head.eval()
    return head


def model_key(net) -> str:
    """A checksum of the network's class, config and parameters (names the ONNX cache file)."""
    h = hashlib.sha256()
    h.update(type(net).__qualname__.encode())
    h.update(repr(getattr(net, "config", "")).encode())
    for name, tensor in net.state_dict().items():
        h.update(name.encode())
        t = tensor.detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes() if t.dtype != _torch().bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:24]


def cache_dir() -> Path:
    """User cache directory (``$PEAKNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/peaknet_gui``)."""
    env = os.environ.get("PEAKNET_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "peaknet_gui"


class TorchBackend:
    """Runs the probability head with torch on ``device`` (fp16 autocast on CUDA)."""

    name = "torch"

    def __init__(self, head, device, amp: bool = True):
        torch = _torch()
        self.device = device
        # channels-last convolutions are ~1.7x faster with torch on this CPU and use tensor
        # cores better on GPUs
        self.head = head.to(device).to(memory_format=torch.channels_last).eval()
        self.amp = bool(amp) and device.type == "cuda"
        if device.type == "cpu":
            self.threads = cpu_threads()
            torch.set_num_threads(self.threads)

    def run_tensor(self, x):
        """(B,1,H,W) tensor on the device -> (B,2,H,W) float16 tensor on the device."""
        torch = _torch()
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self.amp:
                with torch.autocast(device_type="cuda", dtype=torch.float16):
                    p = self.head(x)
            else:
                p = self.head(x)
            return p.to(torch.float16).contiguous()

    def run(self, x: np.ndarray) -> np.ndarray:
        torch = _torch()
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device, non_blocking=True)
        return self.run_tensor(t).cpu().numpy()


def export_onnx(head, path: Path, example_hw: tuple = (64, 64)) -> Path:
    """Export the probability head to ONNX (dynamic batch, height, width; float16 output)."""
    torch = _torch()
    from ..export.atomic import atomic_path

    class Half(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x).to(torch.float16)

    module = Half(head).cpu().eval()
    x = torch.zeros((1, 1) + tuple(example_hw), dtype=torch.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".onnx") as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (x,),
                str(tmp),
                dynamo=False,
                input_names=["image"],
                output_names=["probabilities"],
                dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "probabilities": {0: "batch", 2: "height", 3: "width"}},
                opset_version=ONNX_OPSET,
                do_constant_folding=True,
            )
    return path


class OrtBackend:
    """Runs an exported probability head with ONNX Runtime on the CPU."""

    name = "onnxruntime"

    def __init__(self, onnx_path: Path, threads: Optional[int] = None):
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - onnxruntime is a requirement
            raise ModelError(f"onnxruntime is not installed ({e})") from e
        self.threads = threads or cpu_threads()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ModelError(f"{onnx_path}: ONNX Runtime cannot load the model ({e})") from e
        self.input_name = self.session.get_inputs()[0].name
        self.path = Path(onnx_path)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def onnx_backend_for(head, key: str, threads: Optional[int] = None) -> OrtBackend:
    """The ORT backend of ``head``, exporting it once into the cache (``<cache>/onnx/<key>.onnx``)."""
    path = cache_dir() / "onnx" / f"{key}-opset{ONNX_OPSET}.onnx"
    if not path.is_file():
        t0 = time.perf_counter()
        try:
            export_onnx(head, path)
        except Exception as e:
            raise ModelError(f"cannot export the model to ONNX at {path} ({type(e).__name__}: {e})") from e
        log.info("exported the model to %s in %.1f s", path, time.perf_counter() - t0)
    try:
        return OrtBackend(path, threads)
    except ModelError:
        # a damaged cache file (e.g. disk full during an earlier run): export again once
        path.unlink(missing_ok=True)
        export_onnx(head, path)
        return OrtBackend(path, threads)


def time_backend(backend, shape=(1, 1, 1024, 1024), repeats: int = 2, warmup: bool = True) -> float:
    """Best-of-``repeats`` seconds per call of ``backend.run`` on random input (after a warm-up)."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if warmup:
        backend.run(x)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        backend.run(x)
        best = min(best, time.perf_counter() - t0)
    return best
