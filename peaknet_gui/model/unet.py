"""PeakNet: a residual attention U-Net for 3-class segmentation (background, Bragg peak, artifact).

Structure (Wang et al. 2023, "PeakNet: an autonomous Bragg peak finder with deep neural
networks"), as three replaceable parts:

* **backbone** (:class:`Backbone`): a stem, then one :class:`~.blocks.ResidualDoubleConv` per
  level with 2x2 max pooling between levels; returns the features of every level.
* **neck** (:class:`Neck`): from the deepest level up, :class:`~.blocks.GatedFusion` blocks
  (attention gate on the skip, concatenation, residual double conv).
* **head** (:class:`Head`): one 1x1 convolution to the class logits; softmax over the classes
  gives the probabilities (applied by the caller: the network returns logits).

Two stems:

* ``"conv"`` -- the paper's: the first residual double conv runs at full resolution.
* ``"s2d"`` -- *space-to-depth*: the frame is rearranged losslessly into ``f x f`` blocks
  (``pixel_unshuffle``; every pixel value is kept, as ``f*f`` channels) so the whole U-Net runs
  at 1/f resolution, and the head's 1x1 convolution emits ``f*f`` logit vectors per position
  that ``pixel_shuffle`` puts back at full resolution (sub-pixel convolution, Shi et al. 2016).
  An optional full-resolution refinement (``refine_channels > 0``) adds a 3x3 convolution over
  the raw input and a few upsampled feature channels to the logits; with ``refine_hidden > 0``
  it is two 3x3 convolutions with a ReLU between (a small full-resolution path that can compare
  a pixel with its neighbours: one-pixel spots, whose position inside the ``f x f`` block the
  folded U-Net must otherwise encode in its few channels).  This is what makes the
  network fast enough for 1920x1920 frames on two CPU cores (see ``benchmarks/bench_model.py``).

Inputs are normalised frames (:mod:`.normalize`) of shape (B, 1, H, W) with H, W multiples of
:attr:`PeakNet.stride`; :func:`forward_padded` runs any size by zero padding and cropping back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import List, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from .blocks import GatedFusion, ResidualDoubleConv

NUM_CLASSES = 3
CLASS_NAMES = ("background", "peak", "artifact")


@dataclass
class PeakNetConfig:
    """Shape of a PeakNet.  Stored with the weights (``as_dict`` / ``from_dict``).

    ``widths``: channels of the backbone levels, one entry per level (depth = len(widths));
    ``stem``: ``"conv"`` (full resolution, the paper's) or ``"s2d"`` (space-to-depth by
    ``stem_factor``); ``attention``: attention gates in the neck; ``refine_channels``: with the
    s2d stem, >0 adds a full-resolution 3x3 refinement of the logits; ``refine_hidden``: >0
    makes that refinement two 3x3 convolutions with this many channels between them.
    """

    widths: Tuple[int, ...] = (8, 16, 32, 64)
    stem: str = "conv"
    stem_factor: int = 1
    attention: bool = True
    refine_channels: int = 0
    refine_hidden: int = 0
    in_channels: int = 1
    num_classes: int = NUM_CLASSES
    name: str = "custom"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.widths = tuple(int(w) for w in self.widths)
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"PeakNetConfig.widths must be positive, got {self.widths}")
        if self.stem not in ("conv", "s2d"):
            raise ValueError(f"PeakNetConfig.stem must be 'conv' or 's2d', got {self.stem!r}")
        if self.stem == "conv":
            self.stem_factor = 1
        if self.stem_factor < 1:
            raise ValueError("PeakNetConfig.stem_factor must be >= 1")
        if self.refine_channels < 0 or self.refine_hidden < 0:
            raise ValueError("PeakNetConfig.refine_channels and refine_hidden must be >= 0")

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def stride(self) -> int:
        return self.stem_factor * 2 ** (self.depth - 1)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PeakNetConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown PeakNetConfig fields {sorted(unknown)}")
        return cls(**d)

    # ---- the two shipped shapes --------------------------------------------------------
    @classmethod
    def paper(cls) -> "PeakNetConfig":
        """Paper-shaped: full-resolution stem, 4 levels of 8-16-32-64 channels."""
        return cls(widths=(8, 16, 32, 64), stem="conv", name="paper")

    @classmethod
    def fast(cls) -> "PeakNetConfig":
        """CPU-fast: space-to-depth stem by 4, then 3 levels at 1/4, 1/8, 1/16 resolution."""
        return cls(widths=(24, 32, 48), stem="s2d", stem_factor=4, refine_channels=0, name="fast")


class Backbone(nn.Module):
    """Stem + residual double-conv levels with max pooling; returns every level's features."""

    def __init__(self, cfg: PeakNetConfig):
        super().__init__()
        f = cfg.stem_factor
        self.unshuffle = nn.PixelUnshuffle(f) if f > 1 else nn.Identity()
        self.stem = ResidualDoubleConv(cfg.in_channels * f * f, cfg.widths[0])
        self.levels = nn.ModuleList(
            ResidualDoubleConv(cfg.widths[i - 1], cfg.widths[i]) for i in range(1, cfg.depth)
        )
        self.channels = list(cfg.widths)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats = [self.stem(self.unshuffle(x))]
        for level in self.levels:
            feats.append(level(F.max_pool2d(feats[-1], 2)))
        return feats


