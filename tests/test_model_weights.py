"""Weights I/O: round trip, checksum verification, clear errors for missing/corrupt files."""

import json

import pytest
import torch

from peaknet_gui.errors import ModelError
from peaknet_gui.model import PeakNet, PeakNetConfig
from peaknet_gui.model.weights import default_weights_path, load_weights, save_weights, sidecar_path


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    net = PeakNet(PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=2)).eval()
    path = tmp_path / "w.safetensors"
    info = save_weights(net, path, metadata={"steps": 3})
    return net, path, info


def test_roundtrip(saved):
    net, path, info = saved
    net2, info2 = load_weights(path)
    assert info2.verified and info2.sha256 == info.sha256
    assert info2.config == net.config and info2.metadata == {"steps": 3}
    assert not net2.training
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(x), net2(x))
    side = json.loads(sidecar_path(path).read_text())
    assert side["sha256"] == info.sha256 and side["config"]["stem"] == "s2d"


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_weights(tmp_path / "nothing.safetensors")


def test_corrupt_file_fails_checksum(saved):
    _, path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_weights(path)


def test_truncated_file_without_sidecar(saved):
    _, path, _ = saved
    sidecar_path(path).unlink()
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelError, match="truncated or corrupt"):
        load_weights(path)


def test_garbage_and_wrong_shapes(tmp_path, saved):
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"this is not a weights file at all")
    with pytest.raises(ModelError, match=str(bad.name)):
        load_weights(bad)
    # weights of one shape with the config of another
    _, path, _ = saved
    from safetensors.torch import save_file

    other = PeakNet(PeakNetConfig(widths=(4, 8, 16)))
    wrong = tmp_path / "wrong.safetensors"
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(wrong),
              metadata={"config": json.dumps(PeakNetConfig(widths=(4, 8)).as_dict())})
    with pytest.raises(ModelError, match="do not fit"):
        load_weights(wrong)


def test_training_checkpoint_loads(tmp_path):
    net = PeakNet(PeakNetConfig(widths=(4, 8)))
    ck = tmp_path / "ck.pt"
    torch.save({"model": net.state_dict(), "config": net.config.as_dict()}, ck)
    net2, info = load_weights(ck)
    assert info.config == net.config and not info.verified


def test_default_path_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PEAKNET_WEIGHTS", str(tmp_path / "x.safetensors"))
    assert default_weights_path() == tmp_path / "x.safetensors"
