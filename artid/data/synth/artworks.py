"""Procedural exhibits: rendering a design at any size (the one entry point, :func:`render`).

A :class:`Design` fixes everything that makes an exhibit that exhibit: kind (department),
style, proportions, palette, motifs and the seeds of its composition and details. Rendering a
design at any size gives the same work; the view (pose, light, side of a coin) is a separate
argument, so a class's studio photos and its visitor photos show one object.

Flat kinds (painting, print, textile, photograph) render edge to edge with a full alpha
mask; objects (vessel, sculpture, coin) render on a neutral ground with their silhouette
as alpha, to be put on a studio backdrop or a gallery plinth.

Designs and their relatives live in :mod:`~artid.data.synth.designs`, the flat renderers in
:mod:`~artid.data.synth.flat`, the objects in :mod:`~artid.data.synth.objects`; this module
re-exports the design names so ``from artid.data.synth.artworks import Design`` keeps working.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from artid.data.synth.designs import (
    FLAT_KINDS,
    KIND_WEIGHTS,
    KINDS,
    RELATIONS,
    SCENES,
    STYLES,
    Design,
    Pose,
    is_flat,
    make_design,
    make_palette,
    size_for,
    vary,
)
from artid.data.synth.drawing import resize_field
from artid.data.synth.flat import draw_flat
from artid.data.synth.objects import draw_object

#: Works are drawn at least this large and then reduced with area averaging, so that fine
#: detail (hatching, weave, legends) turns into the tone it would have in a real small photo
#: instead of aliasing differently at every size.
MIN_DRAW_SIZE = 256

#: What draws an exhibit for a photo: ``draw(long_side, pose) -> (rgb, alpha)`` as :func:`render`
#: returns them. The photos of a procedural exhibit draw with ``render``; those of a real image
#: (:mod:`artid.data.synth.sources`) with the image itself, in the same studio and gallery code.
Draw = Callable[[int, "Pose"], tuple[np.ndarray, np.ndarray]]


def drawer(design: Design, draw: Draw | None = None) -> Draw:
    """``draw`` where given, else :func:`render` of ``design``."""
    if draw is not None:
        return draw
    return lambda long_side, pose: render(design, long_side, pose)


def render(design: Design, long_side: int, pose: Pose = Pose()) -> tuple[np.ndarray, np.ndarray]:
    """Render an exhibit.

    Args:
        design: the exhibit.
        long_side: longer side of the output in pixels.
        pose: viewpoint and light (objects only; flat works ignore it).

    Returns:
        rgb (H, W, 3) float32 in [0, 1] and alpha (H, W) float32 (1 on the work).
    """
    factor = min(4, -(-MIN_DRAW_SIZE // long_side))
    rgb, alpha = _draw(design, long_side * factor, pose)
    if factor > 1:
        h, w = size_for(design, long_side)
        rgb, alpha = downsample(rgb, h, w), downsample(alpha, h, w)
    return np.clip(rgb, 0, 1).astype(np.float32), np.clip(alpha, 0, 1).astype(np.float32)


def _draw(design: Design, long_side: int, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    h, w = size_for(design, long_side)
    if is_flat(design):
        return draw_flat(design, h, w), np.ones((h, w), np.float32)
    return draw_object(design, h, w, pose)


def downsample(field: np.ndarray, h: int, w: int) -> np.ndarray:
    """Area-averaging reduction of an (H, W) or (H, W, 3) float image to (h, w)."""
    if field.ndim == 2:
        return np.asarray(
            Image.fromarray(field.astype(np.float32), mode="F").resize((w, h), Image.Resampling.BOX)
        )
    return np.stack([downsample(field[..., c], h, w) for c in range(field.shape[-1])], axis=-1)


def resample(field: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bicubic resize of an (H, W) or (H, W, 3) float image."""
    if field.ndim == 2:
        return resize_field(field, h, w)
    return np.stack([resize_field(field[..., c], h, w) for c in range(field.shape[-1])], axis=-1)


__all__ = [
    "FLAT_KINDS",
    "KIND_WEIGHTS",
    "KINDS",
    "MIN_DRAW_SIZE",
    "RELATIONS",
    "SCENES",
    "STYLES",
    "Design",
    "Draw",
    "Pose",
    "downsample",
    "drawer",
    "is_flat",
    "make_design",
    "make_palette",
    "render",
    "resample",
    "size_for",
    "vary",
]