class Neck(nn.Module):
    """Gated fusion from the deepest level up to the first; returns the finest fused features."""

    def __init__(self, channels: Sequence[int], attention: bool = True):
        super().__init__()
        channels = list(channels)
        self.fusions = nn.ModuleList()
        low = channels[-1]
        for c in reversed(channels[:-1]):
            self.fusions.append(GatedFusion(c, low, c, attention=attention))
            low = c
        self.out_channels = channels[0]

    def forward(self, feats: List[torch.Tensor]) -> torch.Tensor:
        y = feats[-1]
        for fusion, skip in zip(self.fusions, reversed(feats[:-1])):
            y = fusion(skip, y)
        return y


class Head(nn.Module):
    """1x1 convolution to the class logits (``f*f`` sets of them + pixel shuffle for the s2d
    stem); optional full-resolution refinement over the input and upsampled features: one 3x3
    convolution, or with ``refine_hidden`` two of them with a ReLU between.  The refinement's
    last convolution starts at zero, so adding it to trained weights changes nothing until it
    is trained (:func:`with_refinement`)."""

    def __init__(self, in_channels: int, num_classes: int, factor: int = 1, refine_channels: int = 0,
                 in_image_channels: int = 1, refine_hidden: int = 0):
        super().__init__()
        self.factor = factor
        self.classify = nn.Conv2d(in_channels, num_classes * factor * factor, 1)
        self.shuffle = nn.PixelShuffle(factor) if factor > 1 else nn.Identity()
        self.refine_channels = refine_channels if factor > 1 else 0
        self.refine_hidden = refine_hidden if self.refine_channels else 0
        if self.refine_channels:
            self.aux = nn.Conv2d(in_channels, refine_channels * factor * factor, 1)
            cin = refine_channels + in_image_channels
            if self.refine_hidden:
                self.refine_in = nn.Conv2d(cin, self.refine_hidden, 3, padding=1)
                cin = self.refine_hidden
            self.refine = nn.Conv2d(cin, num_classes, 3, padding=1)
            nn.init.zeros_(self.refine.weight)
            nn.init.zeros_(self.refine.bias)

    def forward(self, y: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        logits = self.shuffle(self.classify(y))
        if self.refine_channels:
            aux = F.relu(self.shuffle(self.aux(y)))
            z = torch.cat([aux, image], dim=1)
            if self.refine_hidden:
                z = F.relu(self.refine_in(z))
            logits = logits + self.refine(z)
        return logits


class PeakNet(nn.Module):
    """Residual attention U-Net: (B, 1, H, W) normalised frames -> (B, 3, H, W) logits.

    H and W must be multiples of :attr:`stride`; use :func:`forward_padded` otherwise.
    """

    def __init__(self, config: PeakNetConfig | None = None):
        super().__init__()
        self.config = config or PeakNetConfig()
        cfg = self.config
        self.backbone = Backbone(cfg)
        self.neck = Neck(self.backbone.channels, attention=cfg.attention)
        self.head = Head(self.neck.out_channels, cfg.num_classes, cfg.stem_factor, cfg.refine_channels, cfg.in_channels,
                         cfg.refine_hidden)

    @property
    def stride(self) -> int:
        return self.config.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.backbone(x)), x)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def with_refinement(net: PeakNet, refine_channels: int, refine_hidden: int = 0) -> PeakNet:
    """A copy of a trained s2d ``net`` with a full-resolution refinement added (:class:`Head`).

    Every trained tensor is kept; the refinement's last convolution is zero, so the copy's
    logits equal ``net``'s until it is trained (fine-tuning a grown network starts where the
    trained one stands).  ``net`` must have the s2d stem and no refinement yet.
    """
    cfg = net.config
    if cfg.stem != "s2d" or cfg.stem_factor < 2:
        raise ValueError("a full-resolution refinement needs the s2d stem (stem_factor >= 2)")
    if cfg.refine_channels:
        raise ValueError(f"the network already has a refinement ({cfg.refine_channels} channels)")
    if refine_channels < 1:
        raise ValueError("refine_channels must be >= 1")
    grown_cfg = PeakNetConfig.from_dict({**cfg.as_dict(), "refine_channels": int(refine_channels),
                                         "refine_hidden": int(refine_hidden)})
    grown = PeakNet(grown_cfg)
    missing, unexpected = grown.load_state_dict(net.state_dict(), strict=False)
    if unexpected or any(not k.startswith(("head.aux.", "head.refine")) for k in missing):
        raise ValueError(f"cannot grow the network: missing {missing}, unexpected {unexpected}")
    return grown.train(net.training)


def pad_to_stride(x: torch.Tensor, stride: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Zero-pad the last two dimensions of ``x`` up to multiples of ``stride`` (bottom/right).

    Returns the padded tensor and the original (H, W).  Zero is the normalised value of a
    bad pixel, so padding looks like masked detector area to the network.
    """
    h, w = x.shape[-2:]
    ph = (-h) % stride
    pw = (-w) % stride
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return x, (h, w)


def forward_padded(net: nn.Module, x: torch.Tensor, stride: int | None = None) -> torch.Tensor:
    """Logits of ``net`` for a (B, C, H, W) batch of any H, W: pad to the stride, run, crop back."""
    stride = stride or net.stride
    xp, (h, w) = pad_to_stride(x, stride)
    return net(xp)[..., :h, :w]
