"""SIFT descriptors of images for the bag-of-words baseline (seed 003), from
:mod:`artid.extraction.local`.

The keypoints themselves come from the project's one image -> local features function
(:func:`artid.extraction.local.local_features`: files read through
:func:`artid.data.images.load_image`, shrunk to ``max_size`` on the longer side, like iMet's ~300 px
images); the baseline only needs their descriptors, as float32 rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tqdm import tqdm

from artid.extraction.local import (
    DEFAULT_KEYPOINTS,
    DEFAULT_SIZE,
    SIFT_DIM,
    ImageLike,
    local_features,
)

__all__ = [
    "DEFAULT_KEYPOINTS",
    "DEFAULT_SIZE",
    "SIFT_DIM",
    "ImageLike",
    "sift_descriptors",
    "sift_of_images",
]


def sift_descriptors(
    image: ImageLike, max_keypoints: int = DEFAULT_KEYPOINTS, max_size: int | None = DEFAULT_SIZE
) -> np.ndarray:
    """(K, 128) float32 SIFT descriptors of one image; (0, 128) when SIFT finds no keypoint.

    Args:
        image: file path, Pillow image or uint8 pixel array.
        max_keypoints: keep at most this many (the strongest); 0 for no limit.
        max_size: longer side of images read from files, in pixels.
    """
    return local_features(image, max_keypoints, max_size).desc.astype(np.float32)


def sift_of_images(
    images: Iterable[ImageLike],
    max_keypoints: int = DEFAULT_KEYPOINTS,
    max_size: int | None = DEFAULT_SIZE,
    progress: bool = False,
) -> list[np.ndarray]:
    """:func:`sift_descriptors` of every image, in order (a progress bar when ``progress``)."""
    images = list(images)
    bar = tqdm(images, desc="SIFT", unit="img", disable=not progress)
    return [sift_descriptors(img, max_keypoints, max_size) for img in bar]
