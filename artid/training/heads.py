"""Heads that sit on top of the embedder during training and are dropped afterwards.

- :class:`CosineClassifier`: L2-normalised class prototypes, no bias (DNet, thesis 4.4.1).
- :func:`simsiam_projector`, :func:`simsiam_predictor`: the SimSiam MLPs g and h, both
  d -> d (thesis 4.4.2; layer layout after Chen and He, 2021).
"""

from __future__ import annotations

import torch
from torch import nn

from artid.training.losses import cosine_logits


class CosineClassifier(nn.Module):
    """Cosine-similarity classifier: logits_c = cos(x, w_c).

    Args:
        dim: D, the embedding size.
        n_classes: C.
    """

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=0.01)

    @property
    def n_classes(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) embeddings -> (B, C) cosines in [-1, 1]."""
        return cosine_logits(x, self.weight)


def simsiam_projector(dim: int) -> nn.Sequential:
    """Projector g: d -> d, Linear-BN-ReLU-Linear-BN (the last BN without affine, as in SimSiam)."""
    return nn.Sequential(
        nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
        nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim, affine=False),
    )


def simsiam_predictor(dim: int, bottleneck: int | None = None) -> nn.Sequential:
    """Predictor h: d -> d through a bottleneck (d/4 by default), Linear-BN-ReLU-Linear."""
    hidden = bottleneck or max(1, dim // 4)
    return nn.Sequential(
        nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, dim),
    )
