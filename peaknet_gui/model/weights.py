"""Saving and loading PeakNet weights, with the network's shape and a verified checksum.

A weights file is a **safetensors** file (``*.safetensors``: the state dict, plus string
metadata holding the :class:`~.unet.PeakNetConfig` as JSON and the normalisation version) and
a **sidecar** JSON beside it with the same stem (``peaknet.safetensors`` -> ``peaknet.json``)
recording its sha256, size, config and training metadata (recipe, steps, metrics).  Loading
verifies the checksum whenever the sidecar exists.  Training checkpoints (``*.pt``: a dict
with ``model`` and ``config``, read with ``torch.load(weights_only=True)``) load too.

Every problem (missing file, unreadable/truncated file, checksum mismatch, weights that do not
fit the config) raises :class:`~peaknet_gui.errors.ModelError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple

import torch

from ..errors import ModelError
from ..export.atomic import atomic_path, atomic_write
from ..shipped import ENV_WEIGHTS, WEIGHTS_FILENAME, default_weights_path  # noqa: F401 (public here)
from .normalize import NORMALIZATION
from .unet import PeakNet, PeakNetConfig

log = logging.getLogger(__name__)

FORMAT = "peaknet_gui-weights/1"


@dataclass
class WeightsInfo:
    """What is known about a loaded weights file."""

    path: str
    sha256: str
    config: PeakNetConfig
    verified: bool  # the checksum matched the one recorded in the sidecar
    size_bytes: int
    normalization: str = NORMALIZATION
    metadata: dict = field(default_factory=dict)

    @property
    def checksum(self) -> str:
        """The sha256 (hex) of the weights file."""
        return self.sha256

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "verified": self.verified,
            "size_bytes": self.size_bytes,
            "config": self.config.as_dict(),
            "normalization": self.normalization,
            "metadata": self.metadata,
        }


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(path) -> Path:
    """``x/peaknet.safetensors`` -> ``x/peaknet.json``."""
    return Path(path).with_suffix(".json")


def _tensors_for_saving(net: PeakNet) -> dict:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}


def _readable(path: Path) -> None:
    """Atomic writes create 0600 files; weights are meant to be shared (0644 under the umask)."""
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(path, 0o666 & ~umask)
    except OSError:  # pragma: no cover
        pass


def save_weights(net: PeakNet, path, *, metadata: Optional[dict] = None) -> WeightsInfo:
    """Write ``net`` to ``path`` (safetensors) and its sidecar JSON, both atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    cfg = net.config
    meta = {"format": FORMAT, "config": json.dumps(cfg.as_dict()), "normalization": NORMALIZATION}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(_tensors_for_saving(net), str(tmp), metadata=meta)
    _readable(path)
    digest = sha256_file(path)
    size = path.stat().st_size
    side = {
        "format": FORMAT,
        "file": path.name,
        "sha256": digest,
        "size_bytes": size,
        "config": cfg.as_dict(),
        "normalization": NORMALIZATION,
        "num_parameters": net.num_parameters(),
        "metadata": metadata or {},
    }
    with atomic_write(sidecar_path(path)) as fh:
        json.dump(side, fh, indent=2, sort_keys=True)
        fh.write("\n")
    _readable(sidecar_path(path))
    return WeightsInfo(str(path), digest, cfg, True, size, NORMALIZATION, metadata or {})


def _read_sidecar(path: Path) -> Optional[dict]:
    side = sidecar_path(path)
    if not side.exists():
        return None
    try:
        with open(side, encoding="utf-8") as fh:
            d = json.load(fh)
    except (OSError, ValueError) as e:
        raise ModelError(f"{side}: cannot read the weights' checksum file ({e})") from e
    if not isinstance(d, dict) or "sha256" not in d:
        raise ModelError(f"{side}: not a PeakNet weights sidecar (no sha256 entry)")
    return d


def _config_from(raw, where: str) -> PeakNetConfig:
    try:
        d = json.loads(raw) if isinstance(raw, str) else dict(raw)
        return PeakNetConfig.from_dict(d)
    except (TypeError, ValueError) as e:
        raise ModelError(f"{where}: the stored network configuration is invalid ({e})") from e


