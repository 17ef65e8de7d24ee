"""GeM pooling: closed forms at p = 1 and large p, learnable p."""

import torch

from artid.models.gem import GeM, gem


def _features(seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 5, 4, 3, generator=torch.Generator().manual_seed(seed)) + 0.01


def test_p1_is_average_pooling():
    x = _features()
    assert torch.allclose(gem(x, 1.0), x.mean(dim=(2, 3)), atol=1e-6)


def test_large_p_approaches_max_pooling():
    x = _features(1)
    mx = x.amax(dim=(2, 3))
    # (mean x^p)^(1/p) lies between max * n^(-1/p) and max, so it converges to max as p grows.
    out = gem(x.double(), 200.0)
    assert torch.all(out <= mx.double() + 1e-9)
    assert torch.all(out >= mx.double() * 12 ** (-1 / 200) - 1e-9)
    assert torch.allclose(out, mx.double(), rtol=0.02)


def test_p3_matches_formula_and_clamps_negatives():
    x = _features(2) - 0.5  # some negative activations: clamped at eps
    expected = (x.clamp(min=1e-6) ** 3).mean(dim=(2, 3)) ** (1 / 3)
    assert torch.allclose(GeM()(x), expected, atol=1e-6)


def test_p_starts_at_3_and_learns():
    pool = GeM()
    assert float(pool.p.detach()) == 3.0
    pool(_features(3)).sum().backward()
    assert pool.p.grad is not None and float(pool.p.grad.abs()) > 0
