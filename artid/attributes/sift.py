"""SIFT local descriptors (OpenCV) of images given as files or pixel arrays.

The first stage of seed 003's bag-of-words baseline (:mod:`artid.attributes.bow`). Files are read
through :func:`artid.data.images.load_image` (EXIF, odd modes, hostile files handled once for the
whole project) and shrunk to ``max_size`` on the longer side, like iMet's ~300 px images.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from artid.data.images import load_image
from artid.errors import ArtidError

#: What the functions here accept as an image: a file, a Pillow image, or (H, W[, 3]) uint8 RGB pixels.
ImageLike = str | Path | Image.Image | np.ndarray

#: SIFT descriptor length.
SIFT_DIM = 128
#: Default bound on the longer side of images read from files (iMet images are about 300 px).
DEFAULT_SIFT_SIZE = 400
#: Default cap on keypoints per image (OpenCV keeps the strongest).
DEFAULT_MAX_KEYPOINTS = 500


def to_gray(image: ImageLike, max_size: int | None = DEFAULT_SIFT_SIZE) -> np.ndarray:
    """(H, W) uint8 grey pixels of an image file, Pillow image or uint8 array (grey or RGB).

    Raises:
        ArtidError: an unreadable file (:class:`artid.data.images.ImageLoadError`) or an array that
            is not (H, W), (H, W, 3) or (H, W, 4) uint8.
    """
    if isinstance(image, (str, Path)):
        image = load_image(image, max_size=max_size)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("L"), dtype=np.uint8)
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ArtidError(f"an image array must be (H, W) or (H, W, 3) uint8; got {arr.shape} {arr.dtype}")
    if arr.ndim == 2:
        return arr
    code = cv2.COLOR_RGB2GRAY if arr.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
    return cv2.cvtColor(np.ascontiguousarray(arr), code)


def sift_descriptors(
    image: ImageLike, max_keypoints: int = DEFAULT_MAX_KEYPOINTS, max_size: int | None = DEFAULT_SIFT_SIZE
) -> np.ndarray:
    """(K, 128) float32 SIFT descriptors of one image; (0, 128) when SIFT finds no keypoint.

    Args:
        image: file path, Pillow image or uint8 pixel array.
        max_keypoints: keep at most this many (the strongest); 0 for no limit.
        max_size: longer side of images read from files, in pixels.
    """
    gray = to_gray(image, max_size)
    sift = cv2.SIFT.create(nfeatures=max(0, int(max_keypoints)))
    _, desc = sift.detectAndCompute(gray, None)
    if desc is None:
        return np.zeros((0, SIFT_DIM), dtype=np.float32)
    return desc.astype(np.float32, copy=False)


def sift_of_images(
    images: Iterable[ImageLike],
    max_keypoints: int = DEFAULT_MAX_KEYPOINTS,
    max_size: int | None = DEFAULT_SIFT_SIZE,
    progress: bool = False,
) -> list[np.ndarray]:
    """:func:`sift_descriptors` of every image, in order (a progress bar when ``progress``)."""
    images = list(images)
    bar = tqdm(images, desc="SIFT", unit="img", disable=not progress)
    return [sift_descriptors(img, max_keypoints, max_size) for img in bar]
