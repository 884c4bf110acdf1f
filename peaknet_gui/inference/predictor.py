"""The Predictor: hosts PeakNet on the best device and turns frames into class probabilities.

* CUDA: torch with fp16 autocast, frames (or panels) batched, class masks computed on the GPU.
* CPU: the faster of torch and ONNX Runtime on this machine (measured once per model and
  thread count, remembered in the user cache; ``backend=`` or ``$PEAKNET_CPU_BACKEND`` override).
* Any frame size (padded to the model's stride, cropped back); multi-panel frames run their
  panels as one batch and are stitched back into the slab (see :mod:`.layout`).
* :meth:`Predictor.prepare` (normalise + cut) is thread-safe and meant to run in a prefetch
  thread while :meth:`Predictor.run` runs the model on the previous frames.
* CUDA failures (out of memory: first smaller batches; driver errors) fall back to the CPU
  with a warning; a failure there raises :class:`~peaknet_gui.errors.DeviceError`.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import DeviceError, InputError, ModelError, PeakNetError
from ..geometry import Geometry
from .backends import TorchBackend, cache_dir, make_probability_head, model_key, onnx_backend_for, time_backend
from .device import cpu_threads, describe_device, is_cuda_failure, resolve_device
from .layout import FrameLayout, layout_for, round_up

log = logging.getLogger(__name__)

CPU_BACKENDS = ("auto", "torch", "onnxruntime")
_BACKEND_ALIASES = {"onnx": "onnxruntime", "ort": "onnxruntime", "pytorch": "torch"}
#: model input pixels per call: about one 2k x 2k frame on the CPU, several on a GPU
DEFAULT_CPU_BATCH_PIXELS = 4_300_000
DEFAULT_GPU_BATCH_PIXELS = 8 * 1920 * 1920


@dataclass
class PreparedFrame:
    """A frame normalised and cut into model tiles (output of :meth:`Predictor.prepare`)."""

    layout: FrameLayout
    tiles: np.ndarray  # (n_tiles, th, tw) float32
    timings_ms: dict = field(default_factory=dict)


@dataclass
class ClassMaps:
    """Model output for one frame: float16 class probabilities of the frame's shape.

    ``peak_mask``/``artifact_mask`` are filled when :meth:`Predictor.run` was asked to threshold
    on the device (GPU post-processing); the artifact mask is not dilated.
    """

    peak_prob: np.ndarray
    artifact_prob: np.ndarray
    peak_mask: Optional[np.ndarray] = None
    artifact_mask: Optional[np.ndarray] = None
    timings_ms: dict = field(default_factory=dict)


@dataclass
class DeviceThresholds:
    """Thresholds for computing class masks on the device (None = argmax).  Dilation of the
    artifact mask is left to the caller, on the whole frame, as in re-thresholding."""

    peak_threshold: Optional[float] = None
    artifact_threshold: Optional[float] = None


def _default_normalizer() -> Callable:
    try:
        from ..model.normalize import normalize
    except ImportError as e:
        raise ModelError(f"the model's normalisation (peaknet_gui.model.normalize) is not available ({e})") from e
    return normalize


def _load_network(weights):
    try:
        from ..model.weights import load_weights
    except ImportError as e:
        raise ModelError(f"the model package (peaknet_gui.model.weights) is not available ({e})") from e
    net, info = load_weights(weights, map_location="cpu")
    return net, info


def _info_dict(info) -> dict:
    if info is None:
        return {}
    if isinstance(info, dict):
        return dict(info)
    if hasattr(info, "as_dict"):
        try:
            return dict(info.as_dict())
        except Exception:  # a partial info object: fall back to its attributes
            pass
    out = {}
    for k in ("path", "checksum", "sha256", "version", "config", "trained_on", "metrics", "description"):
        v = getattr(info, k, None)
        if v is not None:
            out[k] = v if isinstance(v, (str, int, float, bool, dict, list)) else str(v)
    return out


class Predictor:
    """PeakNet on a device.  See the module docstring."""

    def __init__(
        self,
        weights=None,
        *,
        device: str = "auto",
        backend: str = "auto",
        model=None,
        normalizer: Optional[Callable] = None,
        max_batch_pixels: Optional[int] = None,
        amp: bool = True,
    ):
        info = None
        if model is None:
            model, info = _load_network(weights)
        self.net = model.eval()
        self.stride = int(getattr(model, "stride", 1) or 1)
        self._normalizer = normalizer
        self._normalizer_takes_panels: Optional[bool] = None
        self.amp = amp
        self.warnings: list = []
        self._key = model_key(model)
        self._head = make_probability_head(model)
        self.device = resolve_device(device)
        requested = (backend or "auto").lower()
        requested = _BACKEND_ALIASES.get(requested, requested)
        if requested not in CPU_BACKENDS:
            raise DeviceError(f"unknown CPU backend {backend!r}: choose auto, torch or onnxruntime")
        self._requested_backend = requested
        self.backend_timings: dict = {}
        if self.device.type == "cuda":
            self.backend = TorchBackend(self._head, self.device, amp=amp)
            self.max_batch_pixels = int(max_batch_pixels or DEFAULT_GPU_BATCH_PIXELS)
        else:
            self.backend = self._make_cpu_backend(requested)
            self.max_batch_pixels = int(max_batch_pixels or DEFAULT_CPU_BATCH_PIXELS)
        self.model_info = _info_dict(info)
        self.model_info.update({"model_key": self._key, "stride": self.stride, "class": type(model).__name__})
        cfg = getattr(model, "config", None)
        if cfg is not None and "config" not in self.model_info:
            self.model_info["config"] = repr(cfg)
        from ..model.operating_point import OperatingPoint

        #: the loaded weights' operating point (0 when the weights carry none), read once
        op = OperatingPoint.from_metadata(self.model_info.get("metadata"))
        self.peak_min_confidence = op.peak_min_confidence
        self.peak_min_pixel_snr = op.peak_min_pixel_snr
        self.peak_threshold = op.segmentation_threshold  # None: argmax
        self.peak_pixel_snr_photon_floor = op.pixel_snr_photon_floor
        #: the whole point, with its fallback for frames whose stated gain cannot be trusted
        self.operating_point = op

    # --- device and backend -----------------------------------------------------------------
    @property
    def device_name(self) -> str:
        name = describe_device(self.device)
        if self.device.type == "cuda":
            return f"{name}, fp16" if self.amp else name
        return f"{name}, {self.backend.name}"

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    def _make_cpu_backend(self, requested: str):
        if requested == "auto":
            env = os.environ.get("PEAKNET_CPU_BACKEND", "").strip().lower()
            env = _BACKEND_ALIASES.get(env, env)
            if env in ("torch", "onnxruntime"):
                requested = env
        if requested == "torch":
            return TorchBackend(self._head, self.device)
        if requested == "onnxruntime":
            return onnx_backend_for(self._head, self._key)
        return self._fastest_cpu_backend()

    def _fastest_cpu_backend(self):
        threads = cpu_threads()
        choice_file = cache_dir() / "cpu_backend.json"
        entry_key = f"{self._key}-t{threads}"
        try:
            choices = json.loads(choice_file.read_text())
        except (OSError, ValueError):
            choices = {}
        torch_backend = TorchBackend(self._head, self.device)
        try:
            ort_backend = onnx_backend_for(self._head, self._key, threads)
        except ModelError as e:
            log.warning("ONNX Runtime unavailable for this model, using torch: %s", e)
            return torch_backend
        known = choices.get(entry_key)
        if isinstance(known, dict) and known.get("backend") in ("torch", "onnxruntime"):
            self.backend_timings = {k: v for k, v in known.items() if k.endswith("_s")}
            return ort_backend if known["backend"] == "onnxruntime" else torch_backend
        try:
            side = round_up(1024, self.stride)
            t_torch, t_ort = float("inf"), float("inf")
            for r in range(3):  # interleaved, best of each: robust to a busy machine
                t_torch = min(t_torch, time_backend(torch_backend, shape=(1, 1, side, side), repeats=1, warmup=r == 0))
                t_ort = min(t_ort, time_backend(ort_backend, shape=(1, 1, side, side), repeats=1, warmup=r == 0))
        except Exception as e:  # a model ORT cannot run: torch it is
            log.warning("ONNX Runtime failed on this model, using torch: %s", e)
            return torch_backend
        # ONNX Runtime unless torch is clearly faster (ORT needs less memory)
        best = "torch" if t_torch < 0.9 * t_ort else "onnxruntime"
        self.backend_timings = {"torch_s": t_torch, "onnxruntime_s": t_ort}
        choices[entry_key] = {"backend": best, **self.backend_timings, "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            from ..export.atomic import atomic_write

            with atomic_write(choice_file) as fh:
                json.dump(choices, fh, indent=1)
        except PeakNetError as e:
            log.debug("could not remember the CPU backend choice: %s", e)
        log.info("CPU backend: %s (torch %.0f ms, onnxruntime %.0f ms on 1024x1024)", best, 1e3 * t_torch, 1e3 * t_ort)
        return ort_backend if best == "onnxruntime" else torch_backend

    def _fall_back_to_cpu(self, exc: BaseException) -> None:
        msg = f"CUDA failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); continuing on the CPU"
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        log.warning(msg)
        self.warnings.append(msg)
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:
            pass
        self.device = resolve_device("cpu")
        self._head = self._head.cpu()
        self.backend = self._make_cpu_backend(self._requested_backend)
        self.max_batch_pixels = DEFAULT_CPU_BATCH_PIXELS

    # --- preparation (thread-safe) ---------------------------------------------------------------
    def normalize(self, data: np.ndarray, bad: Optional[np.ndarray] = None, panels=None) -> np.ndarray:
        """The model's input normalisation (per panel when ``panels`` slices are given)."""
        if self._normalizer is None:
            self._normalizer = _default_normalizer()
        if self._normalizer_takes_panels is None:
            try:
                self._normalizer_takes_panels = "panels" in inspect.signature(self._normalizer).parameters
            except (TypeError, ValueError):
                self._normalizer_takes_panels = False
        if panels is not None and self._normalizer_takes_panels:
            out = self._normalizer(data, bad, panels=panels)
        else:
            out = self._normalizer(data, bad)
        out = np.asarray(out, dtype=np.float32)
        if out.shape != data.shape:
            raise ModelError(f"normalisation returned shape {out.shape} for a frame of shape {data.shape}")
        return out

    def prepare(self, data: np.ndarray, bad: Optional[np.ndarray] = None, geometry: Optional[Geometry] = None) -> PreparedFrame:
        """Normalise one frame and cut it into model tiles (safe to call from other threads)."""
        data = np.asarray(data)
        if data.ndim != 2 or min(data.shape) < 1:
            raise InputError(f"the model needs a 2-D frame, got shape {data.shape}")
        if geometry is not None:
            geometry.check_data_shape(data.shape, "the frame")
        t0 = time.perf_counter()
        layout = layout_for(data.shape, geometry, self.stride)
        norm = self.normalize(data, bad, panels=list(layout.tiles) if geometry is not None else None)
        tiles = layout.cut(norm)
        return PreparedFrame(layout=layout, tiles=tiles, timings_ms={"normalise": 1e3 * (time.perf_counter() - t0)})

    # --- model -------------------------------------------------------------------------------
    def _chunks(self, prepared: Sequence[PreparedFrame]):
        """Yield (tile_shape, [(frame_index, tile_index), ...]) groups within the pixel budget."""
        groups: dict = {}
        for fi, pf in enumerate(prepared):
            for ti in range(pf.layout.n_tiles):
                groups.setdefault(pf.layout.tile_shape, []).append((fi, ti))
        for shape, members in groups.items():
            per_batch = max(1, self.max_batch_pixels // (shape[0] * shape[1]))
            for i in range(0, len(members), per_batch):
                yield shape, members[i : i + per_batch]

    def _run_chunk(self, x: np.ndarray, thresholds: Optional[DeviceThresholds]):
        """Probabilities (n,2,h,w) float16 and optional masks for one chunk on the current device."""
        if self.device.type != "cuda":
            probs = self.backend.run(x)
            return probs, None, None
        import torch

        from .gpu_post import class_masks_torch

        xt = torch.from_numpy(x).pin_memory().to(self.device, non_blocking=True)
        p = self.backend.run_tensor(xt)
        pm = am = None
        if thresholds is not None:
            pk, ar = class_masks_torch(p, thresholds.peak_threshold, thresholds.artifact_threshold)
            pm, am = pk.cpu().numpy(), ar.cpu().numpy()
        return p.cpu().numpy(), pm, am

    def _run_with_recovery(self, x: np.ndarray, thresholds):
        """Run a chunk; on CUDA OOM split it, on other CUDA failures fall back to the CPU."""
        try:
            return self._run_chunk(x, thresholds)
        except Exception as exc:
            if self.device.type == "cuda" and is_cuda_failure(exc):
                import torch

                if isinstance(exc, torch.cuda.OutOfMemoryError) and len(x) > 1:
                    torch.cuda.empty_cache()
                    half = len(x) // 2
                    self.max_batch_pixels = max(x.shape[-1] * x.shape[-2], self.max_batch_pixels // 2)
                    a = self._run_with_recovery(x[:half], thresholds)
                    b = self._run_with_recovery(x[half:], thresholds)
                    return tuple(None if u is None else np.concatenate([u, v]) for u, v in zip(a, b))
                self._fall_back_to_cpu(exc)
                try:
                    return self._run_chunk(x, None)
                except PeakNetError:
                    raise
                except Exception as cpu_exc:
                    raise DeviceError(
                        f"the model failed on CUDA ({type(exc).__name__}: {exc}) and then on the CPU "
                        f"({type(cpu_exc).__name__}: {cpu_exc}) for input {tuple(x.shape)}"
                    ) from cpu_exc
            if isinstance(exc, PeakNetError):
                raise
            if isinstance(exc, (RuntimeError, MemoryError)) or type(exc).__module__.startswith("onnxruntime"):
                raise DeviceError(
                    f"the model failed on {self.device_name} for input {tuple(x.shape)} ({type(exc).__name__}: {exc})"
                ) from exc
            raise

    def run(self, prepared: Sequence[PreparedFrame], thresholds: Optional[DeviceThresholds] = None) -> list:
        """Run the model on prepared frames; returns one :class:`ClassMaps` per frame.

        With ``thresholds`` and a GPU, the peak and artifact masks (undilated) are computed on the
        device too; on the CPU they are left to the caller (``None``).
        """
        prepared = list(prepared)
        if not prepared:
            return []
        out_tiles = [np.zeros((pf.layout.n_tiles, 2) + tuple(pf.layout.tile_shape), dtype=np.float16) for pf in prepared]
        mask_tiles = [None] * len(prepared)
        masked = [0] * len(prepared)  # tiles with device masks (a CPU fallback mid-batch leaves gaps)
        model_ms = [0.0] * len(prepared)
        for shape, members in self._chunks(prepared):
            x = np.empty((len(members), 1) + tuple(shape), dtype=np.float32)
            for k, (fi, ti) in enumerate(members):
                x[k, 0] = prepared[fi].tiles[ti]
            t0 = time.perf_counter()
            probs, pm, am = self._run_with_recovery(x, thresholds)
            elapsed = 1e3 * (time.perf_counter() - t0)
            if probs.shape != (len(members), 2) + tuple(shape):
                raise ModelError(f"the model returned shape {probs.shape} for input {x.shape}")
            for k, (fi, ti) in enumerate(members):
                out_tiles[fi][ti] = probs[k]
                model_ms[fi] += elapsed / len(members)
                if pm is not None:
                    if mask_tiles[fi] is None:
                        mask_tiles[fi] = np.zeros((prepared[fi].layout.n_tiles, 2) + tuple(shape), dtype=bool)
                    mask_tiles[fi][ti, 0] = pm[k]
                    mask_tiles[fi][ti, 1] = am[k]
                    masked[fi] += 1
        results = []
        for fi, pf in enumerate(prepared):
            maps = pf.layout.stitch(out_tiles[fi])
            cm = ClassMaps(peak_prob=maps[0], artifact_prob=maps[1], timings_ms=dict(pf.timings_ms))
            cm.timings_ms["model"] = model_ms[fi]
            if mask_tiles[fi] is not None and masked[fi] == pf.layout.n_tiles:
                masks = pf.layout.stitch(mask_tiles[fi])
                cm.peak_mask, cm.artifact_mask = masks[0], masks[1]
            results.append(cm)
        return results

    def predict(
        self,
        images: Sequence[np.ndarray],
        bads: Optional[Sequence[Optional[np.ndarray]]] = None,
        geometry: Optional[Geometry] = None,
        thresholds: Optional[DeviceThresholds] = None,
    ) -> list:
        """Prepare and run a batch of frames (2-D arrays) in one go."""
        bads = list(bads) if bads is not None else [None] * len(images)
        return self.run([self.prepare(img, bad, geometry) for img, bad in zip(images, bads)], thresholds)
