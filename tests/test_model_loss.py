"""Focal loss on hand-computed cases."""

import math

import pytest
import torch

from peaknet_gui.model.loss import FocalLoss, focal_loss


def _logits(*probs):
    """(1, 3, 1, n) logits whose softmax is ``probs`` (one triple per pixel)."""
    t = torch.tensor(probs, dtype=torch.float64).log().T  # (3, n)
    return t[None, :, None, :]


def test_single_pixel_by_hand():
    logits = _logits((0.7, 0.2, 0.1))
    # true class 1: p = 0.2 -> -(0.8^2) * log(0.2) * alpha[1]
    expect = 0.64 * -math.log(0.2) * 1.0
    got = focal_loss(logits, torch.tensor([[[1]]]), alpha=(0.25, 1.0, 0.5), gamma=2.0)
    assert float(got) == pytest.approx(expect, rel=1e-6)
    # true class 0 with alpha 0.25: 0.25 * 0.09 * -log(0.7)
    got0 = focal_loss(logits, torch.tensor([[[0]]]), alpha=(0.25, 1.0, 0.5))
    assert float(got0) == pytest.approx(0.25 * 0.09 * -math.log(0.7), rel=1e-6)


def test_gamma_zero_is_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 4, 5))
    fl = focal_loss(logits, target, alpha=None, gamma=0.0)
    ce = torch.nn.functional.cross_entropy(logits, target)
    assert float(fl) == pytest.approx(float(ce), rel=1e-6)


def test_ignore_label_and_mean_over_labelled_pixels():
    logits = _logits((0.7, 0.2, 0.1), (0.1, 0.8, 0.1), (0.3, 0.3, 0.4))
    target = torch.tensor([[[1, 1, 255]]])
    a = 0.64 * -math.log(0.2)
    b = 0.04 * -math.log(0.8)
    got = focal_loss(logits, target, alpha=(1, 1, 1))
    assert float(got) == pytest.approx((a + b) / 2, rel=1e-6)
    assert float(focal_loss(logits, torch.full((1, 1, 3), 255))) == 0.0


def test_confident_correct_pixels_are_down_weighted():
    easy = focal_loss(_logits((0.99, 0.005, 0.005)), torch.tensor([[[0]]]), alpha=None)
    ce = -math.log(0.99)
    assert float(easy) == pytest.approx(1e-4 * ce, rel=1e-4)


def test_module_and_errors():
    m = FocalLoss(alpha=(1, 2, 3))
    logits = torch.zeros(1, 3, 2, 2, requires_grad=True)
    loss = m(logits, torch.tensor([[[0, 1], [2, 255]]]))
    # uniform probabilities 1/3: (2/3)^2 * log 3 * alpha, mean over 3 labelled pixels
    assert loss.item() == pytest.approx((4 / 9) * math.log(3) * (1 + 2 + 3) / 3, rel=1e-6)
    loss.backward()
    assert logits.grad is not None
    with pytest.raises(ValueError):
        focal_loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError):
        focal_loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), alpha=(1, 2))
