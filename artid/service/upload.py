"""Checking and decoding an uploaded photo before it reaches the model.

Everything a client sends is untrusted: the declared content type, the bytes and
the dimensions written in the image header. A photo is refused with the HTTP
status a client can act on:

- 400: empty, truncated or corrupt image data;
- 413: more bytes than allowed, or more pixels than allowed (decompression bombs
  are caught from the header, before any pixel is decoded);
- 415: a content type that is not an image, or bytes that are no supported image format.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from artid.data.images import to_rgb
from artid.errors import ArtidError

#: Pillow format names accepted (MPO: the multi-picture JPEG many phones write).
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF")
#: Content types accepted besides ``image/*`` (some clients send no precise type).
GENERIC_TYPES = ("application/octet-stream", "")


@dataclass(frozen=True)
class UploadLimits:
    """Limits on an uploaded photo.

    Attributes:
        max_bytes: largest upload accepted.
        max_pixels: largest width x height accepted (checked from the header).
    """

    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000


class UploadError(ArtidError):
    """An upload that is refused, with the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_content_type(content_type: str | None) -> None:
    """Refuse (415) a declared content type that is neither ``image/*`` nor generic."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if not (ctype.startswith("image/") or ctype in GENERIC_TYPES):
        raise UploadError(
            415, f"expected an image (image/jpeg, image/png, ...), got content type {ctype!r}"
        )


def decode_image(data: bytes, limits: UploadLimits) -> Image.Image:
    """Decode uploaded bytes into an RGB image, upright (EXIF orientation applied).

    Args:
        data: the uploaded file's bytes.
        limits: size limits.

    Returns:
        The decoded image, 8-bit RGB (alpha flattened like :func:`artid.data.images.load_image`
        does), full resolution.

    Raises:
        UploadError: with status 400, 413 or 415 (see the module docstring).
    """
    if not data:
        raise UploadError(400, "the uploaded file is empty")
    if len(data) > limits.max_bytes:
        raise UploadError(
            413, f"the upload is {len(data)} bytes; at most {limits.max_bytes} are accepted"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadError(413, "the image has too many pixels (decompression bomb guard)") from None
    except UnidentifiedImageError:
        raise UploadError(
            415,
            "the uploaded file is not an image in a supported format "
            f"({', '.join(ALLOWED_FORMATS)})",
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadError(
            400, f"the image is truncated or corrupt: its header cannot be read ({exc})"
        ) from None
    if img.format not in ALLOWED_FORMATS:
        raise UploadError(
            415, f"image format {img.format} is not accepted ({', '.join(ALLOWED_FORMATS)})"
        )
    width, height = img.size
    if width < 1 or height < 1:
        raise UploadError(400, f"the image has no pixels ({width}x{height})")
    if width * height > limits.max_pixels:
        raise UploadError(
            413,
            f"the image is {width}x{height} = {width * height} pixels; "
            f"at most {limits.max_pixels} are accepted",
        )
    try:
        img.load()
        return to_rgb(ImageOps.exif_transpose(img))
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadError(400, f"the image is truncated or corrupt ({exc})") from None
