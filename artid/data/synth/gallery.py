"""Visitor photos: an exhibit photographed in a gallery, and the camera that took it.

The domain shift between studio and visitor photos is what the benchmark is about:
the exhibit fills only part of the frame at a varying scale, seen in perspective and
sometimes cut by the edge of the photo; it hangs in a frame on a wall or stands on a
plinth or in a vitrine, in one of a few rooms shared by many photos (common context);
the light has a colour cast and a spotlight fall-off; glass gives glare; visitors stand
in front; and the camera adds blur, noise and JPEG.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from artid.data.synth.artworks import Design, Draw, Pose, drawer, is_flat
from artid.data.synth.camera import camera, photo_size
from artid.data.synth.drawing import blur, perspective_coeffs, to_pil, value_noise
from artid.data.synth.room import N_ROOMS, add_visitors, frame_work, room

__all__ = [
    "CUT_SHARE",
    "N_ROOMS",
    "add_visitors",
    "camera",
    "frame_work",
    "map_points",
    "photo_size",
    "room",
    "visitor_photo",
    "visitor_photo_placed",
]

#: Share of visitor photos whose exhibit is shifted sideways by 10-30% of its width (cut by the
#: edge).
CUT_SHARE = 0.1


def _place(
    canvas: np.ndarray,
    img: np.ndarray,
    alpha: np.ndarray,
    quad: list[tuple[float, float]],
    shadow: float,
) -> np.ndarray:
    """Warp ``img`` (with ``alpha``) onto ``quad`` (TL, TR, BR, BL output points) of the canvas."""
    H, W = canvas.shape[:2]
    h, w = img.shape[:2]
    coeffs = perspective_coeffs([(0, 0), (w, 0), (w, h), (0, h)], quad)
    rgba = np.concatenate([img, alpha[..., None]], axis=-1)
    pil = Image.fromarray((np.clip(rgba, 0, 1) * 255 + 0.5).astype(np.uint8), "RGBA")
    warped = pil.transform((W, H), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    arr = np.asarray(warped, np.float32) / 255.0
    a = arr[..., 3:4]
    if shadow > 0:
        off = max(1, int(0.012 * max(H, W)))
        sh = blur(np.roll(np.roll(a[..., 0], off, 0), off, 1), 0.01 * max(H, W))
        canvas = canvas * (1 - shadow * sh)[..., None]
    return canvas * (1 - a) + arr[..., :3] * a


def visitor_photo(
    design: Design, seed: int, rng: np.random.Generator, long_side: int, draw: Draw | None = None
) -> Image.Image:
    """A visitor's photo of an exhibit in a gallery (:func:`visitor_photo_placed`, no placement)."""
    return visitor_photo_placed(design, seed, rng, long_side, draw)[0]


def map_points(
    src: list[tuple[float, float]],
    dst: list[tuple[float, float]],
    points: list[tuple[float, float]],
) -> list[tuple[float, float]]:
    """Map ``points`` by the homography that takes the four ``src`` points to the four ``dst``."""
    # PIL's convention: perspective_coeffs maps its 2nd argument to its 1st
    a, b, c, d, e, f, g, h = perspective_coeffs(dst, src)
    out = []
    for x, y in points:
        den = g * x + h * y + 1.0
        out.append(((a * x + b * y + c) / den, (d * x + e * y + f) / den))
    return out


