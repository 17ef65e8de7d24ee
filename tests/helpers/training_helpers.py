"""Helpers of the training tests: a tiny stand-in embedder with the Embedder API, tiny
in-memory data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from artid.training.data import MemoryImages
from artid.training.validation import embed_images

CPU = torch.device("cpu")


class TinyEmbedder(nn.Module):
    """Stand-in with the Embedder API: trunk -> pool -> L2 -> projector -> L2."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, dim, 3, padding=1), nn.BatchNorm2d(dim), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.projector = nn.Linear(dim, dim)
        self.dim = dim
        self.spec = {"name": "tiny", "dim": dim}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = F.normalize(self.pool(self.trunk(x - 0.5)).flatten(1), dim=1)
        return F.normalize(self.projector(v), dim=1)

    def embed_multiscale(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)

    def freeze_batchnorm(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()

    @torch.no_grad()
    def set_projector_from_whitening(self, mean: np.ndarray, p: np.ndarray) -> None:
        p = torch.as_tensor(p, dtype=torch.float32)
        if self.projector.out_features != p.shape[1]:
            self.projector = nn.Linear(p.shape[0], p.shape[1])
        self.projector.weight.copy_(p.T)
        self.projector.bias.copy_(-torch.as_tensor(mean, dtype=torch.float32) @ p)


def write_plain(path: Path, model: nn.Module, meta: dict) -> None:
    torch.save({"spec": model.spec, "state_dict": model.state_dict(), "meta": meta}, path)


def tiny_images(n_classes: int = 6, per_class: int = 2, size: int = 16, seed: int = 0):
    """Classes are distinct colour patterns; images of a class are noisy copies."""
    g = torch.Generator().manual_seed(seed)
    images, labels = [], []
    for c in range(n_classes):
        base = torch.rand(3, size, size, generator=g)
        for _ in range(per_class):
            images.append((base + 0.1 * torch.randn(3, size, size, generator=g)).clamp(0, 1))
            labels.append(c)
    return MemoryImages(images), np.array(labels, dtype=np.int64)


def embed(model, source):
    return embed_images(model, source, CPU, batch_size=8)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}
