"""``peaknet train``: train or fine-tune PeakNet on labelled CXI runs.

    peaknet train --data RUN.cxi... --out DIR [--init WEIGHTS] [--steps N] [--device auto|cpu|cuda]
        [--batch-size B] [--crop C] [--lr LR] [--seed S] [--config fast|paper|JSON] [--resume]

Labelled runs hold ``/entry_1/data_1/labels`` beside the frames (0 background, 1 peak,
2 artifact, 255 unlabelled; see :mod:`peaknet_gui.model.dataset`).  Fine-tuning: ``--init``
with the weights to start from (e.g. the shipped ones) and the newly labelled runs, with a
smaller ``--lr`` (e.g. 3e-4) and fewer ``--steps``; ``--grow-refinement C[,H]`` adds a
full-resolution refinement of C channels (H hidden) to the ``--init`` network before training
(:func:`peaknet_gui.model.unet.with_refinement`: it starts at zero, so training starts from the
given weights' predictions).  Writes ``DIR/peaknet.safetensors`` (+ its
``.json`` sidecar), ``DIR/best.safetensors``, ``DIR/ckpt_last.pt`` (``--resume`` continues from
it), ``DIR/train_log.jsonl`` and ``DIR/summary.json``.
"""

from __future__ import annotations

import glob
import json
import logging

log = logging.getLogger(__name__)


def _expand(paths):
    out = []
    for p in paths:
        hits = sorted(glob.glob(p)) if any(c in p for c in "*?[") else [p]
        out.extend(hits or [p])
    return out


def register(sub) -> None:
    p = sub.add_parser("train", help="train or fine-tune the PeakNet model on labelled runs",
                       description=__doc__.split("\n\n")[2].strip() if __doc__ else None)
    p.add_argument("--data", nargs="+", required=True, metavar="RUN.cxi", help="labelled CXI runs (globs allowed)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--init", metavar="WEIGHTS", help="start from these weights (fine-tuning); their shape is kept")
    p.add_argument("--grow-refinement", metavar="C[,H]", default=None,
                   help="with --init: add a full-resolution refinement of C channels (H hidden) to its network")
    p.add_argument("--config", default="fast", help="network shape: fast, paper or a JSON PeakNetConfig (default: fast)")
    p.add_argument("--steps", type=int, default=20000, help="optimiser steps in total (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=256, help="crop size in pixels (default: %(default)s)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=200, help="learning-rate warm-up steps (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default: %(default)s)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="frames held out for validation")
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--pool-size", type=int, default=24, help="frames kept in memory for crops")
    p.add_argument("--pool-refresh", type=float, default=0.25, help="pool frames replaced per step (default: %(default)s)")
    p.add_argument("--alpha", default="1,1,1", help="focal-loss class weights bg,peak,artifact")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--augment", default="{}", help="JSON overrides of AugmentSettings")
    p.add_argument("--resume", action="store_true", help="continue from DIR/ckpt_last.pt")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _train_locked(train, s):
    """``train(s)`` holding the output directory's lock (a second training into the same --out is
    refused), after removing the temporary checkpoint files of killed runs; a failed write (no
    space, I/O error) is one line naming the directory (the previous checkpoint stays: they are
    written atomically)."""
    import errno
    import os

    from ..errors import WriteError
    from ..export.lock import OutputLock
    from ..export.transaction import clean_stale, os_error_message

    out = os.path.abspath(s.out)
    with OutputLock(out):
        clean_stale(out)
        try:
            return train(s)
        except OSError as e:
            raise WriteError(os_error_message(out, e) + "; the last checkpoint written is kept") from e
        except RuntimeError as e:  # torch.save reports a failed write as RuntimeError
            text = " ".join(str(e).split())
            if "No space left" in text or "file write failed" in text or os.strerror(errno.ENOSPC) in text:
                raise WriteError(f"{out}: cannot write a checkpoint (no space left on the device); "
                                 "the last checkpoint written is kept") from e
            raise


def run(args) -> int:
    from ..errors import InputError
    from ..model.train import TrainSettings, train

    try:
        alpha = tuple(float(a) for a in args.alpha.split(","))
        augment = json.loads(args.augment)
    except ValueError as e:
        raise InputError(f"--alpha/--augment: {e}") from e
    if len(alpha) != 3:
        raise InputError("--alpha needs 3 comma-separated weights (background, peak, artifact)")
    grow = None
    if args.grow_refinement:
        try:
            grow = tuple(int(v) for v in args.grow_refinement.split(","))
        except ValueError:
            grow = ()
        if len(grow) not in (1, 2) or min(grow) < 0 or grow[0] < 1 or not args.init:
            raise InputError(f"--grow-refinement: expected C or C,H (C >= 1, H >= 0) with --init, got {args.grow_refinement!r}")
    if args.steps < 1 or args.batch_size < 1 or args.crop < 16:
        raise InputError("--steps and --batch-size must be >= 1 and --crop >= 16")
    s = TrainSettings(
        data=_expand(args.data), out=args.out, init=args.init, config=args.config, steps=args.steps,
        batch_size=args.batch_size, crop=args.crop, lr=args.lr, warmup=args.warmup, seed=args.seed, device=args.device,
        threads=args.threads, val_fraction=args.val_fraction, val_every=args.val_every,
        ckpt_every=args.ckpt_every, pool_size=args.pool_size, pool_refresh=args.pool_refresh, alpha=alpha, amp=not args.no_amp,
        resume=args.resume, progress=not args.no_progress, augment=augment, grow_refinement=grow,
    )
    summary = _train_locked(train, s)
    print(json.dumps({k: v for k, v in summary.items() if k != "validation"}, indent=2))
    if summary.get("validation"):
        v = summary["validation"]
        keys = [k for k in ("iou_background", "iou_peak", "iou_artifact", "peak_precision", "peak_recall",
                            "peak_f1", "peak_f1_snr6", "artifact_iou", "masked_fraction_clean") if k in v]
        print("validation: " + ", ".join(f"{k} {v[k]:.4f}" for k in keys))
    return 0
