"""Distractor photos: reproductions of other artworks, and non-art photos (streets, nature,
textures, empty galleries, crowds).

They go through the same camera as the visitor photos (colour cast, blur, noise, JPEG),
so that only their content, not the way they were taken, sets them apart.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from artid.data.synth.artworks import Design, Draw, make_palette
from artid.data.synth.camera import camera, photo_size
from artid.data.synth.drawing import colour_map, draw_motif, to_pil, value_noise
from artid.data.synth.room import N_ROOMS, add_visitors, room
from artid.data.synth.studio import studio_photo

#: Categories of non-art photos (written as the distractor's ``category``).
NOART_CATEGORIES = ("street", "nature", "texture", "empty gallery", "crowd", "tabletop")


def _street(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    sky = colour_map(
        np.linspace(0, 1, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32),
        np.asarray([[0.45, 0.6, 0.85], [0.85, 0.88, 0.92]], np.float32),
    )
    img = to_pil(sky)
    dr = ImageDraw.Draw(img)
    ground = rng.uniform(0.65, 0.85) * h
    x = -rng.uniform(0, 0.1) * w
    while x < w:
        bw, bh = rng.uniform(0.12, 0.35) * w, rng.uniform(0.3, 0.6) * h
        col = tuple(int(c) for c in rng.uniform(60, 200, 3))
        dr.rectangle([x, ground - bh, x + bw, ground], fill=col)
        win = tuple(int(c) for c in rng.uniform(20, 90, 3))
        cols, rows = int(rng.integers(2, 6)), int(rng.integers(3, 8))
        for i in range(cols):
            for j in range(rows):
                wx, wy = x + bw * (i + 0.3) / cols, ground - bh + bh * (j + 0.25) / rows
                dr.rectangle([wx, wy, wx + bw * 0.4 / cols, wy + bh * 0.45 / rows], fill=win)
        x += bw + rng.uniform(0, 0.05) * w
    dr.rectangle([0, ground, w, h], fill=(70, 70, 72))
    for _ in range(int(rng.integers(2, 6))):
        lx = rng.uniform(0, w)
        dr.line(
            [(lx, ground + (h - ground) * 0.5), (lx + w * 0.08, ground + (h - ground) * 0.5)],
            fill=(220, 220, 200),
            width=max(1, h // 100),
        )
    return np.asarray(img, np.float32) / 255.0


def _nature(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    sky_h = rng.uniform(0.2, 0.5)
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    grass = value_noise(rng, h, w, cells=(6, 24, 96), persistence=0.7)
    greens = np.asarray([[0.1, 0.25, 0.08], [0.3, 0.5, 0.15], [0.55, 0.65, 0.3]], np.float32)
    rgb = colour_map(grass, greens)
    sky = colour_map(yy / sky_h, np.asarray([[0.5, 0.65, 0.9], [0.85, 0.9, 0.95]], np.float32))
    line = sky_h + 0.05 * (value_noise(rng, 1, w, cells=(4, 12))[0] - 0.5)
    rgb = np.where((yy < line[None, :])[..., None], sky, rgb)
    img = to_pil(rgb)
    dr = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 6))):
        draw_motif(
            dr,
            "tree",
            rng.uniform(0, w),
            rng.uniform(sky_h, 0.8) * h,
            rng.uniform(0.08, 0.3) * h,
            fill=tuple(int(c) for c in rng.uniform([20, 60, 10], [60, 120, 40])),
            rng=rng,
            line=(60, 40, 20),
        )
    return np.asarray(img, np.float32) / 255.0


def _texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(0, 4))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    noise = value_noise(rng, h, w, cells=(8, 32, 128), persistence=0.6)
    if kind == 0:  # bricks
        bh, bw = rng.uniform(0.04, 0.08), rng.uniform(0.1, 0.2)
        row = np.floor(yy / bh)
        off = (row % 2) * bw / 2
        mortar = ((yy % bh) < bh * 0.12) | (((xx + off) % bw) < bw * 0.06)
        col = np.asarray(rng.uniform([0.45, 0.15, 0.1], [0.75, 0.35, 0.25]), np.float32)
        rgb = np.where(mortar[..., None], np.float32(0.75), col * (0.75 + 0.4 * noise)[..., None])
    elif kind == 1:  # wood grain
        rings = 0.5 + 0.5 * np.sin((xx * rng.uniform(20, 60) + noise * 6) * np.pi)
        rgb = np.asarray([0.55, 0.38, 0.22], np.float32) * (0.7 + 0.4 * rings)[..., None]
    elif kind == 2:  # tiles
        t = rng.uniform(0.08, 0.2)
        grout = ((yy % t) < t * 0.07) | ((xx % t) < t * 0.07)
        col = make_palette(rng, 2)
        checker = ((np.floor(yy / t) + np.floor(xx / t)) % 2).astype(np.int64)
        rgb = np.where(
            grout[..., None], np.float32(0.85), col[checker] * (0.9 + 0.15 * noise)[..., None]
        )
    else:  # foliage / gravel
        blobs = value_noise(rng, h, w, cells=(32, 64, 128), persistence=0.9)
        rgb = colour_map(blobs, make_palette(rng, 3, muted=True))
    return rgb.astype(np.float32)


def _tabletop(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    rgb = _texture(h, w, rng) * 0.9
    img = to_pil(rgb)
    dr = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 6))):
        cx, cy, r = (
            rng.uniform(0.1, 0.9) * w,
            rng.uniform(0.2, 0.9) * h,
            rng.uniform(0.05, 0.2) * min(h, w),
        )
        col = tuple(int(c) for c in rng.uniform(30, 240, 3))
        if rng.random() < 0.5:
            dr.ellipse([cx - r, cy - r * 0.7, cx + r, cy + r * 0.7], fill=col, outline=(30, 30, 30))
        else:
            dr.rounded_rectangle(
                [cx - r, cy - r * 0.6, cx + r, cy + r * 0.6], radius=r * 0.2, fill=col
            )
    return np.asarray(img, np.float32) / 255.0


def reproduction_photo(
    design: Design, rng: np.random.Generator, long_side: int, draw: Draw | None = None
) -> Image.Image:
    """A reproduction of an artwork that is not in the collection, as found on the web: the
    work photographed by its own museum (the same kind of picture as the database's studio
    photos), lightly recompressed and colour-shifted by its trip through the web."""
    rgb = np.asarray(studio_photo(design, 0, rng, long_side, draw), np.float32) / 255.0
    return to_pil(camera(rgb, rng, np.ones(3, np.float32), strength=0.3))


def noart_photo(seed: int, category: str, rng: np.random.Generator, long_side: int) -> Image.Image:
    """A non-art photo of ``category`` (in :data:`NOART_CATEGORIES`), by the visitor's camera."""
    h, w = photo_size(rng, long_side)
    tint = np.ones(3, np.float32)
    if category == "street":
        rgb = _street(h, w, rng)
    elif category == "nature":
        rgb = _nature(h, w, rng)
    elif category == "texture":
        rgb = _texture(h, w, rng)
    elif category == "tabletop":
        rgb = _tabletop(h, w, rng)
    elif category in ("empty gallery", "crowd"):
        rgb, _, tint = room(seed, int(rng.integers(0, N_ROOMS)), h, w, rng)
        people = int(rng.integers(0, 3)) if category == "empty gallery" else int(rng.integers(3, 7))
        rgb = add_visitors(rgb, rng, people)
    else:
        raise ValueError(f"unknown non-art category {category!r}")
    return to_pil(camera(rgb, rng, tint))
