"""PeakNet network: shapes, strides, padding helper, replaceable parts."""

import pytest
import torch

from peaknet_gui.model import PeakNet, PeakNetConfig, forward_padded, pad_to_stride
from peaknet_gui.model.unet import with_refinement
from peaknet_gui.model.blocks import AttentionGate, GatedFusion, ResidualDoubleConv

CONFIGS = [
    PeakNetConfig.paper(),
    PeakNetConfig.fast(),
    PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=2, refine_channels=2),
    PeakNetConfig(widths=(4, 8, 8), attention=False),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.stem}{c.stem_factor}-{'-'.join(map(str, c.widths))}")
@pytest.mark.parametrize("batch,h,w", [(1, 37, 53), (3, 64, 48), (2, 17, 130)])
def test_output_shape_any_size(cfg, batch, h, w):
    torch.manual_seed(0)
    net = PeakNet(cfg).eval()
    x = torch.randn(batch, 1, h, w)
    with torch.no_grad():
        y = forward_padded(net, x)
    assert y.shape == (batch, 3, h, w)
    assert torch.isfinite(y).all()


def test_stride_and_direct_forward():
    assert PeakNetConfig.paper().stride == 8
    assert PeakNetConfig.fast().stride == 16
    net = PeakNet(PeakNetConfig(widths=(4, 8, 8), stem="s2d", stem_factor=2)).eval()
    assert net.stride == 8
    with torch.no_grad():
        assert net(torch.zeros(2, 1, 24, 40)).shape == (2, 3, 24, 40)


def test_batch_items_are_independent_in_eval_mode():
    torch.manual_seed(1)
    net = PeakNet(PeakNetConfig.fast()).eval()
    a, b = torch.randn(1, 1, 48, 48), torch.randn(1, 1, 48, 48)
    with torch.no_grad():
        both = net(torch.cat([a, b]))
        assert torch.allclose(both[1:], net(b), atol=1e-5)


def test_pad_to_stride_pads_with_zero_and_crops_back():
    x = torch.ones(1, 1, 10, 13)
    xp, hw = pad_to_stride(x, 8)
    assert xp.shape == (1, 1, 16, 16) and hw == (10, 13)
    assert xp[..., 10:, :].abs().sum() == 0 and xp[..., :, 13:].abs().sum() == 0


def test_blocks():
    rdc = ResidualDoubleConv(3, 5)
    assert rdc(torch.randn(2, 3, 8, 8)).shape == (2, 5, 8, 8)
    gate = AttentionGate(4, 6)
    x, g = torch.randn(1, 4, 8, 8), torch.randn(1, 6, 8, 8)
    alpha = gate.attention(x, g)
    alpha = alpha.detach()
    assert alpha.shape == (1, 1, 8, 8) and float(alpha.min()) > 0 and float(alpha.max()) < 1
    fusion = GatedFusion(4, 6, 4)
    assert fusion(torch.randn(1, 4, 8, 8), torch.randn(1, 6, 4, 4)).shape == (1, 4, 8, 8)


def test_parts_are_replaceable():
    net = PeakNet(PeakNetConfig(widths=(4, 8)))
    net.head.classify = torch.nn.Conv2d(4, 3, 1)
    assert net(torch.zeros(1, 1, 16, 16)).shape == (1, 3, 16, 16)


def test_config_roundtrip_and_validation():
    cfg = PeakNetConfig.fast()
    assert PeakNetConfig.from_dict(cfg.as_dict()) == cfg
    with pytest.raises(ValueError):
        PeakNetConfig(stem="bogus")
    with pytest.raises(ValueError):
        PeakNetConfig.from_dict({"widths": [4], "colour": 1})


def _trained_looking(net):
    """Random weights and batch-norm statistics (a fresh net's BN layers are identities)."""
    torch.manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return net.eval()


def test_grown_refinement_starts_at_the_trained_predictions_and_acts_at_full_resolution():
    net = _trained_looking(PeakNet(PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=4)))
    grown = with_refinement(net, 3, 5).eval()
    assert grown.config.refine_channels == 3 and grown.config.refine_hidden == 5
    assert PeakNetConfig.from_dict(grown.config.as_dict()) == grown.config
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(grown(x), net(x))
        torch.nn.init.normal_(grown.head.refine.weight)
        torch.nn.init.zeros_(grown.head.aux.weight)  # the coarse features change everywhere; look at the image path
        y = torch.zeros(1, 1, 32, 32)
        spike = y.clone()
        spike[0, 0, 13, 18] = 5.0  # one bright pixel inside a 4x4 block
        delta = (grown(spike) - grown(y)) - (net(spike) - net(y))
    # through the image, the refinement's two 3x3 convolutions see a 5x5 neighbourhood of a pixel
    changed = delta.abs().amax(dim=(0, 1)) > 1e-6
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert changed[13, 18] and rows.min() >= 11 and rows.max() <= 15 and cols.min() >= 16 and cols.max() <= 20
    with pytest.raises(ValueError, match="already"):
        with_refinement(grown, 2)
    with pytest.raises(ValueError, match="s2d"):
        with_refinement(PeakNet(PeakNetConfig(widths=(4, 8))), 2)


def test_onnx_export_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    from peaknet_gui.model.export import export_onnx

    torch.manual_seed(0)
    net = PeakNet(PeakNetConfig(widths=(4, 8), stem="s2d", stem_factor=4, refine_channels=2, refine_hidden=3)).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    torch.nn.init.normal_(net.head.refine.weight)  # not the zero it starts at: the refinement counts
    path = export_onnx(net, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(2, 1, 32, 48), (1, 1, 64, 16)]:
        x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(sess.run(None, {"image": x})[0], ref, atol=1e-4)
