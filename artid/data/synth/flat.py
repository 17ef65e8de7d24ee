"""Flat works (painting, print, photograph, textile): rendered edge to edge as (H, W, 3) RGB.

Paintings, prints and photographs colour a scene (:func:`artid.data.synth.scenes.scene_map`: a
label map of palette indices from the design's composition and detail seeds, so variants share a
layout and differ in details); textiles repeat a tile of motifs.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from artid.data.synth.designs import SCENES, Design, luminance
from artid.data.synth.drawing import blur, colour_map, draw_motif, value_noise
from artid.data.synth.scenes import scene_map
from artid.data.synth.seeding import rng_for


def aged(rgb: np.ndarray, d: Design, h: int, w: int) -> np.ndarray:
    """Yellowing and uneven wear, by the design's age."""
    if d.age <= 0:
        return rgb
    wear = value_noise(rng_for(d.detail, "age"), h, w, cells=(4, 16), aspect=d.aspect)
    yellow = np.asarray([1.0, 0.93, 0.75], np.float32)
    k = (0.35 * d.age * (0.6 + 0.8 * wear))[..., None]
    return rgb * (1 - k) + rgb * yellow * k


def _painting(d: Design, h: int, w: int) -> np.ndarray:
    scene = {"still life": "still life"}.get(d.style, d.style)
    lab, shade = scene_map(scene, d, h, w)
    pal = d.colours
    rc = rng_for(d.composition, "paint")
    tex = value_noise(rc, h, w, cells=(4, 8, 16, 32), aspect=d.aspect)
    # each region is painted with a mix of its colour and the next one, not a flat fill
    mix = value_noise(rc, h, w, cells=(6, 12, 24, 48), aspect=d.aspect)[..., None]
    rgb = pal[lab] * (1 - 0.5 * mix) + pal[(lab.astype(np.int64) + 1) % len(pal)] * 0.5 * mix
    strokes = value_noise(
        rc,
        h,
        w,
        cells=(24, 48),
        stretch=(1.0, 6.0) if rc.random() < 0.5 else (6.0, 1.0),
        aspect=d.aspect,
    )
    rgb = rgb * (0.78 + 0.3 * tex)[..., None] * (0.9 + 0.2 * strokes)[..., None] * shade[..., None]
    if d.style == "landscape":  # sky gradient above the hills
        sky = colour_map(
            np.linspace(0, 1, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32),
            np.stack([pal[0], (pal[0] + pal[1]) / 2]),
        )
        rgb = np.where((lab == 0)[..., None], sky * (0.85 + 0.25 * tex)[..., None], rgb)
    rgb = blur(rgb, w * 0.002)
    return aged(rgb, d, h, w)


def _print(d: Design, h: int, w: int) -> np.ndarray:
    scene = str(rng_for(d.composition, "print-scene").choice(SCENES))
    lab, shade = scene_map(scene, d, h, w)
    tone = luminance(d.colours)[lab] * shade  # 1 = paper, 0 = full ink
    tone = (tone - tone.min()) / max(float(tone.max() - tone.min()), 1e-3)
    rc = rng_for(d.composition, "ink")
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / w
    if d.style == "hatched":
        period = rc.uniform(0.008, 0.02)
        a1, a2 = rc.uniform(0, np.pi, 2)
        h1 = 0.5 + 0.5 * np.sin((xx * np.cos(a1) + yy * np.sin(a1)) * 2 * np.pi / period)
        h2 = 0.5 + 0.5 * np.sin((xx * np.cos(a2) + yy * np.sin(a2)) * 2 * np.pi / period)
        ink = ((h1 > tone * 1.4 + 0.1) | ((tone < 0.35) & (h2 > tone * 2 + 0.3))).astype(np.float32)
    elif d.style == "woodcut":
        grain = value_noise(rc, h, w, cells=(8, 40), stretch=(8.0, 1.0), aspect=d.aspect)
        ink = (tone + 0.35 * (grain - 0.5) < 0.5).astype(np.float32)
    else:  # line drawing: contours of the label map plus light wash
        edges = (
            np.abs(np.diff(lab.astype(np.int16), axis=0, prepend=lab[:1]))
            + np.abs(np.diff(lab.astype(np.int16), axis=1, prepend=lab[:, :1]))
        ) > 0
        ink = np.clip(blur(edges.astype(np.float32), max(0.5, w * 0.0015)) * 2.0, 0, 1) + 0.25 * (
            1 - tone
        )
    paper = (
        np.asarray([0.95, 0.92, 0.84], np.float32)
        * (0.94 + 0.06 * value_noise(rc, h, w, cells=(16, 64), aspect=d.aspect))[..., None]
    )
    ink_col = np.asarray(
        rc.choice([[0.08, 0.07, 0.06], [0.25, 0.15, 0.08], [0.1, 0.12, 0.3]]), np.float32
    )
    ink = np.clip(ink, 0, 1)[..., None]
    rgb = paper * (1 - ink) + ink_col * ink
    m = max(2, int(0.06 * min(h, w)))  # plate margin
    margin = np.zeros((h, w), bool)
    margin[:m], margin[-m:], margin[:, :m], margin[:, -m:] = True, True, True, True
    rgb[margin] = paper[margin]
    return aged(rgb, d, h, w)


