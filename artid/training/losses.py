"""Training losses as pure functions on embeddings (thesis sections 4.4.1 and 4.4.2).

Every function takes batched tensors and returns a scalar (the mean over the batch)
unless stated otherwise, so a method composes them without knowing their internals.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def contrastive_loss(
    a: torch.Tensor, b: torch.Tensor, same: torch.Tensor, margin: float = 1.8
) -> torch.Tensor:
    """Contrastive loss of pairs (Hadsell et al.; thesis eq. 4.6 with the usual factor 1/2).

    For a pair at distance d = ||a - b||: ``0.5 * (y * d^2 + (1 - y) * max(0, margin - d)^2)``.

    Args:
        a: (B, D) float, embeddings of the first images.
        b: (B, D) float, embeddings of the second images.
        same: (B,) 1 for a positive pair (same class), 0 for a negative pair.
        margin: negatives farther apart than this cost nothing (1.8 in the paper).

    Returns:
        Scalar: the mean loss over the B pairs.
    """
    if a.shape != b.shape or a.ndim != 2 or same.shape != a.shape[:1]:
        raise ValueError(
            f"contrastive_loss: shapes {tuple(a.shape)}, {tuple(b.shape)}, {tuple(same.shape)}"
        )
    y = same.to(a.dtype)
    sq = (a - b).pow(2).sum(dim=1)
    d = sq.clamp_min(1e-12).sqrt()  # the clamp keeps the gradient finite at d = 0
    loss = y * sq + (1 - y) * F.relu(margin - d).pow(2)
    return 0.5 * loss.mean()


def cosine_logits(x: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Cosine similarities between embeddings and class prototypes.

    Args:
        x: (B, D) float embeddings (normalised here, so any norm is fine).
        prototypes: (C, D) float class prototypes (normalised here).

    Returns:
        (B, C) float in [-1, 1].
    """
    return F.normalize(x, dim=1) @ F.normalize(prototypes, dim=1).t()


def arcface_logits(
    cos: torch.Tensor, labels: torch.Tensor, scale: float = 64.0, margin: float = 0.5
) -> torch.Tensor:
    """ArcFace logits: the target class's cosine s becomes cos(acos(s) + m); all are scaled.

    Thesis eq. 4.4-4.5 (Deng et al., 2019). ``cos(acos(s) + m)`` is computed as
    ``s cos m - sqrt(1 - s^2) sin m``, which is the same value with a finite gradient
    everywhere inside (-1, 1).

    Args:
        cos: (B, C) cosine similarities (from :func:`cosine_logits`).
        labels: (B,) int64 target class indices in [0, C).
        scale: gamma (64 in the paper).
        margin: angular margin m in radians (0.5 in the paper).

    Returns:
        (B, C) float logits for cross-entropy.
    """
    s = cos.gather(1, labels[:, None]).clamp(-1.0, 1.0)
    sin = (1.0 - s * s).clamp_min(1e-12).sqrt()
    target = s * math.cos(margin) - sin * math.sin(margin)
    out = cos.scatter(1, labels[:, None], target)
    return scale * out


def scaled_logits(cos: torch.Tensor, scale: float = 30.0) -> torch.Tensor:
    """Plain cosine-classifier logits for cross-entropy: ``scale * cos`` (gamma = 30 in the
    paper)."""
    return scale * cos


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy, optionally weighted per class (the inverse-frequency variant of appendix B.3).

    Args:
        logits: (B, C) float.
        labels: (B,) int64 in [0, C).
        class_weights: (C,) float or None. With weights the mean is the weighted mean
            (``sum w_y l / sum w_y``), as :func:`torch.nn.functional.cross_entropy` does.

    Returns:
        Scalar loss.
    """
    return F.cross_entropy(logits.float(), labels, weight=class_weights)


def simsiam_loss(
    p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
) -> torch.Tensor:
    """Symmetrised SimSiam loss with stop-gradient (Chen and He, 2021).

    ``-0.5 * (cos(p1, sg(z2)) + cos(p2, sg(z1)))``, averaged over the batch; minimum -1.

    Args:
        p1, p2: (B, D) predictor outputs h(g(f(x1))), h(g(f(x2))).
        z1, z2: (B, D) projector outputs g(f(x1)), g(f(x2)); no gradient flows through them.

    Returns:
        Scalar loss in [-1, 1].
    """
    c1 = F.cosine_similarity(p1, z2.detach(), dim=1)
    c2 = F.cosine_similarity(p2, z1.detach(), dim=1)
    return -0.5 * (c1.mean() + c2.mean())


def inverse_frequency_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per-class loss weights proportional to 1 / (images in the class), scaled to mean 1 over
    images.

    Args:
        labels: (N,) int64 class indices of the training images.
        n_classes: C.

    Returns:
        (C,) float32; classes without images get weight 0.
    """
    counts = torch.bincount(labels, minlength=n_classes).float()
    w = torch.where(counts > 0, 1.0 / counts.clamp_min(1.0), torch.zeros_like(counts))
    # scale so that the average weight over the training images is 1 (keeps the lr meaning)
    return w * (labels.numel() / w[labels].sum())
