"""The embedder: trunk -> GeM -> L2 -> [FC projector -> L2], one or more scales (METHOD.md 3)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from artid.models.backbones import Backbone
from artid.models.gem import GeM
from artid.models.vit import TokenPool, pooled_features

#: Multi-scale factors of the paper: 1, 2^-0.5, 2^-1.
MULTI_SCALE = (1.0, 2.0**-0.5, 0.5)
SINGLE_SCALE = (1.0,)


class Embedder(nn.Module):
    """Global image descriptor.

    Args:
        backbone: the CNN (its classifier is not used; its trunk is).
        projector: add an FC layer (D -> D with bias) after the first L2 normalisation.
        p: initial GeM exponent.

    Attributes:
        trunk: fully convolutional part, (B, 3, H, W) -> (B, C, h, w); for a ViT, tokens (B, N, C).
        pool: :class:`GeM` with the learnable exponent ``p``; for a ViT, a
            :class:`~artid.models.vit.TokenPool` (CLS, GeM over patch tokens, or both).
        projector: ``nn.Linear`` or None.
        dim: D, length of the descriptors.
    """

    #: buffers registered in __init__ (typed for mypy; nn.Module's attribute lookup says
    #: Tensor | Module)
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, backbone: Backbone, projector: bool = False, p: float = 3.0) -> None:
        super().__init__()
        self.trunk = backbone.trunk
        token_pooling = backbone.spec.get("token_pooling")
        self.pooling = str(token_pooling) if token_pooling else "gem"
        self.pool = (
            TokenPool(self.pooling, int(getattr(self.trunk, "num_prefix_tokens", 0)), p)
            if token_pooling
            else GeM(p)
        )
        self.num_features = (
            pooled_features(self.pooling, backbone.num_features)
            if token_pooling
            else backbone.num_features
        )
        self.projector: nn.Linear | None = (
            nn.Linear(self.num_features, self.num_features) if projector else None
        )
        self.register_buffer(
            "mean", torch.tensor(backbone.mean, dtype=torch.float32).view(1, 3, 1, 1)
        )
        self.register_buffer(
            "std", torch.tensor(backbone.std, dtype=torch.float32).view(1, 3, 1, 1)
        )
        self.backbone_spec = dict(backbone.spec)
        self._bn_frozen = False
        #: Where the weights came from when not the backbone's pretrained ones (e.g. a checkpoint
        #: file).
        self.origin: dict[str, Any] | None = None
        self.eval()

    @property
    def dim(self) -> int:
        """D, the descriptor length."""
        return self.projector.out_features if self.projector is not None else self.num_features

    @property
    def spec(self) -> dict[str, Any]:
        """JSON-able description of the model (what a checkpoint needs to rebuild it, and more)."""
        return {
            "backbone": dict(self.backbone_spec),
            "pooling": self.pooling,
            "gem_p": round(float(self.pool.p.detach()), 6),
            "num_features": self.num_features,
            "projector": None if self.projector is None else self.projector.out_features,
            "dim": self.dim,
            **({"checkpoint": dict(self.origin)} if self.origin else {}),
        }

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the backbone's mean/std to images in [0, 1]."""
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Trunk output (B, C, h, w) (ViT: tokens (B, N, C)) -> (B, D) L2-normalised descriptors."""
        v = F.normalize(self.pool(feats), dim=-1)
        if self.projector is not None:
            v = F.normalize(self.projector(v), dim=-1)
        return v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Single-scale descriptors.

        Args:
            x: (B, 3, H, W) RGB in [0, 1], not normalised.

        Returns:
            (B, D) L2-normalised descriptors.
        """
        return self.embed_features(self.trunk(self.normalize(x)))

    def embed_multiscale(
        self, x: torch.Tensor, scales: Sequence[float] = MULTI_SCALE
    ) -> torch.Tensor:
        """Multi-scale descriptors: L2(sum over scales of the descriptor of the resized batch).

        Args:
            x: (B, 3, H, W) RGB in [0, 1].
            scales: factors; each resizes the input tensor bilinearly (``align_corners=False``).

        Returns:
            (B, D) L2-normalised descriptors.
        """
        total = None
        for s in scales:
            xs = (
                x
                if s == 1
                else F.interpolate(x, scale_factor=float(s), mode="bilinear", align_corners=False)
            )
            v = self.forward(xs)
            total = v if total is None else total + v
        assert total is not None, "scales must not be empty"
        return F.normalize(total, dim=-1)

    @torch.no_grad()
    def set_projector_from_whitening(
        self, mean: np.ndarray | torch.Tensor, P: np.ndarray | torch.Tensor
    ) -> None:
        """Initialise the projector from PCA-whitening: weight = P^T, bias = -mean @ P.

        Then ``projector(v) = (v - mean) @ P`` exactly. A projector of the right shape is created
        when there is none (or when P has fewer columns than D: dimensionality reduction).

        Args:
            mean: (D,) descriptor mean.
            P: (D, d) whitening matrix (d <= D).
        """
        mean_t = torch.as_tensor(np.asarray(mean), dtype=torch.float32)
        P_t = torch.as_tensor(np.asarray(P), dtype=torch.float32)
        if (
            P_t.ndim != 2
            or P_t.shape[0] != self.num_features
            or mean_t.shape != (self.num_features,)
        ):
            raise ValueError(
                f"expected mean ({self.num_features},) and P ({self.num_features}, d), "
                f"got {tuple(mean_t.shape)} and {tuple(P_t.shape)}"
            )
        out = P_t.shape[1]
        if self.projector is None or self.projector.out_features != out:
            device = self.mean.device
            self.projector = nn.Linear(self.num_features, out).to(device)
        self.projector.weight.copy_(P_t.T)
        self.projector.bias.copy_(-(mean_t @ P_t))

    def freeze_batchnorm(self) -> Embedder:
        """Keep all BatchNorm layers in eval mode (frozen running stats), also under ``train()``."""
        self._bn_frozen = True
        return self.train(self.training)

    def train(self, mode: bool = True) -> Embedder:
        super().train(mode)
        if self._bn_frozen:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def clone(self) -> Embedder:
        """A deep copy (for inference-only optimisations that must not touch this model)."""
        return copy.deepcopy(self)
