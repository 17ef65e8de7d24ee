"""A photo as the service reads it: decoded whole once, then shrunk for each use as files are read.

``artid extract`` reads a query image with :func:`artid.data.images.load_image` (decoded, turned
upright, converted to RGB, then shrunk to ``max_size`` on its longer side) and the re-ranking
stage reads an image's keypoints the same way at its own size. The service decodes a photo whole
(a file with ``load_image(path, max_size=None)``, an upload with
:func:`artid.service.upload.decode_image`) and shrinks that one image with
:func:`artid.data.images.resize_max` for each use (:func:`photo_at`): the same pixels as
``load_image(path, size)`` gives, whatever other sizes the same photo is also needed at.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from artid.data.images import resize_max, to_array


def photo_at(img: Image.Image, max_size: int | None) -> Image.Image:
    """The whole, upright RGB photo ``img`` shrunk to ``max_size`` (None or 0: as it is), exactly
    as :func:`artid.data.images.load_image` shrinks a file."""
    return resize_max(img, max_size or None)


def pixels_at(img: Image.Image, max_size: int | None) -> np.ndarray:
    """(H, W, 3) uint8 pixels of :func:`photo_at`: what extraction's decoding workers give."""
    return to_array(photo_at(img, max_size))