def _photograph(d: Design, h: int, w: int) -> np.ndarray:
    lab, shade = scene_map(d.style, d, h, w)
    tone = luminance(d.colours)[lab] * shade
    rc = rng_for(d.composition, "photo")
    tone = blur(tone, w * 0.004) * (
        0.85 + 0.3 * value_noise(rc, h, w, cells=(4, 16), aspect=d.aspect)
    )
    yy, xx = np.mgrid[-1 : 1 : complex(0, h), -1 : 1 : complex(0, w)].astype(np.float32)
    tone *= 1.0 - 0.35 * (xx**2 + yy**2) / 2
    tint = np.asarray(rc.choice([[1.0, 1.0, 1.0], [1.0, 0.88, 0.7], [0.9, 0.95, 1.0]]), np.float32)
    rgb = np.clip(tone, 0, 1)[..., None] * tint
    b = max(2, int(0.05 * min(h, w)))
    rgb[:b], rgb[-b:], rgb[:, :b], rgb[:, -b:] = 0.93, 0.93, 0.93, 0.93
    return aged(rgb, d, h, w)


def _textile(d: Design, h: int, w: int) -> np.ndarray:
    rc = rng_for(d.composition, "textile")
    rd = rng_for(d.detail, "textile")
    n = len(d.palette)
    reps = int(rc.integers(3, 9))
    tile_px = max(4, int(round(w / reps)))
    tile = Image.new("L", (tile_px, tile_px), int(rc.integers(0, n)))
    tdr = ImageDraw.Draw(tile)
    if d.style == "striped":
        for _ in range(int(rc.integers(2, 6))):
            y0 = rc.uniform(0, 1) * tile_px
            tdr.rectangle(
                [0, y0, tile_px, y0 + rc.uniform(0.04, 0.2) * tile_px], fill=int(rc.integers(0, n))
            )
    elif d.style == "geometric":
        for _ in range(int(rc.integers(2, 5))):
            m = str(rc.choice(["diamond", "cross", "triangle", "zigzag", "ring"]))
            draw_motif(
                tdr,
                m,
                rc.uniform(0.2, 0.8) * tile_px,
                rc.uniform(0.2, 0.8) * tile_px,
                rc.uniform(0.2, 0.6) * tile_px,
                fill=int(rc.integers(0, n)),
                rng=rc,
            )
    for m in d.motifs:
        draw_motif(
            tdr,
            m,
            rd.uniform(0.25, 0.75) * tile_px,
            rd.uniform(0.25, 0.75) * tile_px,
            rd.uniform(0.25, 0.55) * tile_px,
            fill=int(rd.integers(0, n)),
            rng=rd,
            line=int(rd.integers(0, n)),
        )
    t = np.asarray(tile, np.uint8)
    if rc.random() < 0.5:
        t = np.maximum(t, t[:, ::-1]) if rc.random() < 0.5 else t
    ty, tx = h // tile_px + 2, w // tile_px + 2
    lab = np.tile(t, (ty, tx))
    if rc.random() < 0.6:  # half-drop repeat
        for j in range(1, tx, 2):
            lab[:, j * tile_px : (j + 1) * tile_px] = np.roll(
                lab[:, j * tile_px : (j + 1) * tile_px], tile_px // 2, 0
            )
    lab = lab[:h, :w].copy()
    bands = int(rc.integers(0, 3))
    for k in range(bands):
        bh = max(1, int(rc.uniform(0.03, 0.1) * h))
        col = int(rc.integers(0, n))
        lab[k * bh * 2 : k * bh * 2 + bh], lab[h - k * bh * 2 - bh : h - k * bh * 2] = col, col
    rgb = d.colours[np.minimum(lab, n - 1)]
    threads = max(2, min(w // 3, 160))
    xx = np.arange(w, dtype=np.float32)[None, :] * threads / w
    yy = np.arange(h, dtype=np.float32)[:, None] * threads / w
    weave = 0.9 + 0.1 * np.abs(np.sin(xx * np.pi)) * np.abs(np.cos(yy * np.pi))
    wear = value_noise(rc, h, w, cells=(3, 9, 27), aspect=d.aspect)
    rgb = rgb * (weave * (0.8 + 0.3 * wear))[..., None]
    return aged(rgb, d, h, w)


def draw_flat(design: Design, h: int, w: int) -> np.ndarray:
    """RGB (h, w, 3) float of a flat work (unclipped; alpha is 1 everywhere)."""
    if design.kind == "painting":
        return _painting(design, h, w)
    if design.kind == "print":
        return _print(design, h, w)
    if design.kind == "photograph":
        return _photograph(design, h, w)
    if design.kind == "textile":
        return _textile(design, h, w)
    raise ValueError(f"not a flat kind: {design.kind!r}")
