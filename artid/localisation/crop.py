"""Content-aware crop: the CAM box of a photo, expanded by a margin, cut out before describing it.

``CropSettings`` is what a descriptor file records (``settings.crop`` of its manifest) and what a
resumed extraction must match; ``Cropper`` applies it to decoded (H, W, 3) uint8 images.
``centre`` crops a fixed centred share of the photo (the baseline of the benchmark).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from artid.errors import ArtidError
from artid.localisation.boxes import Box, centre_box, expand, map_box, pixel_box
from artid.localisation.cam import CAM_METHODS, activation_maps, upsample
from artid.models.embedder import Embedder

#: ``--crop`` choices.
CROP_METHODS = ("none", "cam", "centre")
#: Largest margin: each side grows by at most the box's own width / height (3 times as wide).
MAX_MARGIN = 1.0
#: A photo whose grey levels vary less than this (standard deviation, of 255) shows nothing to
#: find: a blank or uniform photo. Its activation map is not flat (the trunk's edge padding makes
#: it vary 30 to 80 times across a uniform photo), so the box of such a photo is decided here.
BLANK_STD = 1.0


def is_blank(pixels: np.ndarray) -> bool:
    """Whether an (H, W, 3) uint8 photo is blank or uniform (see :data:`BLANK_STD`)."""
    return float(np.asarray(pixels, np.float32).mean(axis=-1).std()) < BLANK_STD


@dataclass(frozen=True)
class CropSettings:
    """How query photos are cropped before they are described.

    The defaults are the best of a trial on a small synthetic benchmark (45 visitor photos; README,
    "Finding the artwork in the photo"): the ``energy`` map at the decoded size, 0.4 of its range.

    Attributes:
        method: ``cam`` (the activation-map box) or ``centre`` (a centred box).
        cam: activation map (``share`` or ``energy``, :mod:`artid.localisation.cam`).
        threshold: share of the map's range kept, in (0, 1), or ``"otsu"``.
        margin: each side of the box grows by this share of the box's width / height, in
            [0, :data:`MAX_MARGIN`].
        cam_size: longer side the photo is resized to for the map (None: as decoded).
        centre_share: side share of the ``centre`` box.
    """

    method: str = "cam"
    cam: str = "energy"
    threshold: float | str = 0.4
    margin: float = 0.1
    cam_size: int | None = None
    centre_share: float = 0.8

    def __post_init__(self) -> None:
        if self.method not in CROP_METHODS[1:]:
            raise ArtidError(
                f"unknown crop {self.method!r}; expected one of {', '.join(CROP_METHODS)}"
            )
        if self.cam not in CAM_METHODS:
            raise ArtidError(
                f"unknown activation map {self.cam!r}; expected one of {', '.join(CAM_METHODS)}"
            )
        if self.threshold != "otsu" and not (
            isinstance(self.threshold, (int, float)) and 0 < self.threshold < 1
        ):
            raise ArtidError(f"crop threshold must be in (0, 1) or 'otsu', got {self.threshold!r}")
        if not (
            isinstance(self.margin, (int, float))
            and math.isfinite(self.margin)
            and 0 <= self.margin <= MAX_MARGIN
        ):
            raise ArtidError(f"crop margin must be in [0, {MAX_MARGIN:g}], got {self.margin!r}")
        if self.cam_size is not None and self.cam_size < 32:
            raise ArtidError(f"cam size must be at least 32 pixels, got {self.cam_size}")
        if not 0 < self.centre_share <= 1:
            raise ArtidError(f"centre share must be in (0, 1], got {self.centre_share}")

    def spec(self) -> dict[str, Any]:
        """JSON-able record (descriptor manifests, resume checks)."""
        if self.method == "centre":
            return {"method": "centre", "share": self.centre_share}
        return {
            "method": "cam",
            "cam": self.cam,
            "threshold": self.threshold,
            "margin": self.margin,
            "cam_size": self.cam_size,
        }


class Cropper:
    """Finds and cuts out the artwork of decoded photos.

    Args:
        emb: the embedder whose trunk makes the activation maps (an optimised copy is fine).
        settings: the crop settings.
    """

    def __init__(self, emb: Embedder, settings: CropSettings) -> None:
        self.emb = emb
        self.settings = settings

    def box(self, pixels: np.ndarray) -> Box:
        """The box of the artwork in an (H, W, 3) uint8 photo, before the margin (a blank or
        uniform photo: the whole photo)."""
        h, w = pixels.shape[:2]
        s = self.settings
        if s.method == "centre":
            return centre_box(w, h, s.centre_share)
        if is_blank(pixels):
            return (0.0, 0.0, float(w), float(h))
        x = torch.tensor(pixels).permute(2, 0, 1)[None].float().div_(255.0)
        heat = activation_maps(self.emb, x, s.cam, s.cam_size)[0].cpu()
        return map_box(upsample(heat, h, w), s.threshold)

    def crop_box(self, pixels: np.ndarray) -> tuple[int, int, int, int]:
        """Integer ``(x0, y0, x1, y1)`` of the crop: the box grown by the margin (centre: as is)."""
        h, w = pixels.shape[:2]
        box = self.box(pixels)
        if self.settings.method == "cam":
            box = expand(box, self.settings.margin, w, h)
        return pixel_box(box, w, h)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """The cropped photo, (h, w, 3) uint8, contiguous."""
        x0, y0, x1, y1 = self.crop_box(pixels)
        return np.ascontiguousarray(pixels[y0:y1, x0:x1])
