"""Losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from artid.training.heads import CosineClassifier
from artid.training.losses import (
    arcface_logits,
    classification_loss,
    contrastive_loss,
    cosine_logits,
    inverse_frequency_weights,
    scaled_logits,
    simsiam_loss,
)


def test_contrastive_loss_hand_computed():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[3.0, 4.0], [0.6, 0.8], [1.2, 1.6], [0.0, 1.0]])  # distances 5, 1, 2, 1
    y = torch.tensor([1, 0, 0, 1])
    # positives: d^2 = 25 and 1; negatives (margin 1.8): (1.8-1)^2 = 0.64 and max(0, 1.8-2)^2 = 0
    expected = 0.5 * (25 + 0.64 + 0 + 1) / 4
    assert contrastive_loss(a, b, y, margin=1.8).item() == pytest.approx(expected, rel=1e-6)


def test_contrastive_loss_gradient_pulls_positives_and_pushes_negatives():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    b = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    contrastive_loss(a, b, torch.tensor([1, 0])).backward()
    g = a.grad
    assert g[0, 1] < 0 < g[0, 0]      # positive: descent moves a towards b
    assert g[1, 0] < 0 < g[1, 1]      # negative inside the margin: descent moves a away from b
    assert torch.isfinite(g).all()
    z = torch.zeros(1, 2, requires_grad=True)  # identical pair: finite gradient at d = 0
    contrastive_loss(z, torch.zeros(1, 2), torch.tensor([0])).backward()
    assert torch.isfinite(z.grad).all()


def test_cosine_logits_and_scaled_ce():
    x = torch.tensor([[2.0, 0.0]])
    w = torch.tensor([[1.0, 0.0], [0.0, 3.0], [-1.0, 1.0]])
    cos = cosine_logits(x, w)
    assert torch.allclose(cos, torch.tensor([[1.0, 0.0, -math.sqrt(0.5)]]), atol=1e-6)
    logits = scaled_logits(cos, 30.0)
    loss = classification_loss(logits, torch.tensor([1]))
    z = torch.tensor([30.0, 0.0, -30 * math.sqrt(0.5)])
    assert loss.item() == pytest.approx(-(z[1] - torch.logsumexp(z, 0)).item(), rel=1e-5)
    head = CosineClassifier(2, 3)
    with torch.no_grad():
        head.weight.copy_(w)
    assert torch.allclose(head(x), cos)


def test_arcface_logits_hand_computed():
    cos = torch.tensor([[0.5, 0.2, -0.1], [0.0, 0.9, 0.3]])
    labels = torch.tensor([0, 1])
    out = arcface_logits(cos, labels, scale=64.0, margin=0.5)
    # target: cos(acos(s) + m); others unchanged; all times 64
    t0 = math.cos(math.acos(0.5) + 0.5)
    t1 = math.cos(math.acos(0.9) + 0.5)
    expected = 64 * torch.tensor([[t0, 0.2, -0.1], [0.0, t1, 0.3]])
    assert torch.allclose(out, expected, atol=1e-4)
    assert not torch.equal(cos, out / 64)  # cos itself is untouched (no in-place change)
    assert torch.equal(cos, torch.tensor([[0.5, 0.2, -0.1], [0.0, 0.9, 0.3]]))


def test_arcface_gradient_finite_at_perfect_match():
    cos = torch.tensor([[1.0, 0.0]], requires_grad=True)
    classification_loss(arcface_logits(cos, torch.tensor([0])), torch.tensor([0])).backward()
    assert torch.isfinite(cos.grad).all()


def test_simsiam_loss_values_and_stop_gradient():
    p = torch.tensor([[1.0, 0.0]], requires_grad=True)
    z = torch.tensor([[0.0, 2.0]], requires_grad=True)
    loss = simsiam_loss(p, p, z, z)       # cos(p, z) = 0
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    loss.backward()
    assert z.grad is None or torch.count_nonzero(z.grad) == 0   # stop-gradient on z
    assert p.grad is not None and torch.count_nonzero(p.grad) > 0
    same = torch.tensor([[3.0, 4.0]])
    assert simsiam_loss(same, same, same, same).item() == pytest.approx(-1.0, abs=1e-6)


def test_inverse_frequency_weights():
    labels = torch.tensor([0, 0, 0, 1, 2, 2])
    w = inverse_frequency_weights(labels, 4)
    # raw 1/3, 1, 1/2, 0 ; sum over images = 3 -> scale 6/3 = 2
    assert torch.allclose(w, torch.tensor([2 / 3, 2.0, 1.0, 0.0]))
    assert w[labels].mean().item() == pytest.approx(1.0)
    logits = torch.zeros(2, 4)
    logits[0, 0] = 5.0
    loss = classification_loss(logits, torch.tensor([0, 1]), w)
    l0 = -torch.log_softmax(logits[0], 0)[0]
    l1 = -torch.log_softmax(logits[1], 0)[1]
    assert loss.item() == pytest.approx(((2 / 3) * l0 + 2.0 * l1).item() / (2 / 3 + 2.0), rel=1e-6)
