"""Studio photos: the museum's own pictures of an exhibit (the database images).

View 0 is the canonical photo (the whole work, or the object from the front). Further
views are what the Met's multi-image records hold: other sides of an object, the reverse
of a coin, a detail of a painting, the back of a canvas, the work in its frame.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from artid.data.synth.artworks import Design, Draw, Pose, drawer, is_flat, resample
from artid.data.synth.drawing import blur, to_pil, value_noise
from artid.data.synth.room import frame_work
from artid.data.synth.seeding import rng_for

#: Backdrops of studio shots: seamless paper in greys and a few coloured cloths.
_BACKDROPS = [
    [0.85, 0.85, 0.85],
    [0.95, 0.95, 0.94],
    [0.12, 0.12, 0.13],
    [0.55, 0.58, 0.62],
    [0.8, 0.76, 0.68],
    [0.2, 0.3, 0.5],
    [0.45, 0.15, 0.15],
    [0.3, 0.4, 0.3],
]


def _backdrop(design: Design, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    # the museum's usual backdrop for this work, sometimes another one
    usual = rng_for(design.composition, "backdrop").choice(_BACKDROPS[:5])
    col = np.asarray(usual if rng.random() < 0.6 else rng.choice(_BACKDROPS), np.float32)
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return col * (1.05 - 0.2 * yy) * np.ones((1, w, 1), np.float32)


def _back_of_canvas(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    weave = value_noise(rng, h, w, cells=(8, 32, 96))
    linen = np.asarray([0.78, 0.7, 0.55], np.float32) * (0.85 + 0.25 * weave)[..., None]
    bar = max(2, int(0.07 * min(h, w)))
    wood = np.asarray([0.6, 0.45, 0.28], np.float32)
    linen[:bar], linen[-bar:], linen[:, :bar], linen[:, -bar:] = wood, wood, wood, wood
    if rng.random() < 0.5:
        linen[h // 2 - bar // 2 : h // 2 + bar // 2] = wood
    y0, x0 = int(rng.uniform(0.15, 0.6) * h), int(rng.uniform(0.15, 0.6) * w)  # a collection label
    linen[y0 : y0 + max(2, h // 10), x0 : x0 + max(2, w // 5)] = 0.95
    return linen


def studio_photo(
    design: Design, view: int, rng: np.random.Generator, long_side: int, draw: Draw | None = None
) -> Image.Image:
    """The museum's photo number ``view`` of an exhibit, longer side ``long_side`` (drawn by
    ``draw``, default :func:`~artid.data.synth.artworks.render` of ``design``)."""
    draw = drawer(design, draw)
    if is_flat(design):
        rgb, _ = draw(long_side, Pose())
        h, w = rgb.shape[:2]
        r = rng.random()
        if view > 0 and r < 0.45:  # a detail
            zoom = rng.uniform(1.5, 3.0)
            ch, cw = max(4, int(h / zoom)), max(4, int(w / zoom))
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            big, _ = draw(int(long_side * zoom), Pose())
            H2, W2 = big.shape[:2]
            ys, xs = int(y0 / h * H2), int(x0 / w * W2)
            rgb = big[ys : ys + int(ch / h * H2), xs : xs + int(cw / w * W2)]
            k = long_side / max(rgb.shape[:2])
            rgb = resample(rgb, max(4, int(rgb.shape[0] * k)), max(4, int(rgb.shape[1] * k)))
        elif view > 0 and design.kind == "painting" and r < 0.55:
            rgb = _back_of_canvas(h, w, rng)
        elif view > 0 and r < 0.75:  # in its frame
            rgb = frame_work(rgb, rng, design.kind)
            k = long_side / max(rgb.shape[:2])
            rgb = resample(rgb, max(4, int(rgb.shape[0] * k)), max(4, int(rgb.shape[1] * k)))
        elif view == 0 and design.kind == "painting" and r < 0.3:  # photographed in its frame
            rgb = frame_work(rgb, rng, design.kind)
            k = long_side / max(rgb.shape[:2])
            rgb = resample(rgb, max(4, int(rgb.shape[0] * k)), max(4, int(rgb.shape[1] * k)))
        elif view > 0:  # another shot: slight rotation on a backdrop
            img = to_pil(rgb).rotate(
                float(rng.normal(0, 2.0)),
                resample=Image.Resampling.BILINEAR,
                expand=False,
                fillcolor=(230, 230, 228),
            )
            rgb = np.asarray(img, np.float32) / 255.0
    else:
        if design.kind == "coin":
            pose = Pose(angle=0.0, light=(-0.5, -0.7), side=view % 2)
        elif view == 0:
            pose = Pose()
        else:
            pose = Pose(
                angle=float(rng.uniform(0.5, 2 * math.pi - 0.5)),
                light=(float(rng.uniform(-0.7, 0.7)), float(rng.uniform(-0.8, -0.3))),
            )
        fill = rng.uniform(0.78, 0.92)
        obj, alpha = draw(int(long_side * fill), pose)
        oh, ow = obj.shape[:2]
        if oh >= ow:  # (the object is at most 92% of the long side, so it always fits)
            H, W = long_side, min(long_side, max(ow + 8, int(long_side * 0.8)))
        else:
            H, W = min(long_side, max(oh + 8, int(long_side * 0.8))), long_side
        rgb = _backdrop(design, H, W, rng)
        y0, x0 = (H - oh) // 2, (W - ow) // 2
        shadow = np.zeros((H, W), np.float32)
        shadow[y0 + oh - max(1, oh // 20) : y0 + oh, x0 : x0 + ow] = alpha[-1:, :].max() * 0.8
        shadow = blur(shadow, 0.02 * long_side)
        rgb = rgb * (1 - 0.5 * shadow)[..., None]
        region = rgb[y0 : y0 + oh, x0 : x0 + ow]
        rgb[y0 : y0 + oh, x0 : x0 + ow] = region * (1 - alpha[..., None]) + obj * alpha[..., None]
    if is_flat(design) and rng.random() < 0.2:  # shot with a margin of the copy stand around it
        h, w = rgb.shape[:2]
        m = max(1, int(rng.uniform(0.04, 0.12) * max(h, w)))
        board = _backdrop(design, h + 2 * m, w + 2 * m, rng)
        board[m : m + h, m : m + w] = rgb
        k = long_side / max(board.shape[:2])
        rgb = resample(board, max(4, int(board.shape[0] * k)), max(4, int(board.shape[1] * k)))
    rgb = _campaign(rgb, rng, long_side)
    return to_pil(rgb)


#: Reference colours of a photographer's colour target (a row of patches beside the work).
_TARGET = np.asarray(
    [
        [0.45, 0.32, 0.26],
        [0.76, 0.58, 0.5],
        [0.37, 0.48, 0.61],
        [0.35, 0.42, 0.25],
        [0.5, 0.5, 0.69],
        [0.38, 0.74, 0.67],
        [0.85, 0.47, 0.17],
        [0.27, 0.36, 0.65],
        [0.76, 0.33, 0.38],
        [0.36, 0.24, 0.42],
        [0.62, 0.73, 0.25],
        [0.88, 0.63, 0.18],
        [0.95, 0.95, 0.95],
        [0.6, 0.6, 0.6],
        [0.3, 0.3, 0.3],
        [0.05, 0.05, 0.05],
    ],
    np.float32,
)


def _campaign(rgb: np.ndarray, rng: np.random.Generator, long_side: int) -> np.ndarray:
    """The photography campaign a museum photo comes from: the nuisances of a real collection's
    records (a colour target and ruler beside the work, old black-and-white record shots,
    white balance and exposure of the day), which vary across the database, not with the work."""
    r = rng.random()
    h, w = rgb.shape[:2]
    if r < 0.15:  # colour target and ruler in a strip beside the work
        band = max(4, int(0.14 * max(h, w)))
        strip = np.full((band, w, 3), 0.5, np.float32)
        n = len(_TARGET)
        cell = w / n
        for i, col in enumerate(_TARGET):
            strip[band // 8 : band // 2, int(i * cell) + 1 : int((i + 1) * cell) - 1] = col
        ticks = (np.arange(w) // max(1, int(w / 40))) % 2 == 0
        strip[int(band * 0.65) : int(band * 0.9)] = np.where(ticks[:, None], 0.05, 0.95)
        rgb = (
            np.concatenate([rgb, strip], axis=0)
            if rng.random() < 0.7
            else np.concatenate([strip, rgb], axis=0)
        )
        k = long_side / max(rgb.shape[:2])
        if k < 1:
            from artid.data.synth.artworks import resample

            rgb = resample(rgb, max(4, int(rgb.shape[0] * k)), max(4, int(rgb.shape[1] * k)))
    elif r < 0.23:  # an old black-and-white record photo
        grey = rgb @ np.asarray([0.299, 0.587, 0.114], np.float32)
        grey = np.clip((grey - 0.5) * rng.uniform(1.1, 1.5) + 0.5, 0, 1)
        grey = grey + rng.normal(0, 0.03, grey.shape).astype(np.float32)
        tone = (
            np.asarray([1.0, 0.97, 0.9], np.float32)
            if rng.random() < 0.5
            else np.ones(3, np.float32)
        )
        rgb = grey[..., None] * tone
    elif r < 0.33:  # faded colour film: a cast and lower contrast
        cast = np.asarray(
            rng.choice([[1.1, 1.0, 0.8], [1.08, 0.92, 1.0], [0.92, 1.0, 1.08]]), np.float32
        )
        rgb = (rgb - 0.5) * rng.uniform(0.7, 0.9) + 0.5 + 0.05
        rgb = rgb * cast
    if rng.random() < 0.35:  # uneven lighting across the work
        h, w = rgb.shape[:2]
        a = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[-1 : 1 : complex(0, h), -1 : 1 : complex(0, w)].astype(np.float32)
        rgb = rgb * (1.0 + rng.uniform(0.08, 0.2) * (xx * np.cos(a) + yy * np.sin(a)))[..., None]
    gain = np.clip(1.0 + rng.normal(0, 0.04, 3), 0.88, 1.12).astype(np.float32) * rng.uniform(
        0.9, 1.1
    )
    return np.clip(rgb * gain, 0, 1)