def visitor_photo_placed(
    design: Design, seed: int, rng: np.random.Generator, long_side: int, draw: Draw | None = None
) -> tuple[Image.Image, list[tuple[float, float]]]:
    """A visitor's photo of an exhibit in a gallery, and where the exhibit is in it.

    Args:
        design: the exhibit photographed.
        seed: benchmark seed (selects the shared rooms).
        rng: this photo's random source.
        long_side: longer side of the photo in pixels.
        draw: what draws the exhibit (default: :func:`~artid.data.synth.artworks.render` of
            ``design``; a real image's drawer, where ``design`` only gives its kind).

    Returns:
        RGB image (before JPEG compression) and the exhibit's quadrilateral in it: the corners of
        the rendered work (top-left, top-right, bottom-right, bottom-left of its image; without
        mat, frame or plinth; for objects, the box the object was rendered in) in continuous pixel
        coordinates of the photo ((0, 0) the top-left corner of the top-left pixel). The camera
        effects after placement move nothing. Corners lie outside the photo where visitors frame
        the work tightly or cut it (:data:`CUT_SHARE` of the photos are shifted sideways for that).
        Measured on 200 Met queries (seed 0, 96 px): the exhibit's part inside the photo covers
        16-81% of it (median 51%); at least 61% of the quadrilateral is inside the photo (median
        100%), and half the photos have a corner outside.
    """
    draw = drawer(design, draw)
    H, W = photo_size(rng, long_side)
    canvas, _, tint = room(seed, int(rng.integers(0, N_ROOMS)), H, W, rng)
    for _ in range(int(rng.integers(0, 3))):  # neighbouring works on the wall
        x0, fw = rng.uniform(-0.3, 1.0) * W, rng.uniform(0.1, 0.3) * W
        y0, fh = rng.uniform(0.05, 0.35) * H, rng.uniform(0.15, 0.35) * H
        if abs((x0 + fw / 2) / W - 0.5) < 0.3:
            continue
        blob = value_noise(rng, int(fh) + 2, int(fw) + 2, cells=(2, 5))
        col = rng.uniform(0.1, 0.9, 3).astype(np.float32)
        patch = col * (0.5 + blob)[..., None] * 0.8
        ys, xs = (
            slice(max(0, int(y0)), min(H, int(y0 + fh))),
            slice(max(0, int(x0)), min(W, int(x0 + fw))),
        )
        py, px = ys.start - int(y0), xs.start - int(x0)
        if ys.stop > ys.start and xs.stop > xs.start:
            canvas[ys, xs] = patch[py : py + ys.stop - ys.start, px : px + xs.stop - xs.start]
    flat = is_flat(design)
    # share of the photo the work fills: mostly framed closely, sometimes with a lot of room
    frac = float(min(0.98, 0.5 + 0.5 * rng.beta(4.0, 1.6)))
    if design.kind == "coin":
        frac *= 0.85  # small, in a case
    pose = Pose(
        angle=float(rng.normal(0, 0.4))
        if design.kind == "sculpture"  # mostly from the front
        else float(rng.normal(0, 0.8))
        if design.kind == "vessel"
        else 0.0,
        light=(float(rng.uniform(-0.7, 0.7)), float(rng.uniform(-0.8, -0.2))),
        side=int(rng.random() < 0.2) if design.kind == "coin" else 0,
    )
    if flat:
        art, alpha = draw(max(16, int(frac * max(H, W) / 1.1)), pose)
        rh, rw = art.shape[:2]
        art = frame_work(art, rng, design.kind)
        # mat and frame are as wide on every side
        oy, ox = (art.shape[0] - rh) / 2, (art.shape[1] - rw) / 2
        work = [(ox, oy), (ox + rw, oy), (ox + rw, oy + rh), (ox, oy + rh)]
        alpha = np.ones(art.shape[:2], np.float32)
        h, w = art.shape[:2]
        k = min(1.0, frac * max(H, W) * 1.1 / max(h, w), 0.98 * H / h * 1.3, 0.98 * W / w * 1.3)
        h, w = max(4, int(h * k)), max(4, int(w * k))
        cx = W * rng.uniform(0.35, 0.65)
        cy = H * rng.uniform(0.4, 0.55)
    else:  # on a plinth that runs out of the bottom of the photo
        art, alpha = draw(max(16, int(frac * H * 0.92)), pose)
        oh, ow = art.shape[:2]
        ph = max(2, int(oh * rng.uniform(0.3, 0.8)))
        pw = max(ow, int(ow * rng.uniform(1.0, 1.4)))
        pcol = np.asarray(
            rng.choice([[0.92, 0.92, 0.9], [0.15, 0.15, 0.16], [0.6, 0.55, 0.5]]), np.float32
        )
        full = np.zeros((oh + ph, pw, 3), np.float32)
        fa = np.zeros((oh + ph, pw), np.float32)
        ox = (pw - ow) // 2
        full[oh:] = pcol * np.linspace(1.0, 0.8, ph, dtype=np.float32)[:, None, None]
        full[oh : oh + max(1, ph // 12)] = pcol * 1.1
        fa[oh:] = 1
        full[:oh, ox : ox + ow] = art
        fa[:oh, ox : ox + ow] = alpha
        art, alpha = full, fa
        work = [(ox, 0.0), (ox + ow, 0.0), (ox + ow, oh), (ox, oh)]
        h, w = art.shape[:2]
        cx = W * rng.uniform(0.35, 0.65)
        top = H * rng.uniform(0.02, max(0.03, 1.0 - oh / H - 0.02))  # top of the object
        cy = top + h / 2
    if rng.random() < CUT_SHARE:  # partly out of the photo
        cx += rng.choice([-1, 1]) * w * rng.uniform(0.1, 0.3)
    yaw = rng.uniform(-0.25, 0.25)
    roll = rng.normal(0, 0.04)
    x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    shrink_l, shrink_r = max(0.0, yaw) * h * 0.5, max(0.0, -yaw) * h * 0.5
    # the far side looks narrower
    in_l, in_r = abs(yaw) * w * 0.15 * (yaw > 0), abs(yaw) * w * 0.15 * (yaw < 0)
    quad = [
        (x0 + in_l, y0 + shrink_l),
        (x1 - in_r, y0 + shrink_r),
        (x1 - in_r, y1 - shrink_r),
        (x0 + in_l, y1 - shrink_l),
    ]
    cr, sr = math.cos(roll), math.sin(roll)
    quad = [
        (cx + (x - cx) * cr - (y - cy) * sr, cy + (x - cx) * sr + (y - cy) * cr) for x, y in quad
    ]
    art = (
        art
        * (0.8 + 0.3 * value_noise(rng, art.shape[0], art.shape[1], cells=(2, 4)))[..., None] ** 0.5
    )
    canvas = _place(canvas, art, alpha, quad, shadow=0.35 if flat else 0.5)
    ah, aw = art.shape[:2]
    placed = map_points([(0, 0), (aw, 0), (aw, ah), (0, ah)], quad, work)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    spot = np.exp(-(((xx - cx) / (W * 0.6)) ** 2 + ((yy - cy) / (H * 0.7)) ** 2))
    canvas = canvas * (0.7 + 0.4 * spot)[..., None]
    if rng.random() < (0.25 if flat else 0.15):  # glare on glass or varnish
        gx, gy = cx + rng.uniform(-0.4, 0.4) * w, cy + rng.uniform(-0.4, 0.4) * h
        gr = rng.uniform(0.04, 0.15) * max(w, h)
        glare = np.exp(-(((xx - gx) / gr) ** 2 + ((yy - gy) / (gr * rng.uniform(0.3, 1.0))) ** 2))
        canvas = canvas + rng.uniform(0.2, 0.6) * glare[..., None]
    if not flat and rng.random() < 0.2:  # vitrine glass: faint reflections
        streak = 0.5 + 0.5 * np.sin((xx + yy * rng.uniform(-1, 1)) / max(W, H) * rng.uniform(6, 20))
        canvas = canvas * 0.92 + 0.12 * streak[..., None]
    # the Met's annotators discarded photos showing visitors' faces: a visitor is rarely in the way
    canvas = add_visitors(canvas, rng, int(rng.random() < 0.1))
    return to_pil(camera(canvas, rng, tint)), placed
