"""Generalised-mean (GeM) pooling (Radenovic et al.), as METHOD.md section 3 defines it."""

from __future__ import annotations

import torch
from torch import nn

#: Activations are clamped at this value before the power (GeM is undefined for x <= 0).
EPS = 1e-6


def gem(x: torch.Tensor, p: torch.Tensor | float = 3.0, eps: float = EPS) -> torch.Tensor:
    """GeM pooling over the spatial positions.

    f_k = (mean over positions of max(x, eps)^p)^(1/p). p = 1 is average pooling, p -> inf
    approaches max pooling.

    Args:
        x: (B, C, H, W) feature maps.
        p: exponent, a float or a scalar tensor (learnable in :class:`GeM`).
        eps: lower clamp of the activations.

    Returns:
        (B, C) pooled features.
    """
    return x.clamp(min=eps).pow(p).mean(dim=(-2, -1)).pow(1.0 / p)


class GeM(nn.Module):
    """GeM pooling with a learnable exponent ``p`` (initial value 3).

    Args:
        p: initial exponent.
        eps: lower clamp of the activations.
    """

    def __init__(self, p: float = 3.0, eps: float = EPS) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C)."""
        return gem(x, self.p, self.eps)

    def extra_repr(self) -> str:
        return f"p={float(self.p.detach()):.4f}, eps={self.eps}"
