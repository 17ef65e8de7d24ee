"""Training augmentations with torchvision.transforms.v2: the paper's, and in-situ synthetic
positives.

- ``paper`` (thesis 5.1): a random crop covering 70-100% of the image at an aspect ratio
  near 1, resized to a square (500 px in the paper), colour jitter (0.4, 0.4, 0.4, 0.1) with
  probability 0.8, grayscale with probability 0.2.
- ``insitu`` (an extension beyond the paper, :mod:`artid.training.insitu`): one image of a
  pair (or one view of SimSiam, or half of DNet's images) is turned into a synthetic visitor
  photo (frame, wall and floor, perspective, occlusion, lighting); the other keeps the
  paper's augmentation, so the pair spans the studio-to-visitor gap the queries have.

Inputs are PIL images or (3, H, W) tensors; outputs are (3, size, size) float32 in [0, 1]
(the embedder applies its own mean/std). Randomness comes from the global torch RNG,
seeded per epoch by the trainer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torchvision.transforms import v2

from artid.errors import ArtidError
from artid.training.insitu import InSitu

AUGMENTS = ("paper", "insitu")
Transform = Callable[[Any], torch.Tensor]


def train_transform(
    size: int = 500,
    scale: tuple[float, float] = (0.7, 1.0),
    ratio: tuple[float, float] = (0.9, 1 / 0.9),
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
    p_jitter: float = 0.8,
    p_gray: float = 0.2,
) -> v2.Compose:
    """The paper's training augmentation.

    Args:
        size: side of the square output (500 in the paper; smaller for CPU runs).
        scale: area fraction range of the random crop.
        ratio: aspect-ratio range of the random crop (near 1, as in the thesis).
        jitter: brightness, contrast, saturation, hue of the colour jitter.
        p_jitter: probability of applying the colour jitter.
        p_gray: probability of converting to grayscale (kept 3-channel).

    Returns:
        A transform: image -> (3, size, size) float32 in [0, 1].
    """
    b, c, s, h = jitter
    return v2.Compose(
        [
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.RandomResizedCrop(size, scale=scale, ratio=ratio, antialias=True),
            v2.RandomApply(
                [v2.ColorJitter(brightness=b, contrast=c, saturation=s, hue=h)], p=p_jitter
            ),
            v2.RandomGrayscale(p=p_gray),
            v2.Lambda(lambda x: x.clamp(0.0, 1.0)),
        ]
    )


@dataclass(frozen=True)
class Augmentations:
    """The transforms of a run.

    Attributes:
        anchor: the anchor of a pair, SimSiam's first view.
        other: the second image of a pair (positive or negative), SimSiam's second view.
        single: every image of a classification batch (DNet).
    """

    anchor: Transform
    other: Transform
    single: Transform


def augmentations(kind: str, size: int) -> Augmentations:
    """The transforms of augmentation ``kind`` (:data:`AUGMENTS`) at ``size`` px."""
    if kind not in AUGMENTS:
        raise ArtidError(
            f"--augment: unknown augmentation {kind!r}; expected one of {', '.join(AUGMENTS)}"
        )
    paper = train_transform(size=size)
    if kind == "paper":
        return Augmentations(paper, paper, paper)
    insitu = InSitu(size)
    return Augmentations(paper, insitu, v2.RandomChoice([paper, insitu]))


def eval_transform() -> v2.Compose:
    """No augmentation: image -> (3, H, W) float32 in [0, 1] at its loaded size (aspect kept)."""
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
