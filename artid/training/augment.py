"""The paper's training augmentations (thesis 5.1) with torchvision.transforms.v2.

Random crop covering 70-100% of the image resized to a square (500 px in the paper),
colour jitter (0.4, 0.4, 0.4, 0.1) with probability 0.8, grayscale with probability 0.2.
Inputs are PIL images or (3, H, W) tensors; outputs are (3, size, size) float32 in [0, 1]
(the embedder applies its own mean/std).
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2


def train_transform(size: int = 500, scale: tuple[float, float] = (0.7, 1.0),
                    ratio: tuple[float, float] = (3 / 4, 4 / 3),
                    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
                    p_jitter: float = 0.8, p_gray: float = 0.2) -> v2.Compose:
    """The training augmentation.

    Args:
        size: side of the square output (500 in the paper; smaller for CPU runs).
        scale: area fraction range of the random crop.
        ratio: aspect-ratio range of the random crop (torchvision's default, close to 1).
        jitter: brightness, contrast, saturation, hue of the colour jitter.
        p_jitter: probability of applying the colour jitter.
        p_gray: probability of converting to grayscale (kept 3-channel).

    Returns:
        A transform: image -> (3, size, size) float32 in [0, 1]. Randomness comes from
        the global torch RNG (seeded per epoch by the trainer).
    """
    b, c, s, h = jitter
    return v2.Compose([
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.RandomResizedCrop(size, scale=scale, ratio=ratio, antialias=True),
        v2.RandomApply([v2.ColorJitter(brightness=b, contrast=c, saturation=s, hue=h)], p=p_jitter),
        v2.RandomGrayscale(p=p_gray),
        v2.Lambda(lambda x: x.clamp(0.0, 1.0)),
    ])


def eval_transform() -> v2.Compose:
    """No augmentation: image -> (3, H, W) float32 in [0, 1] at its loaded size (aspect kept)."""
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
