"""Boxes in photo pixels: IoU, the box of a quadrilateral, centred boxes, margins, masks -> boxes.

A box is ``(x0, y0, x1, y1)`` in continuous pixel coordinates: ``(0, 0)`` is the top-left corner
of the top-left pixel, so pixel column ``i`` spans ``[i, i + 1)`` and a ``W x H`` photo is the box
``(0, 0, W, H)``. Placements of the synthetic benchmark use the same convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from artid.errors import ArtidError

Box = tuple[float, float, float, float]
#: A map whose range is at most this share of its largest magnitude is flat (float32 rounding is
#: about 1e-7 of it), whatever its scale.
FLAT_RANGE = 1e-6


def area(box: Box) -> float:
    """Area of a box (0 for an empty or inverted one)."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when both are empty)."""
    inter = area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def clip(box: Box, width: float, height: float) -> Box:
    """The part of a box inside a ``width x height`` photo."""
    return (
        min(max(box[0], 0.0), width),
        min(max(box[1], 0.0), height),
        min(max(box[2], 0.0), width),
        min(max(box[3], 0.0), height),
    )


def quad_box(quad: Sequence[Sequence[float]], width: float, height: float) -> Box:
    """Bounding box of a quadrilateral (corners ``[x, y]``), clipped to the photo."""
    pts = np.asarray(quad, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        raise ArtidError(f"expected a polygon of [x, y] corners, got shape {pts.shape}")
    return clip(
        (
            float(pts[:, 0].min()),
            float(pts[:, 1].min()),
            float(pts[:, 0].max()),
            float(pts[:, 1].max()),
        ),
        width,
        height,
    )


def centre_box(width: float, height: float, share: float) -> Box:
    """The centred box whose sides are ``share`` of the photo's sides (area ``share**2``)."""
    if not 0 < share <= 1:
        raise ArtidError(f"centre share must be in (0, 1], got {share}")
    mx, my = width * (1 - share) / 2, height * (1 - share) / 2
    return (mx, my, width - mx, height - my)


def expand(box: Box, margin: float, width: float, height: float) -> Box:
    """Grow each side of a box by ``margin`` times its width / height, clipped to the photo."""
    dx, dy = (box[2] - box[0]) * margin, (box[3] - box[1]) * margin
    return clip((box[0] - dx, box[1] - dy, box[2] + dx, box[3] + dy), width, height)


def pixel_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer ``(x0, y0, x1, y1)`` covering the box (rounded outward), in the photo, >= 1 px."""
    x0 = min(max(int(np.floor(box[0])), 0), width - 1)
    y0 = min(max(int(np.floor(box[1])), 0), height - 1)
    x1 = max(min(int(np.ceil(box[2])), width), x0 + 1)
    y1 = max(min(int(np.ceil(box[3])), height), y0 + 1)
    return x0, y0, x1, y1


def otsu(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of values in [0, 1] (the cut maximising the between-class variance)."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    p = hist.astype(np.float64) / max(1, hist.sum())
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centres)
    total = m0[-1]
    w1 = 1 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total * w0 - m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1
    return float(edges[int(np.argmax(between)) + 1])


def mask_box(mask: np.ndarray) -> Box | None:
    """Box of the largest 4-connected component of a boolean (H, W) mask, or None if it is empty."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    ys, xs = np.nonzero(labels == int(np.argmax(sizes)) + 1)
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def map_box(heat: np.ndarray, threshold: float | str = 0.5) -> Box:
    """Box of the artwork from an activation map at photo resolution.

    The map is scaled to [0, 1] (min -> 0, max -> 1); pixels at or above the threshold (a share of
    that range, or ``"otsu"``) form a mask whose largest connected component gives the box.
    A flat map (range at most :data:`FLAT_RANGE` of its magnitude) or one that is not finite
    gives the whole photo.

    Args:
        heat: (H, W) activation map, already resized to the photo.
        threshold: share of the map's range in (0, 1), or ``"otsu"``.
    """
    h, w = heat.shape
    lo, hi = float(heat.min()), float(heat.max())
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo <= FLAT_RANGE * max(-lo, hi):
        return (0.0, 0.0, float(w), float(h))
    norm = (heat - lo) / (hi - lo)
    if threshold == "otsu":
        cut = otsu(norm)
    elif isinstance(threshold, (int, float)) and 0 < threshold < 1:
        cut = float(threshold)
    else:
        raise ArtidError(f"threshold must be a share in (0, 1) or 'otsu', got {threshold!r}")
    box = mask_box(norm >= cut)
    return box if box is not None else (0.0, 0.0, float(w), float(h))
