"""Safe image loading: the one place where files become RGB pixels.

Every stage (extraction, training, the service) reads images through :func:`load_image`, so
that EXIF orientation, unusual modes (grayscale, CMYK, palette, alpha, 16-bit) and hostile
files (truncated, corrupt, not an image, decompression bombs) are handled the same way
everywhere. A bad file raises :class:`ImageLoadError`, which names the file; callers that
process many images record it as a failure and go on.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from artid.errors import ArtidError

if TYPE_CHECKING:  # torch is imported by the two tensor helpers only
    import torch

#: Default bound on the longer side, in pixels (the Met dataset ships images at most this size).
DEFAULT_MAX_SIZE = 500
#: Images with more pixels than this are refused before decoding (decompression-bomb guard).
#: 100 megapixels is far above any photo a user sends (a 50 MP camera frame passes).
DEFAULT_MAX_PIXELS = 100_000_000
#: Colour behind transparent pixels when an image with alpha is flattened.
BACKGROUND = (255, 255, 255)


class ImageLoadError(ArtidError):
    """An image file that cannot be read; the message names the file and the reason."""


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite an image with transparency on :data:`BACKGROUND`, giving RGB."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer or float single-channel images -> 8-bit RGB.

    Pillow's own ``convert("RGB")`` clips such images at 255 (mostly white); instead the
    value range is scaled: 16-bit by its nominal range, others by their observed maximum.
    """
    arr = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        scale = 65535.0
    else:
        lo = float(np.nanmin(arr)) if arr.size else 0.0
        arr = arr - min(lo, 0.0)
        scale = float(np.nanmax(arr)) if arr.size else 1.0
        scale = scale if scale > 0 else 1.0
    gray = np.clip(np.nan_to_num(arr / scale) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (alpha flattened on white, CMYK, palettes resolved)."""
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        # A palette may carry transparency; go through RGBA so that it is honoured.
        return _flatten_alpha(img) if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        return _flatten_alpha(img)
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        return _high_depth_to_rgb(img)
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def resize_max(img: Image.Image, max_size: int | None) -> Image.Image:
    """Shrink ``img`` so that its longer side is at most ``max_size`` (aspect kept, never enlarged).

    Uses Pillow's antialiased bilinear filter; the shorter side is rounded to the nearest pixel
    (at least 1). ``max_size`` None or 0 keeps the image as it is.

    Raises:
        ArtidError: a negative ``max_size``.
    """
    if max_size is not None and max_size < 0:
        raise ArtidError(f"max_size must be None, 0 (original size) or positive, got {max_size}")
    if not max_size:
        return img
    w, h = img.size
    longer = max(w, h)
    if longer <= max_size:
        return img
    scale = max_size / longer
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(size, Image.Resampling.BILINEAR)


def load_image(
    path: str | Path | IO[bytes],
    max_size: int | None = DEFAULT_MAX_SIZE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Read an image file as 8-bit RGB, upright, its longer side at most ``max_size``.

    Args:
        path: image file (any format Pillow reads), or an open binary file (e.g. the bytes of a
            URL in a ``BytesIO``) whose ``name`` attribute names it in error messages.
        max_size: bound on the longer side in pixels; None or 0 for the original size.
        max_pixels: refuse images with more pixels than this (decompression bombs).

    Returns:
        A fully decoded ``RGB`` image with EXIF orientation applied.

    Raises:
        ImageLoadError: missing file, not an image, truncated or corrupt data, too many pixels.
    """
    source = Path(path) if isinstance(path, (str, Path)) else path
    path = source if isinstance(source, Path) else getattr(source, "name", "<image bytes>")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its own limit and twice it; make every bomb an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageLoadError(
                        f"{path}: {w}x{h} pixels exceeds the limit of {max_pixels} "
                        "(possible decompression bomb); refusing to decode it"
                    )
                img.load()
                upright = ImageOps.exif_transpose(img)
                return resize_max(to_rgb(upright), max_size)
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(f"{path}: is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{path}: not an image (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(
            f"{path}: too many pixels, possible decompression bomb ({exc})"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Truncated data ("image file is truncated"), broken headers, bad EXIF, ...
        raise ImageLoadError(f"{path}: corrupt or truncated image ({exc})") from None


def to_array(img: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 array of an RGB image (compact for passing between processes)."""
    return np.asarray(to_rgb(img), dtype=np.uint8)


def array_to_tensor(arr: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    import torch

    t = torch.as_tensor(arr)
    return t.permute(2, 0, 1).to(torch.float32).div_(255.0)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """(3, H, W) float32 tensor in [0, 1] of an image (converted to RGB first)."""
    return array_to_tensor(np.array(to_array(img)))
