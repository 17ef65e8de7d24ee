"""Inference-only speed-ups of an embedder, each checked to leave descriptors unchanged.

- BatchNorm folding: in eval mode a BatchNorm after a convolution is an affine map per channel,
  so it is merged into the convolution's weight and bias, and the BN layer disappears (its
  activation, for timm's fused ``BatchNormAct2d``, stays).
- Channels-last memory format, which oneDNN (CPU) and cuDNN (GPU) convolutions prefer.

:func:`optimize_for_inference` works on a copy and compares the copy's descriptors with the
original's on a probe image; a transformation that changes them beyond tolerance is dropped.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from artid.models.embedder import Embedder

log = logging.getLogger(__name__)

#: Largest allowed change of a descriptor component caused by an optimisation (float32).
PROBE_TOLERANCE = 1e-4


def _fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Merge ``bn`` (eval mode) into ``conv`` in place: w' = w * g / s, b' = (b - mu) * g / s +
    beta."""
    assert bn.running_var is not None and bn.running_mean is not None, (
        "BatchNorm without running statistics"
    )
    scale = (
        bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        if bn.affine
        else 1.0 / torch.sqrt(bn.running_var + bn.eps)
    )
    shift = bn.bias.detach() if bn.affine else torch.zeros_like(scale)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(scale)
    conv.weight.data = conv.weight.detach() * scale.view(-1, 1, 1, 1)
    new_bias = (bias - bn.running_mean) * scale + shift
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias)
    else:
        conv.bias.data = new_bias


def _bn_replacement(bn: nn.BatchNorm2d) -> nn.Module:
    """What remains of a BN layer after folding: its activation (timm BatchNormAct2d) or nothing."""
    act = getattr(bn, "act", None)
    drop = getattr(bn, "drop", None)
    parts = [m for m in (drop, act) if isinstance(m, nn.Module) and not isinstance(m, nn.Identity)]
    if not parts:
        return nn.Identity()
    return parts[0] if len(parts) == 1 else nn.Sequential(*parts)


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d (registration order) into it, in place.

    A conv and a BN are paired only when they are consecutive children of one parent, the BN's
    channels equal the conv's outputs and the conv has ``groups`` compatible weights; this
    matches how timm and torchvision build their blocks (``conv -> bn``). The caller must check
    the result (see :func:`optimize_for_inference`): a model whose forward does not use the
    children in that order would be changed.

    Returns:
        The number of BN layers folded.
    """
    folded = 0
    for parent in list(module.modules()):
        children = list(parent.named_children())
        for (_, first), (name, second) in zip(children, children[1:]):
            if (
                isinstance(first, nn.Conv2d)
                and isinstance(second, nn.BatchNorm2d)
                and second.num_features == first.out_channels
                and second.track_running_stats
            ):
                _fold_conv_bn(first, second)
                setattr(parent, name, _bn_replacement(second))
                folded += 1
    return folded


@torch.inference_mode()
def _max_change(a: Embedder, b: Embedder, probe: torch.Tensor, channels_last: bool) -> float:
    x = probe.contiguous(memory_format=torch.channels_last) if channels_last else probe
    return float((a(probe) - b(x)).abs().max())


def optimize_for_inference(
    emb: Embedder,
    fold_bn: bool = True,
    channels_last: bool = True,
    device: torch.device | str = "cpu",
) -> tuple[Embedder, dict[str, bool]]:
    """A faster copy of ``emb`` for extraction, with the same descriptors.

    Args:
        emb: the embedder (not modified).
        fold_bn: try BatchNorm folding.
        channels_last: use the channels-last memory format.
        device: where the copy lives.

    Returns:
        (the optimised eval-mode copy, which optimisations were kept).
    """
    reference = emb.clone().eval().to(device)
    fast = emb.clone().eval().to(device)
    gen = torch.Generator().manual_seed(0)
    probe = torch.rand(2, 3, 96, 80, generator=gen).to(device)
    applied = {"fold_bn": False, "channels_last": False}
    if fold_bn:
        n = fold_batchnorm(fast)
        change = _max_change(reference, fast, probe, False)
        if n and change <= PROBE_TOLERANCE:
            applied["fold_bn"] = True
            log.debug("folded %d BatchNorm layers (max descriptor change %.2e)", n, change)
        elif n:
            log.warning("BatchNorm folding changed descriptors by %.2e; not used", change)
            fast = emb.clone().eval().to(device)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
        applied["channels_last"] = True
    for p in fast.parameters():
        p.requires_grad_(False)
    return fast, applied
