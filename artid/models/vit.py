"""Vision Transformers (timm ``vit_*``, DINOv2 ``vit_*_dinov2*``, DeiT, EVA) as backbones.

A ViT's trunk gives tokens, not a feature map: ``forward_features`` returns (B, N, C), the
``num_prefix_tokens`` class / register / distillation tokens first, then the h * w patch tokens.
The global descriptor is chosen by a suffix of the backbone name:

- ``@cls`` (the default): the class token (after the model's final norm);
- ``@gem``: GeM over the patch tokens (clamped at ``eps`` like CNN activations, learnable ``p``);
- ``@cls+gem``: both, each L2-normalised, concatenated (2C values).

The default is CLS because it is what these models are trained to summarise with; it is not
measured on the Met here. Models are built with ``dynamic_img_size=True`` (timm interpolates the
position embedding to the input's patch grid) and ``dynamic_img_pad=True`` (the normalised input is
zero-padded at the bottom / right to whole patches), so any input size works, non-square and
multi-scale included; the grid is ``ceil(H / patch) x ceil(W / patch)``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from artid.errors import ArtidError
from artid.models.gem import EPS, GeM

#: timm modules whose models are plain ViTs with ``num_prefix_tokens`` and ``dynamic_img_size``.
VIT_MODULES = ("vision_transformer", "deit", "eva")
#: Token poolings, by the name suffix that selects them.
TOKEN_POOLINGS = ("cls", "gem", "cls+gem")
DEFAULT_TOKEN_POOLING = "cls"


def split_pooling(name: str) -> tuple[str, str | None]:
    """``"vit_small_patch14_dinov2@gem"`` -> ``("vit_small_patch14_dinov2", "gem")``.

    A name without a suffix gives ``(name, None)``.

    Raises:
        ArtidError: an unknown pooling suffix.
    """
    base, sep, pooling = name.rpartition("@")
    if not sep:
        return name, None
    pooling = pooling.strip().lower()
    if pooling not in TOKEN_POOLINGS:
        raise ArtidError(
            f"unknown pooling {pooling!r} in backbone name {name!r}; ViT backbones take "
            f"{', '.join('@' + p for p in TOKEN_POOLINGS)}"
        )
    return base, pooling


def is_vit(arch: str) -> bool:
    """Whether artid builds a timm architecture name (with or without its ``.tag``) as a ViT."""
    from timm.models import is_model_in_modules

    return bool(is_model_in_modules(arch.split(".")[0], list(VIT_MODULES)))


def vit_kwargs() -> dict[str, Any]:
    """Extra ``timm.create_model`` arguments of ViT backbones."""
    return {"dynamic_img_size": True, "dynamic_img_pad": True}


class ViTTrunk(nn.Module):
    """The token part of a timm ViT: ``model.forward_features``, (B, 3, H, W) -> (B, N, C)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model: Any = model  # a timm VisionTransformer / Eva
        self.num_prefix_tokens = int(getattr(model, "num_prefix_tokens", 0))
        self.has_class_token = bool(getattr(model, "cls_token", None) is not None)
        trunk: Any = model
        size = getattr(trunk, "patch_size", None) or trunk.patch_embed.patch_size
        self.patch_size = (
            (int(size[0]), int(size[1]))
            if isinstance(size, (tuple, list))
            else (int(size), int(size))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, C) tokens, prefix tokens first."""
        return self.model.forward_features(x)

    def patch_map(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The patch tokens of a (height, width) input as a feature map: (B, N, C) -> (B, C, h, w).

        The grid is ``ceil(height / patch) x ceil(width / patch)`` (the input is padded to whole
        patches); the prefix tokens are left out.
        """
        h, w = -(-height // self.patch_size[0]), -(-width // self.patch_size[1])
        patches = tokens[:, self.num_prefix_tokens :]
        if patches.shape[1] != h * w:
            raise ArtidError(
                f"expected {h} x {w} patch tokens for a {height} x {width} input, "
                f"got {patches.shape[1]}"
            )
        return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


class TokenPool(GeM):
    """Global descriptor from ViT tokens: CLS, GeM over patch tokens, or both (module docstring).

    A :class:`GeM` subclass so that its exponent is ``pool.p`` as for CNNs (checkpoints, logging);
    ``p`` only receives gradients when GeM is part of the pooling.

    Args:
        mode: ``cls``, ``gem`` or ``cls+gem``.
        num_prefix_tokens: tokens before the patch tokens (class, registers, distillation).
        p: initial GeM exponent.
        eps: lower clamp of the patch tokens.
    """

    def __init__(self, mode: str, num_prefix_tokens: int, p: float = 3.0, eps: float = EPS) -> None:
        super().__init__(p, eps)
        if mode not in TOKEN_POOLINGS:
            raise ArtidError(f"unknown token pooling {mode!r} (known: {', '.join(TOKEN_POOLINGS)})")
        if "cls" in mode.split("+") and num_prefix_tokens < 1:
            raise ArtidError("this ViT has no class token: use the pooling @gem")
        self.mode = mode
        self.num_prefix_tokens = num_prefix_tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) tokens -> (B, C) or, for ``cls+gem``, (B, 2C)."""
        parts = []
        modes = self.mode.split("+")
        if "cls" in modes:
            parts.append(x[:, 0])
        if "gem" in modes:
            patches = x[:, self.num_prefix_tokens :]
            parts.append(patches.clamp(min=self.eps).pow(self.p).mean(dim=1).pow(1.0 / self.p))
        if len(parts) == 1:
            return parts[0]
        return torch.cat([F.normalize(v, dim=-1) for v in parts], dim=-1)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, prefix={self.num_prefix_tokens}, " + super().extra_repr()


def pooled_features(mode: str, channels: int) -> int:
    """Descriptor length before the projector for a token pooling of C-channel tokens."""
    return channels * len(mode.split("+"))
