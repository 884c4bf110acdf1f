"""Training: loss goes down on a tiny run, checkpoints, resume, determinism, fine-tuning, CLI."""

import json

import numpy as np
import pytest
import torch

from _model_data import make_labelled_run
from peaknet_gui.cli.main import main as cli
from peaknet_gui.errors import InputError, ModelError
from peaknet_gui.model.train import TrainSettings, train
from peaknet_gui.model.weights import load_weights

TINY = '{"widths": [8, 16], "stem": "s2d", "stem_factor": 2, "name": "tiny"}'


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return str(make_labelled_run(tmp_path_factory.mktemp("runs") / "tiny.cxi", n_frames=5, shape=(96, 96), n_peaks=10))


def _settings(run, out, **kw):
    base = dict(data=[run], out=str(out), config=TINY, steps=30, batch_size=4, crop=64, warmup=5, lr=3e-3,
                val_every=15, ckpt_every=10, pool_size=4, progress=False, threads=1)
    base.update(kw)
    return TrainSettings(**base)


def test_loss_goes_down_and_outputs_are_written(tiny_run, tmp_path):
    losses = []
    summary = train(_settings(tiny_run, tmp_path, steps=60), callback=lambda s, l: losses.append(l))
    assert len(losses) == 60
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
    for name in ("peaknet.safetensors", "peaknet.json", "ckpt_last.pt", "train_log.jsonl", "summary.json", "best.safetensors"):
        assert (tmp_path / name).exists(), name
    net, info = load_weights(tmp_path / "peaknet.safetensors")
    assert info.verified and info.metadata["steps"] == 60
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [15, 30, 45, 60]
    assert "iou_peak" in log[-1] and "peak_f1" in log[-1]
    assert summary["validation"]["frames"] == 1


def test_deterministic_with_seed(tiny_run, tmp_path):
    a, b = [], []
    train(_settings(tiny_run, tmp_path / "a", steps=8), callback=lambda s, l: a.append(l))
    train(_settings(tiny_run, tmp_path / "b", steps=8), callback=lambda s, l: b.append(l))
    assert a == b


def test_resume_continues_from_checkpoint(tiny_run, tmp_path):
    train(_settings(tiny_run, tmp_path, steps=10))
    steps = []
    summary = train(_settings(tiny_run, tmp_path, steps=20, resume=True), callback=lambda s, l: steps.append(s))
    assert steps[0] == 11 and steps[-1] == 20 and summary["steps"] == 20
    with pytest.raises(ModelError, match="nothing to resume"):
        train(_settings(tiny_run, tmp_path / "empty", resume=True))


def test_fine_tuning_keeps_the_shape(tiny_run, tmp_path):
    train(_settings(tiny_run, tmp_path / "base", steps=5))
    summary = train(_settings(tiny_run, tmp_path / "ft", steps=5, init=str(tmp_path / "base" / "peaknet.safetensors"), config="paper"))
    _, info = load_weights(summary["weights"])
    assert info.config.name == "tiny"


def test_fine_tuning_can_grow_a_full_resolution_refinement(tiny_run, tmp_path):
    train(_settings(tiny_run, tmp_path / "base", steps=5))
    base = str(tmp_path / "base" / "peaknet.safetensors")
    summary = train(_settings(tiny_run, tmp_path / "ft", steps=6, init=base, grow_refinement=(2, 3)))
    net, info = load_weights(summary["weights"])
    assert (info.config.refine_channels, info.config.refine_hidden, info.config.name) == (2, 3, "tiny")
    assert float(net.head.refine.weight.detach().abs().sum()) > 0  # trained away from its zero start
    assert info.metadata["settings"]["grow_refinement"] == [2, 3]
    with pytest.raises(InputError, match="already has a refinement"):
        train(_settings(tiny_run, tmp_path / "again", steps=2, init=summary["weights"], grow_refinement=(2,)))
    assert cli(["train", "--data", tiny_run, "--out", str(tmp_path / "x"), "--grow-refinement", "2"]) == 2  # no --init


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="not found"):
        train(_settings(str(tmp_path / "missing.cxi"), tmp_path))
    import h5py

    unlabelled = tmp_path / "u.cxi"
    with h5py.File(unlabelled, "w") as f:
        f["/entry_1/data_1/data"] = np.zeros((2, 32, 32), np.float32)
    with pytest.raises(InputError, match="not a labelled run"):
        train(_settings(str(unlabelled), tmp_path))


def test_cli_train(tiny_run, tmp_path, capsys):
    rc = cli(["train", "--data", tiny_run, "--out", str(tmp_path), "--steps", "4", "--batch-size", "2", "--crop", "32",
              "--config", TINY, "--val-every", "4", "--no-progress", "--seed", "3", "--threads", "1"])
    assert rc == 0
    out = capsys.readouterr().out
    assert '"steps": 4' in out and "validation:" in out
    assert cli(["train", "--data", str(tmp_path / "nope.cxi"), "--out", str(tmp_path)]) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_mixed_precision(tiny_run, tmp_path):  # pragma: no cover - GPU machines only
    summary = train(_settings(tiny_run, tmp_path, steps=10, device="cuda"))
    assert summary["steps"] == 10
