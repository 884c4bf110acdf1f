"""Training (and fine-tuning) PeakNet on labelled CXI runs.

``train(TrainSettings(...))`` -- what ``peaknet train`` runs:

* seeds numpy and torch from ``seed`` (a fresh run is deterministic on the CPU);
* splits frames into training and validation by whole frames (:func:`~.dataset.split_frames`);
* draws augmented crops from a pool of prepared frames (:class:`~.dataset.FramePool`);
* focal loss (:mod:`.loss`), AdamW, linear warm-up then cosine decay of the learning rate;
* CPU with ``threads`` threads, or CUDA with mixed precision (bf16 where supported, else fp16
  with a gradient scaler);
* validates every ``val_every`` steps on the held-out frames (pixel IoU per class, peak
  precision/recall/F1 against the truth lists, see :mod:`.evaluate`), logs to
  ``OUT/train_log.jsonl``, writes ``OUT/ckpt_last.pt`` every ``ckpt_every`` steps (atomically;
  ``resume=True`` continues from it) and ``OUT/best.safetensors`` at the best validation score;
* ends with ``OUT/peaknet.safetensors`` + ``OUT/peaknet.json`` (weights, checksum, config,
  training recipe and validation metrics).

Fine-tuning = ``init`` (weights to start from; their config is kept) + new labelled runs,
typically with a lower ``lr`` and fewer ``steps``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import DeviceError, InputError, ModelError
from ..export.atomic import atomic_path, atomic_write
from .augment import AugmentSettings
from .dataset import FramePool, LabelledRun, split_frames, spread_across_runs
from .loss import DEFAULT_ALPHA, focal_loss
from .normalize import NORMALIZATION
from .unet import PeakNet, PeakNetConfig, with_refinement
from .weights import load_weights, save_weights

log = logging.getLogger(__name__)

CKPT = "ckpt_last.pt"


@dataclass
class TrainSettings:
    data: List[str]
    out: str
    init: Optional[str] = None
    config: str = "fast"  # "fast", "paper" or a JSON PeakNetConfig
    steps: int = 20000
    batch_size: int = 8
    crop: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    seed: int = 0
    device: str = "auto"
    threads: int = 2
    val_fraction: float = 0.1
    val_every: int = 500
    max_val_frames: int = 8
    ckpt_every: int = 200
    pool_size: int = 24
    pool_refresh: float = 0.25  # frames replaced per step
    alpha: Sequence[float] = DEFAULT_ALPHA
    gamma: float = 2.0
    amp: bool = True
    resume: bool = False
    progress: bool = True
    augment: dict = field(default_factory=dict)  # AugmentSettings overrides
    grow_refinement: Optional[Tuple[int, ...]] = None  # (channels[, hidden]): refinement added to the init network

    def as_dict(self) -> dict:
        d = asdict(self)
        d["alpha"] = list(self.alpha)
        if self.grow_refinement is not None:
            d["grow_refinement"] = list(self.grow_refinement)
        return d


def resolve_train_device(name: str) -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("--device cuda: CUDA is not available on this machine (torch sees no GPU)")
    if name != "cpu" and not name.startswith("cuda"):
        raise DeviceError(f"unknown device {name!r}: choose auto, cpu or cuda")
    return torch.device(name)


def config_from_name(name: str) -> PeakNetConfig:
    if name == "fast":
        return PeakNetConfig.fast()
    if name == "paper":
        return PeakNetConfig.paper()
    try:
        return PeakNetConfig.from_dict(json.loads(name))
    except (ValueError, TypeError) as e:
        raise InputError(f"--config: expected 'fast', 'paper' or a JSON PeakNetConfig, got {name!r} ({e})") from e


def lr_at(step: int, s: TrainSettings) -> float:
    warm = min(1.0, (step + 1) / max(1, s.warmup))
    frac = min(1.0, step / max(1, s.steps))
    return s.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))


def _rng_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def _save_checkpoint(path: Path, net, opt, scaler, step: int, s: TrainSettings, rng, best: dict) -> None:
    state = {
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "step": step,
        "config": net.config.as_dict(),
        "settings": json.dumps(s.as_dict()),
        "numpy_rng": json.dumps(_rng_state(rng)),
        "torch_rng": torch.get_rng_state(),
        "best": json.dumps(best),
        "normalization": NORMALIZATION,
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def _open_runs(paths: Sequence[str]) -> List[LabelledRun]:
    if not paths:
        raise InputError("no training data: give labelled CXI runs with --data")
    runs = []
    for p in paths:
        runs.append(LabelledRun(p))
    return runs


def _build_network(s: TrainSettings) -> PeakNet:
    if s.init:
        net, info = load_weights(s.init)
        log.info("fine-tuning from %s (%s)", s.init, info.sha256[:12])
        if s.grow_refinement:
            try:
                net = with_refinement(net, *s.grow_refinement)
            except ValueError as e:
                raise InputError(f"{s.init}: {e}") from e
            log.info("added a full-resolution refinement %s", tuple(s.grow_refinement))
        return net
    return PeakNet(config_from_name(s.config))


def _autocast(device: torch.device, enabled: bool):
    """(factory of the autocast context, its dtype): fp16/bf16 on CUDA, nothing on the CPU."""
    if device.type == "cuda" and enabled:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return (lambda: torch.autocast("cuda", dtype=dtype)), dtype
    return (lambda: torch.autocast("cpu", enabled=False)), torch.float32


def train(s: TrainSettings, *, callback=None) -> dict:
    """Train; returns a summary dict (final step, losses, validation metrics, output files)."""
    from .evaluate import validate

    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_train_device(s.device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, s.threads))
    torch.manual_seed(s.seed)
    rng = np.random.default_rng(s.seed)

    runs = _open_runs(s.data)
    train_frames, val_frames = split_frames([len(r) for r in runs], s.val_fraction, s.seed)
    net = _build_network(s)
    start, best = 0, {"score": -1.0}
    ckpt_path = out / CKPT
    ck = None
    if s.resume:
        if not ckpt_path.exists():
            raise ModelError(f"{ckpt_path}: nothing to resume (no checkpoint in {out})")
        try:
            ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ModelError(f"{ckpt_path}: unreadable checkpoint ({e})") from e
        net = PeakNet(PeakNetConfig.from_dict(ck["config"]))
        net.load_state_dict(ck["model"])
        start = int(ck["step"])
        best = json.loads(ck["best"])
        rng.bit_generator.state = json.loads(ck["numpy_rng"])
        torch.set_rng_state(ck["torch_rng"])
        log.info("resuming %s at step %d", ckpt_path, start)
    net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    autocast, amp_dtype = _autocast(device, s.amp)
    scaler = torch.amp.GradScaler("cuda") if (device.type == "cuda" and amp_dtype == torch.float16) else None
    if ck is not None:
        opt.load_state_dict(ck["optimizer"])
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])

    aug = AugmentSettings(**s.augment)
    pool = FramePool(runs, train_frames, s.pool_size, rng, aug)
    val = [(runs[r], i) for r, i in spread_across_runs(val_frames, s.max_val_frames)]

    log_path = out / "train_log.jsonl"
    bar = None
    if s.progress:
        from tqdm import tqdm

        bar = tqdm(total=s.steps, initial=start, unit="step", dynamic_ncols=True, desc="train")
    losses: List[float] = []
    refresh_acc = 0.0
    t_start = time.perf_counter()
    step = start
    last_metrics: dict = {}
    try:
        while step < s.steps:
            net.train()
            xb, yb = pool.sample(s.batch_size, s.crop)
            x = torch.from_numpy(xb).to(device, non_blocking=True)
            y = torch.from_numpy(yb).to(device, non_blocking=True)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, s)
            with autocast():
                logits = net(x)
            loss = focal_loss(logits.float(), y, s.alpha, s.gamma)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            if not torch.isfinite(loss):
                raise ModelError(f"training diverged at step {step} (loss {float(loss)}); lower --lr")
            losses.append(float(loss.detach()))
            step += 1
            refresh_acc += s.pool_refresh
            if refresh_acc >= 1:
                pool.refresh(int(refresh_acc))
                refresh_acc -= int(refresh_acc)
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", lr=f"{lr_at(step, s):.1e}")
            if val and (step % s.val_every == 0 or step == s.steps):
                last_metrics = validate(net, val, device=device)
                score = last_metrics.get("score", -1.0)
                record = {"step": step, "loss": float(np.mean(losses[-s.val_every:])), "lr": lr_at(step, s),
                          "elapsed_s": time.perf_counter() - t_start, **last_metrics}
                with open(log_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record) + "\n")
                log.info("step %d: %s", step, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}))
                if score > best.get("score", -1.0):
                    best = {"score": score, "step": step, **last_metrics}
                    save_weights(net.cpu(), out / "best.safetensors", metadata={"step": step, "validation": last_metrics})
                    net.to(device)
            elif not val and step % s.val_every == 0:
                with open(log_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"step": step, "loss": float(np.mean(losses[-s.val_every:]))}) + "\n")
            if step % s.ckpt_every == 0 or step == s.steps:
                _save_checkpoint(ckpt_path, net, opt, scaler, step, s, rng, best)
            if callback is not None:
                callback(step, float(loss.detach()))
    except KeyboardInterrupt:
        _save_checkpoint(ckpt_path, net, opt, scaler, step, s, rng, best)
        log.warning("interrupted at step %d; checkpoint %s written (resume with --resume)", step, ckpt_path)
        raise
    finally:
        if bar is not None:
            bar.close()
        for r in runs:
            r.close()
    elapsed = time.perf_counter() - t_start
    meta = {
        "steps": step,
        "settings": s.as_dict(),
        "augment": aug.as_dict(),
        "data": [str(Path(p).resolve()) for p in s.data],
        "validation": last_metrics,
        "best": best,
        "steps_per_s": (step - start) / elapsed if elapsed > 0 else None,
        "trained": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    info = save_weights(net.cpu(), out / "peaknet.safetensors", metadata=meta)
    summary = {
        "steps": step,
        "first_loss": losses[0] if losses else None,
        "last_loss": float(np.mean(losses[-20:])) if losses else None,
        "steps_per_s": meta["steps_per_s"],
        "validation": last_metrics,
        "weights": info.path,
        "sha256": info.sha256,
    }
    with atomic_write(out / "summary.json") as fh:
        json.dump(summary, fh, indent=2)
    return summary
