"""Compute-device choice: ``auto`` (CUDA when usable, else CPU), ``cpu`` or ``cuda[:N]``."""

from __future__ import annotations

import os
from typing import Optional

from ..errors import DeviceError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def cpu_threads() -> int:
    """CPU cores this process may use (affinity-aware), at least 1; ``PEAKNET_CPU_THREADS`` caps
    it (a cluster worker given C cores of a shared node)."""
    cap = os.environ.get("PEAKNET_CPU_THREADS", "").strip()
    if cap.isdigit() and int(cap) > 0:
        return int(cap)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cuda_available() -> bool:
    """True when torch sees at least one working CUDA device (never raises)."""
    try:
        import torch

        return bool(torch.cuda.is_available()) and torch.cuda.device_count() > 0
    except Exception:  # broken driver installs raise all sorts of things
        return False


def resolve_device(spec: Optional[str] = "auto"):
    """A ``torch.device`` for ``spec`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``).

    ``cuda`` on a machine without a usable GPU raises :class:`DeviceError`.
    """
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda:0") if cuda_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not cuda_available():
            raise DeviceError(f"device {spec!r}: no usable CUDA GPU on this machine (torch {torch.__version__}); use --device cpu or auto")
        dev = torch.device("cuda:0" if spec == "cuda" else spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    raise DeviceError(f"unknown device {spec!r}: choose one of auto, cpu, cuda, cuda:N")


def describe_device(device) -> str:
    """Human-readable device name, e.g. ``cuda:0 (NVIDIA H100 80GB HBM3)`` or ``cpu (2 threads)``."""
    if getattr(device, "type", str(device)) == "cuda":
        try:
            import torch

            return f"{device} ({torch.cuda.get_device_name(device)})"
        except Exception:
            return str(device)
    return f"cpu ({cpu_threads()} threads)"


def is_cuda_failure(exc: BaseException) -> bool:
    """Whether an exception is a CUDA runtime failure (out of memory, launch/driver errors)."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except Exception:
        pass
    text = f"{type(exc).__name__}: {exc}".lower()
    return isinstance(exc, RuntimeError) and any(k in text for k in ("cuda", "cublas", "cudnn", "out of memory", "nccl"))
