"""Class activation maps of a descriptor model: where in the photo the descriptor comes from.

artid's embedders have no classes, so there is no class weight vector for the classic CAM of Zhou
et al. Instead the map says how much each position of the last convolutional feature map
(the trunk's output, stride 32 for the default EfficientNet-Lite0) contributes to the photo's own
GeM descriptor:

``share``
    GeM pools channel ``k`` as ``f_k = (mean_i x_k(i)^p)^(1/p)``; position ``i`` holds the share
    ``c_k(i) = x_k(i)^p / sum_j x_k(j)^p`` of it. The L2-normalised descriptor ``d = f / |f|``
    gives channel ``k`` the share ``d_k^2`` of its squared norm. The map is
    ``A(i) = sum_k d_k^2 c_k(i)``: position ``i``'s share of the descriptor (the map sums to 1).
    This is CAM with the descriptor itself as the class weights.
``energy`` (the default of :class:`~artid.localisation.crop.CropSettings`)
    ``A(i) = sum_k x_k(i)^p``: the position's raw contribution to the GeM sums, all channels alike
    (dominated by the few strongest channels).

Both use the model's own GeM exponent ``p``. Measured on the synthetic benchmark's visitor photos
by ``benchmarks/localisation.py`` (README, "Finding the artwork in the photo"), with CNNs.

For a ViT the map is that of its patch tokens on their grid (one cell per patch,
``ceil(H / patch) x ceil(W / patch)``), whatever its pooling: with ``@cls`` it says where GeM over
the patches would come from, not where the class token looks. Not measured.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
import torch.nn.functional as F

from artid.errors import ArtidError
from artid.models.embedder import Embedder
from artid.models.gem import EPS
from artid.models.vit import ViTTrunk

#: The activation maps :func:`activation_maps` computes.
CAM_METHODS = ("share", "energy")


def _resize_to(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize a (B, 3, H, W) batch so that its longer side is ``size`` (None: unchanged)."""
    if size is None:
        return x
    h, w = x.shape[-2:]
    scale = size / max(h, w)
    if abs(scale - 1) < 1e-9:
        return x
    out = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(x, size=out, mode="bilinear", align_corners=False, antialias=scale < 1)


@torch.inference_mode()
def activation_maps(
    emb: Embedder, x: torch.Tensor, method: str = "share", size: int | None = None
) -> torch.Tensor:
    """Activation maps of a batch at the resolution of the last convolutional feature map.

    Args:
        emb: the embedder (its trunk, normalisation and GeM exponent are used).
        x: (B, 3, H, W) RGB in [0, 1].
        method: ``share`` or ``energy`` (see the module docstring).
        size: resize the batch so that its longer side is this before the trunk (a finer map
            for small photos); None keeps it.

    Returns:
        (B, h, w) float32 maps, non-negative.
    """
    if method not in CAM_METHODS:
        raise ArtidError(
            f"unknown activation map {method!r}; expected one of {', '.join(CAM_METHODS)}"
        )
    param = next(emb.parameters())
    x = _resize_to(x.to(param.device, param.dtype), size)
    feats = emb.trunk(emb.normalize(x)).float()  # (B, C, h, w); a ViT's (B, N, C) tokens:
    if feats.ndim == 3:  # its patch tokens' grid
        feats = cast(ViTTrunk, emb.trunk).patch_map(feats, x.shape[-2], x.shape[-1])
    p = float(emb.pool.p.detach())
    powered = feats.clamp(min=EPS).pow(p)
    if method == "energy":
        return powered.sum(dim=1)
    sums = powered.sum(dim=(-2, -1), keepdim=True)  # (B, C, 1, 1): N f_k^p
    shares = powered / sums  # c_k(i), sums to 1 over positions
    f = (sums.squeeze(-1).squeeze(-1) / (feats.shape[-2] * feats.shape[-1])).pow(1.0 / p)  # GeM
    d2 = F.normalize(f, dim=-1).pow(2)  # (B, C)
    return torch.einsum("bc,bchw->bhw", d2, shares)


def upsample(heat: torch.Tensor | np.ndarray, height: int, width: int) -> np.ndarray:
    """A (h, w) map resized bilinearly to (height, width) (cell centres aligned as in the photo)."""
    t = torch.as_tensor(np.asarray(heat, dtype=np.float32))[None, None]
    return F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)[
        0, 0
    ].numpy()
