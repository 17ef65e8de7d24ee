"""The visitor's phone camera: the photo's shape, and its light, exposure, blur and noise."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from artid.data.synth.drawing import blur


def photo_size(rng: np.random.Generator, long_side: int) -> tuple[int, int]:
    """(height, width) of a phone photo: landscape 4:3 most often, else portrait 3:4 or square."""
    r = rng.random()
    short = int(round(long_side * 0.75))
    if r < 0.55:
        return short, long_side
    if r < 0.9:
        return long_side, short
    return long_side, long_side


def camera(
    img: np.ndarray, rng: np.random.Generator, tint: np.ndarray, strength: float = 1.0
) -> np.ndarray:
    """Light and camera: colour cast, exposure, vignetting, blur, sensor noise (JPEG at saving)."""
    H, W = img.shape[:2]
    scale = max(H, W) / 500.0
    # phones balance white and exposure automatically: casts and exposure errors are mild
    cast = tint * np.clip(1.0 + rng.normal(0, 0.03 * strength, 3), 0.85, 1.15)
    img = img * cast.astype(np.float32)
    img = np.clip(img * rng.uniform(0.85, 1.15), 0, None) ** rng.uniform(0.85, 1.15)
    yy, xx = np.mgrid[-1 : 1 : complex(0, H), -1 : 1 : complex(0, W)].astype(np.float32)
    img = img * (1 - rng.uniform(0.1, 0.4) * strength * (xx**2 + yy**2) / 2)[..., None]
    r = rng.random()
    if r < 0.06 * strength:  # motion blur (phone photos are mostly sharp)
        img = ndimage.uniform_filter1d(
            img, size=max(2, int(rng.uniform(3, 7) * scale)), axis=int(rng.integers(0, 2))
        )
    elif r < 0.6:
        img = blur(img, rng.uniform(0.3, 1.0) * scale * strength)
    noise = rng.normal(0, rng.uniform(0.003, 0.02) * strength, (H, W, 1)).astype(np.float32)
    chroma = rng.normal(0, 0.006 * strength, (H, W, 3)).astype(np.float32)
    return np.clip(img + noise + chroma, 0, 1)