def _load_safetensors(path: Path) -> Tuple[dict, dict]:
    from safetensors import safe_open

    try:
        tensors = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
    except Exception as e:  # safetensors raises SafetensorError / OSError / ValueError
        raise ModelError(f"{path}: not a readable safetensors weights file (truncated or corrupt?): {e}") from e
    return tensors, meta


def _check_finite(state: dict, path: Path) -> None:
    """ModelError when a weight tensor holds NaN or infinity (a diverged or damaged file)."""
    import torch

    for k, v in state.items():
        if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all()):
            n = int((~torch.isfinite(v)).sum())
            raise ModelError(f"{path}: tensor {k} holds {n} NaN/infinite value(s) of {v.numel()}: the weights are "
                             "damaged or come from a diverged training")


def _load_checkpoint(path: Path) -> Tuple[dict, dict]:
    try:
        ck = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {e}") from e
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise ModelError(f"{path}: not a PeakNet checkpoint (expected a dict with 'model' and 'config')")
    meta = {"config": ck["config"], "normalization": ck.get("normalization", NORMALIZATION)}
    return ck["model"], meta


def load_weights(path=None, map_location="cpu", *, verify: bool = True) -> Tuple[PeakNet, WeightsInfo]:
    """Build the network a weights file describes and load it (eval mode, on ``map_location``).

    ``path`` None -> :func:`default_weights_path`.  The checksum recorded in the sidecar JSON
    is verified when ``verify`` (a mismatch raises :class:`ModelError`); without a sidecar the
    file loads with a warning.
    """
    path = Path(path) if path is not None else default_weights_path()
    if not path.exists():
        hint = " (the shipped weights are missing from this installation)" if path.name == WEIGHTS_FILENAME else ""
        raise ModelError(f"{path}: weights file not found{hint}")
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, expected a weights file (*.safetensors or *.pt)")
    try:
        digest = sha256_file(path)
        size = path.stat().st_size
    except OSError as e:
        raise ModelError(f"{path}: cannot read the weights file ({e.strerror or e})") from e
    side = _read_sidecar(path)
    verified = False
    if side is not None and verify:
        if side["sha256"] != digest:
            raise ModelError(
                f"{path}: checksum mismatch -- the file is corrupt or was replaced "
                f"(sha256 {digest[:16]}..., {sidecar_path(path).name} records {str(side['sha256'])[:16]}...)"
            )
        verified = True
    elif side is None:
        log.warning("%s: no checksum sidecar %s; integrity not verified", path, sidecar_path(path).name)

    if path.suffix in (".pt", ".pth", ".ckpt"):
        state, meta = _load_checkpoint(path)
    else:
        state, meta = _load_safetensors(path)
    raw_cfg = meta.get("config") or (side or {}).get("config")
    if raw_cfg is None:
        raise ModelError(f"{path}: the weights carry no network configuration (not saved by peaknet_gui?)")
    cfg = _config_from(raw_cfg, str(path))
    norm = meta.get("normalization", NORMALIZATION)
    if norm != NORMALIZATION:
        raise ModelError(
            f"{path}: weights were trained with input normalisation {norm!r}, this version uses {NORMALIZATION!r}"
        )
    _check_finite(state, path)
    net = PeakNet(cfg)
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatch: torch lists every tensor; the first one is enough
        lines = [ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln]
        first = lines[0] if lines else " ".join(str(e).split())[:200]
        more = f" (and {len(lines) - 1} more tensors)" if len(lines) > 1 else ""
        raise ModelError(f"{path}: weights do not fit the stored network configuration: {first}{more}") from e
    if missing or unexpected:
        raise ModelError(
            f"{path}: weights do not fit the stored network configuration "
            f"(missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]})"
        )
    net.eval()
    try:
        net.to(map_location)
    except (RuntimeError, AssertionError) as e:
        raise ModelError(f"{path}: cannot move the network to {map_location!r}: {e}") from e
    info = WeightsInfo(str(path), digest, cfg, verified, size, norm, dict((side or {}).get("metadata", {})))
    return net, info
