"""Export PeakNet to ONNX (for ONNX Runtime on CPU) and optional int8 quantisation.

``export_onnx`` writes a graph with dynamic batch, height and width (H, W multiples of the
network's stride) from a network in eval mode; batch norms fold into the convolutions when
ONNX Runtime optimises the graph.  ``quantize_onnx`` makes an int8 QDQ model (static
quantisation calibrated on a few normalised frames, or dynamic when none are given).
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import torch

from ..errors import ModelError
from ..export.atomic import atomic_path

OPSET = 17


def export_onnx(net: torch.nn.Module, path, *, opset: int = OPSET, example_size: int = 64) -> Path:
    """Write ``net`` (a copy on CPU in eval mode) as ONNX to ``path`` (atomically)."""
    path = Path(path)
    net = copy.deepcopy(net).to("cpu").eval()
    stride = getattr(net, "stride", 16)
    size = max(example_size, stride) // stride * stride
    x = torch.zeros(1, 1, size, size)
    with atomic_path(path, suffix=".onnx") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                net,
                (x,),
                str(tmp),
                input_names=["image"],
                output_names=["logits"],
                dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}},
                opset_version=opset,
                dynamo=False,
                do_constant_folding=True,
            )
        except Exception as e:  # the exporter raises many kinds
            raise ModelError(f"{path}: ONNX export failed: {e}") from e
    return path


class _Frames:
    """onnxruntime CalibrationDataReader over a list of (1, 1, H, W) float32 arrays."""

    def __init__(self, frames: Iterable[np.ndarray], name: str):
        self._it = iter([{name: np.asarray(f, dtype=np.float32)} for f in frames])

    def get_next(self):
        return next(self._it, None)


def quantize_onnx(src, dst, calibration: Optional[Iterable[np.ndarray]] = None) -> Path:
    """int8 quantisation of an exported model: static QDQ (per-channel weights) calibrated on
    ``calibration`` frames, or dynamic when ``calibration`` is None."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    src, dst = str(src), Path(dst)
    with atomic_path(dst, suffix=".onnx") as tmp:
        if calibration is None:
            quantize_dynamic(src, str(tmp), weight_type=QuantType.QInt8)
        else:
            quantize_static(
                src,
                str(tmp),
                _Frames(calibration, "image"),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
    for extra in (str(tmp) + ".data",):
        if os.path.exists(extra):  # pragma: no cover - external data never used at this size
            os.unlink(extra)
    return dst
