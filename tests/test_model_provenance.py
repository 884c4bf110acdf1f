"""Held-out runs must not repeat training frames: frame seeds followed through the weights' lineage."""

import json
from pathlib import Path

import pytest

from peaknet_gui.cli.main import main as cli
from peaknet_gui.model import PeakNet, PeakNetConfig
from peaknet_gui.model.provenance import frame_seeds, shared_frames, training_runs
from peaknet_gui.model.weights import save_weights


def _simulate(path, seed, detector):
    assert cli(["simulate", "--frames", "3", "--out", str(path), "--seed", str(seed), "--detector", detector,
                "--crop", "96x96", "--no-progress"]) == 0
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("prov")
    return {
        "train": _simulate(d / "train_eiger_s41.cxi", 41, "eiger-4m"),
        "same_seed_other_detector": _simulate(d / "eval_pilatus_s41.cxi", 41, "pilatus-6m"),
        "new_seed": _simulate(d / "eval_pilatus_s42.cxi", 42, "pilatus-6m"),
        "dir": d,
    }


def test_a_run_seed_repeats_its_frames_on_any_detector(runs):
    a, b, c = (frame_seeds(runs[k]) for k in ("train", "same_seed_other_detector", "new_seed"))
    assert len(a) == 3 and a == b and not set(a) & set(c)
    found = shared_frames([runs["same_seed_other_detector"], runs["new_seed"]], [runs["train"]])
    assert found == {str(runs["same_seed_other_detector"]): {"frames": 3, "shared": 3, "with": ["train_eiger_s41.cxi"]}}
    assert shared_frames([runs["new_seed"]], [runs["dir"] / "missing.cxi"]) == {}


def test_lineage_is_followed_through_init_weights(runs):
    d = runs["dir"]
    net = PeakNet(PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=2))
    parent = d / "parent.safetensors"
    save_weights(net, parent, metadata={"data": [str(runs["train"])], "settings": {"init": None}})
    child = d / "child.safetensors"
    info = save_weights(net, child, metadata={"data": [str(runs["new_seed"])], "settings": {"init": str(parent)}})
    assert training_runs(info.metadata) == [runs["new_seed"], runs["train"]]
    # a missing parent or a cycle ends the walk
    assert training_runs({"data": ["a.cxi"], "settings": {"init": str(d / "gone.safetensors")}}) == [Path("a.cxi")]
    save_weights(net, parent, metadata={"data": [str(runs["train"])], "settings": {"init": str(child)}})
    assert training_runs(info.metadata) == [runs["new_seed"], runs["train"]]


def test_evaluate_warns_about_runs_that_repeat_training_frames(runs, capsys, caplog):
    d = runs["dir"]
    net = PeakNet(PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=2))
    w = d / "w.safetensors"
    save_weights(net, w, metadata={"data": [str(runs["train"])], "settings": {}})
    with caplog.at_level("WARNING"):
        assert cli(["evaluate", "--weights", str(w), "--json", "--data", str(runs["same_seed_other_detector"]),
                    str(runs["new_seed"])]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["shared_with_training"]) == [str(runs["same_seed_other_detector"])]
    assert "eval_pilatus_s41.cxi: 3 of its 3 frames repeat training frames of train_eiger_s41.cxi" in caplog.text
    assert "eval_pilatus_s42" not in caplog.text
    assert cli(["evaluate", "--weights", str(w), "--json", "--data", str(runs["new_seed"])]) == 0
    assert "shared_with_training" not in json.loads(capsys.readouterr().out)
