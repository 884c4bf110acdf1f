"""Fine-tuning on curated frames (Qt-free): the job the window's Fine-tune button starts.

:class:`FineTuneJob` runs, in its own thread, one child process at a time (never in the caller's
thread; each is niced and in its own process group so Cancel stops it and its children):

1. the curation file's frames split into ``OUT/curated_train.cxi`` and ``OUT/curated_heldout.cxi``
   (:func:`~.store.write_subset`; the split is stored in the curation file);
2. replay frames so the model does not forget: the labelled runs given, else a small simulated
   run made once with ``peaknet simulate`` in a cache folder (:func:`replay_cache_path`);
3. ``peaknet train --init <current weights> --data curated_train.cxi <replay...> --steps N
   --out OUT/train`` (:func:`train_argv`), whose ``train_log.jsonl`` is read as it grows
   (:class:`TrainLog`: progress and the loss curve);
4. the current weights' operating point copied into the new sidecar (the same peak cut);
5. ``python -m peaknet_gui.curation.compare``: peak precision / recall / F1 of the old and the
   new weights on the held-out curated frames (``OUT/figures.json``).

Events reach ``on_event(kind, payload)`` from the job's thread: ``stage`` {text},
``progress`` {step, steps}, ``loss`` {step, loss}, ``done`` {weights, figures, text, out},
``failed`` {title, text: the error's last lines}, ``cancelled`` {}.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

from ..errors import InputError, PeakNetError
from .store import read_index, write_subset

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass
class FineTuneSettings:
    curation: str  # the curation file
    out: str  # a new folder for this fine-tune's files
    init: Optional[str] = None  # the weights to start from (None: the shipped ones)
    replay: List[str] = field(default_factory=list)  # labelled runs replayed beside the curated frames
    replay_cache: Optional[str] = None  # where a simulated replay run is made when ``replay`` is empty
    replay_frames: int = 8
    replay_crop: int = 256
    steps: int = 200
    crop: int = 128
    batch_size: int = 4
    lr: float = 3e-4
    warmup: int = 10
    pool_size: int = 6
    device: str = "auto"
    threads: int = 2
    seed: int = 0
    nice: int = 10
    python: str = sys.executable

    def init_weights(self) -> str:
        if self.init:
            return str(self.init)
        from ..model.weights import default_weights_path

        return str(default_weights_path())


def default_out_dir(curation) -> Path:
    """``<curation file's folder>/<stem>.finetune/<date-time>`` -- a new folder per fine-tune."""
    p = Path(curation)
    stem = p.name[: -len(".curation.cxi")] if p.name.endswith(".curation.cxi") else p.stem
    return p.parent / f"{stem}.finetune" / time.strftime("%Y%m%d-%H%M%S")


def default_replay_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "peaknet" / "replay"


def replay_cache_path(s: FineTuneSettings) -> Path:
    folder = Path(s.replay_cache) if s.replay_cache else default_replay_cache()
    return folder / f"replay_{s.replay_frames}f_{s.replay_crop}px_seed{s.seed + 7001}.cxi"


def simulate_argv(s: FineTuneSettings, out: Path) -> List[str]:
    return [s.python, "-m", "peaknet_gui.cli.main", "simulate", "--frames", str(s.replay_frames), "--out", str(out),
            "--seed", str(s.seed + 7001), "--crop", f"{s.replay_crop}x{s.replay_crop}", "--no-progress"]


def train_argv(s: FineTuneSettings, data: List[str], out: Path) -> List[str]:
    val_every = max(1, s.steps // 100)
    return [s.python, "-m", "peaknet_gui.cli.main", "train", "--init", s.init_weights(), "--data", *data,
            "--out", str(out), "--steps", str(s.steps), "--crop", str(s.crop), "--batch-size", str(s.batch_size),
            "--lr", str(s.lr), "--warmup", str(s.warmup), "--val-fraction", "0", "--val-every", str(val_every),
            "--ckpt-every", str(max(s.steps, 1)), "--pool-size", str(s.pool_size), "--device", s.device,
            "--threads", str(s.threads), "--seed", str(s.seed), "--no-progress"]


def compare_argv(s: FineTuneSettings, after: str, heldout: str, out: Path) -> List[str]:
    device = "cpu" if s.device == "auto" else s.device
    return [s.python, "-m", "peaknet_gui.curation.compare", "--before", s.init_weights(), "--after", after,
            "--data", heldout, "--out", str(out), "--device", device, "--threads", str(s.threads)]


class TrainLog:
    """Reads ``train_log.jsonl`` as ``peaknet train`` appends to it: :meth:`poll` gives the
    records of the complete lines written since the last call."""

    def __init__(self, path):
        self.path = Path(path)
        self._pos = 0

    def poll(self) -> List[dict]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._pos)
                chunk = fh.read()
        except OSError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self._pos += end + 1
        out = []
        for line in chunk[: end + 1].splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


