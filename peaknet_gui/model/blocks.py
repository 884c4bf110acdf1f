"""Building blocks of PeakNet (Wang et al. 2023): residual double convolutions, attention gates
(Oktay et al. 2018, "Attention U-Net") and the gated feature-fusion block of the decoder.

All blocks are plain ``torch.nn.Module`` s that export to ONNX (opset >= 13) without custom ops.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """``kernel x kernel`` convolution (no bias) + batch norm + ReLU, 'same' padding."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResidualDoubleConv(nn.Module):
    """conv3x3-BN-ReLU twice, plus a residual path (1x1 projection when the width changes).

    ``out = ReLU(BN(conv(ReLU(BN(conv(x))))) + proj(x))`` -- the backbone unit of PeakNet.
    """

    def __init__(self, cin: int, cout: int, mid: int | None = None):
        super().__init__()
        mid = mid or cout
        self.conv1 = nn.Conv2d(cin, mid, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if cin == cout:
            self.proj = nn.Identity()
        else:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.proj(x), inplace=True)


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018).

    The coarse gating signal ``g`` (already brought to the skip's resolution) and the skip
    features ``x`` are projected to ``inter`` channels by 1x1 convolutions, added, passed
    through ReLU, a 1x1 convolution to one channel and a sigmoid: the attention map
    ``alpha`` in (0, 1) that scales the skip features, ``x * alpha``.
    """

    def __init__(self, skip_channels: int, gate_channels: int, inter_channels: int | None = None):
        super().__init__()
        inter = inter_channels or max(1, skip_channels // 2)
        self.theta_x = nn.Conv2d(skip_channels, inter, 1, bias=False)
        self.phi_g = nn.Conv2d(gate_channels, inter, 1, bias=True)
        self.psi = nn.Conv2d(inter, 1, 1, bias=True)

    def attention(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.psi(F.relu(self.theta_x(x) + self.phi_g(g))))

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x, g)


class GatedFusion(nn.Module):
    """Decoder unit: upsample the low-resolution features (x2, nearest), gate the high-resolution skip with
    them (:class:`AttentionGate`), concatenate and fuse with a :class:`ResidualDoubleConv`.
    """

    def __init__(self, skip_channels: int, low_channels: int, out_channels: int, attention: bool = True):
        super().__init__()
        self.gate = AttentionGate(skip_channels, low_channels) if attention else None
        self.fuse = ResidualDoubleConv(skip_channels + low_channels, out_channels)

    def forward(self, skip: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(low, scale_factor=2.0, mode="nearest")
        if self.gate is not None:
            skip = self.gate(skip, up)
        return self.fuse(torch.cat([skip, up], dim=1))
