"""Inference: device choice, the Predictor (torch fp16 CUDA / torch or ONNX Runtime on CPU),
frame tiling for any size and multi-panel slabs.  Importing this package does not import torch."""

from .device import cpu_threads, cuda_available, resolve_device  # noqa: F401
from .predictor import ClassMaps, DeviceThresholds, PreparedFrame, Predictor  # noqa: F401