def tail(path, n: int = 12) -> str:
    """The last ``n`` non-empty lines of a text file ('' when unreadable)."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join([ln for ln in lines if ln.strip()][-n:])


def carry_operating_point(init: str, weights: str) -> None:
    """Give the new weights the operating point (minimum confidence and pixel SNR) of ``init``."""
    from ..model.operating_point import OperatingPoint, write_operating_point
    from ..model.weights import load_weights

    _, info = load_weights(init, verify=False)
    op = OperatingPoint.from_metadata(info.metadata)
    op.objective = f"copied from {Path(init).name} by the fine-tune"
    write_operating_point(weights, op)


class StepFailed(Exception):
    def __init__(self, title: str, text: str):
        super().__init__(text)
        self.title, self.text = title, text


class Cancelled(Exception):
    pass


class FineTuneJob:
    """See the module docstring.  :meth:`start` returns at once; :meth:`cancel` too."""

    def __init__(self, settings: FineTuneSettings, on_event: Callable[[str, dict], None]):
        self.s = settings
        self.on_event = on_event
        self.out = Path(settings.out)
        self._cancel = threading.Event()
        self._proc: Optional[subprocess.Popen] = None
        self._thread = threading.Thread(target=self._main, name="peaknet-finetune", daemon=True)
        self.result: Optional[dict] = None

    def start(self) -> "FineTuneJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Stop: the running child gets SIGTERM (SIGKILL 5 s later) from the job's thread."""
        self._cancel.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: Optional[float] = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def pid(self) -> Optional[int]:
        p = self._proc
        return None if p is None else p.pid

    # --- the job's thread -------------------------------------------------------------------------
    def _emit(self, kind: str, **payload) -> None:
        try:
            self.on_event(kind, payload)
        except Exception:  # a closed window must not kill the job's clean-up
            pass

    def _main(self) -> None:
        try:
            self.result = self._steps()
            self._emit("done", **self.result)
        except Cancelled:
            self._emit("cancelled")
        except StepFailed as e:
            self._emit("failed", title=e.title, text=e.text)
        except PeakNetError as e:
            self._emit("failed", title="Fine-tune", text=str(e))
        except Exception as e:  # anything else is still reported, never lost
            self._emit("failed", title="Fine-tune", text=f"{type(e).__name__}: {e}")

    def _steps(self) -> dict:
        s = self.s
        self.out.mkdir(parents=True, exist_ok=True)
        self._emit("stage", text="Preparing the curated frames")
        idx = read_index(s.curation)
        if not idx.train:
            raise InputError(f"{s.curation}: no curated frame to train on (save at least two frames)")
        if not idx.held_out:
            raise InputError(f"{s.curation}: no held-out curated frame for the before/after figures "
                             "(save at least two frames)")
        train = write_subset(s.curation, idx.train, self.out / "curated_train.cxi")
        heldout = write_subset(s.curation, idx.held_out, self.out / "curated_heldout.cxi")
        replay = [str(p) for p in s.replay]
        if not replay:
            replay = [str(self._replay_run())]
        self._check_cancel()
        self._emit("stage", text=f"Fine-tuning {s.steps} steps on {len(idx.train)} curated frame"
                   f"{'s' * (len(idx.train) != 1)} + replay")
        self._emit("progress", step=0, steps=s.steps)
        train_out = self.out / "train"
        log = TrainLog(train_out / "train_log.jsonl")

        def poll():
            for rec in log.poll():
                step = int(rec.get("step", 0))
                if "loss" in rec:
                    self._emit("loss", step=step, loss=float(rec["loss"]))
                self._emit("progress", step=step, steps=s.steps)

        self._run(train_argv(s, [str(train)] + replay, train_out), self.out / "train.log", "Fine-tune failed", poll)
        weights = train_out / "peaknet.safetensors"
        if not weights.exists():
            raise StepFailed("Fine-tune failed", f"{weights}: peaknet train wrote no weights\n{tail(self.out / 'train.log')}")
        self._emit("progress", step=s.steps, steps=s.steps)
        carry_operating_point(s.init_weights(), str(weights))
        self._check_cancel()
        self._emit("stage", text=f"Scoring the old and new weights on {len(idx.held_out)} held-out frame"
                   f"{'s' * (len(idx.held_out) != 1)}")
        fig_path = self.out / "figures.json"
        self._run(compare_argv(s, str(weights), str(heldout), fig_path), self.out / "compare.log",
                  "Before/after figures failed")
        from .compare import format_figures

        figures = json.loads(fig_path.read_text(encoding="utf-8"))
        return {"weights": str(weights), "figures": figures, "text": format_figures(figures), "out": str(self.out),
                "before": s.init_weights()}

    def _replay_run(self) -> Path:
        path = replay_cache_path(self.s)
        if path.exists():
            return path
        self._emit("stage", text=f"Simulating {self.s.replay_frames} replay frames (once, cached in {path.parent})")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.cxi")
        self._run(simulate_argv(self.s, tmp), self.out / "simulate.log", "Simulating replay frames failed")
        os.replace(tmp.with_suffix(".geom"), path.with_suffix(".geom"))
        os.replace(tmp, path)
        return path

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def _run(self, argv: List[str], log_path: Path, title: str, poll: Optional[Callable[[], None]] = None) -> None:
        self._check_cancel()
        env = dict(os.environ)
        env["PYTHONPATH"] = PACKAGE_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONUNBUFFERED"] = "1"
        try:
            with open(log_path, "wb") as logf:
                proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=env, start_new_session=True)
        except OSError as e:
            raise StepFailed(title, f"{argv[0]}: cannot start ({e.strerror or e})") from e
        self._proc = proc
        try:
            os.setpriority(os.PRIO_PROCESS, proc.pid, self.s.nice)
        except (OSError, AttributeError):
            pass
        while True:
            try:
                rc = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if poll is not None:
                poll()
            if self._cancel.is_set():
                self._stop(proc)
                raise Cancelled()
        if poll is not None:
            poll()
        if rc != 0:
            raise StepFailed(title, f"exit status {rc}; the last lines of {log_path}:\n{tail(log_path)}")

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
