"""Finding the artwork in a photo: activation maps of a descriptor model, boxes, content-aware crop.

>>> from artid.localisation import CropSettings, Cropper
>>> cropper = Cropper(emb, CropSettings())          # CAM box + 10% margin
>>> cropped = cropper(pixels)                       # (H, W, 3) uint8 -> the artwork's part of it
"""

from artid.localisation.boxes import Box, centre_box, expand, iou, map_box, mask_box, quad_box
from artid.localisation.cam import CAM_METHODS, activation_maps, upsample
from artid.localisation.crop import CROP_METHODS, Cropper, CropSettings
from artid.localisation.placements import load_placements

__all__ = [
    "CAM_METHODS",
    "CROP_METHODS",
    "Box",
    "CropSettings",
    "Cropper",
    "activation_maps",
    "centre_box",
    "expand",
    "iou",
    "load_placements",
    "map_box",
    "mask_box",
    "quad_box",
    "upsample",
]
