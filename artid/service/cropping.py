"""Cropping query photos in the service, as ``artid extract --crop`` does
(:mod:`artid.localisation`).

A bundle built with ``artid index build --crop cam|centre`` records the crop settings
(:meth:`~artid.localisation.CropSettings.spec`) as ``extraction.crop`` of its manifest; its
validation photos were cropped that way before tuning and calibration, and the recognizer crops
every photo the same way before describing it. The database (studio) photos are never cropped.
A bundle without the key (every bundle written before crops existed) describes whole photos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from artid.errors import ArtidError
from artid.localisation import CropSettings

#: The key of a bundle's ``extraction`` settings that holds the crop spec.
CROP_KEY = "crop"


def crop_from_spec(spec: dict[str, Any] | None) -> CropSettings | None:
    """Crop settings from :meth:`CropSettings.spec` (None or ``{"method": "none"}``: no crop).

    Raises:
        ArtidError: an unknown method or values out of range.
    """
    if not spec:
        return None
    if not isinstance(spec, dict):
        raise ArtidError(f"crop settings must be a JSON object, got {spec!r}")
    method = spec.get("method")
    if method == "none":
        return None
    if method == "centre":
        return CropSettings(
            method="centre", centre_share=float(spec.get("share", CropSettings.centre_share))
        )
    if method == "cam":
        d = CropSettings()
        threshold = spec.get("threshold", d.threshold)
        size = spec.get("cam_size", d.cam_size)
        return CropSettings(
            method="cam",
            cam=str(spec.get("cam", d.cam)),
            threshold=threshold if threshold == "otsu" else float(threshold),
            margin=float(spec.get("margin", d.margin)),
            cam_size=None if size is None else int(size),
        )
    raise ArtidError(f"unknown crop {method!r}; expected one of none, cam, centre")


def bundle_crop(extraction: dict[str, Any], where: str = "the bundle") -> CropSettings | None:
    """The crop settings a bundle's ``extraction`` records (None: whole photos).

    Raises:
        ArtidError: settings this version cannot apply, naming ``where``.
    """
    try:
        return crop_from_spec(extraction.get(CROP_KEY))
    except (ArtidError, TypeError, ValueError) as exc:
        raise ArtidError(f"{where}: extraction.crop cannot be applied: {exc}") from None


def describe_crop(spec: dict[str, Any] | None) -> str:
    """One line for ``artid index info``."""
    if not spec or spec.get("method") == "none":
        return "none (whole photos are described)"
    if spec.get("method") == "centre":
        return (
            f"centre, {spec.get('share')} of each side (query and validation photos; studio "
            "photos whole)"
        )
    size = spec.get("cam_size")
    return (
        f"cam ({spec.get('cam')} map{f' at {size} px' if size else ''}, "
        f"threshold {spec.get('threshold')}, "
        f"margin {spec.get('margin')}; query and validation photos, studio photos whole)"
    )


@dataclass(frozen=True)
class PhotoCrop:
    """The crop of one photo, found on the photo as described (shrunk to the bundle's size).

    Attributes:
        box: integer ``(x0, y0, x1, y1)`` in the pixels of an image of ``size``.
        size: ``(width, height)`` of the image the box was found on.
    """

    box: tuple[int, int, int, int]
    size: tuple[int, int]

    def scaled(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box in an image of ``width`` x ``height`` showing the same photo (at least one
        pixel)."""
        if (width, height) == self.size:
            return self.box
        sx, sy = width / self.size[0], height / self.size[1]
        x0, y0, x1, y1 = self.box
        left, top = (
            min(int(math.floor(x0 * sx)), width - 1),
            min(int(math.floor(y0 * sy)), height - 1),
        )
        right, bottom = (
            max(min(int(math.ceil(x1 * sx)), width), left + 1),
            max(min(int(math.ceil(y1 * sy)), height), top + 1),
        )
        return max(left, 0), max(top, 0), right, bottom

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """The crop of ``pixels`` ((H, W, 3) uint8 of the same photo at any size), contiguous."""
        x0, y0, x1, y1 = self.scaled(pixels.shape[1], pixels.shape[0])
        return np.ascontiguousarray(pixels[y0:y1, x0:x1])
