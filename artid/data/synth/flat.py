"""Flat works (painting, print, photograph, textile): rendered edge to edge as (H, W, 3) RGB.

Scenes are label maps of palette indices drawn from the design's composition seed (the layout)
and detail seed (secondary elements), so variants share a layout and differ in details.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from artid.data.synth.designs import SCENES, Design, luminance
from artid.data.synth.drawing import blur, colour_map, draw_motif, value_noise
from artid.data.synth.seeding import rng_for


def _scene(scene: str, d: Design, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A composition as a label map (H, W) uint8 of palette indices and a shading field (H, W).

    Uses the design's composition seed for the layout and its detail seed for secondary
    elements, so variants share a layout and differ in details.
    """
    rc = rng_for(d.composition, "scene")
    rd = rng_for(d.detail, "scene")
    img = Image.new("L", (w, h), 0)
    dr = ImageDraw.Draw(img)
    n = len(d.palette)
    yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    shade: np.ndarray = np.ones((h, w), np.float32)
    if scene == "landscape":
        horizon = rc.uniform(0.3, 0.6)
        layers = int(rc.integers(2, 5))
        xs = np.linspace(0, 1, w)
        for i in range(layers):
            base = horizon + (1 - horizon) * i / (layers + 0.5)
            knots = rc.random(int(rc.integers(4, 12)))
            prof = base + rc.uniform(0.05, 0.25) * (np.interp(xs, np.linspace(0, 1, len(knots)), knots) - 0.5)
            pts = [(0, h)] + [(x * (w - 1), p * h) for x, p in zip(xs[:: max(1, w // 64)], prof[:: max(1, w // 64)])]
            dr.polygon(pts + [(w - 1, h)], fill=1 + (i % (n - 1)))
        count = max(int(rd.integers(4, 12)), len(d.motifs))
        for j in range(count):
            m = d.motifs[j % len(d.motifs)]
            cx, cy = rd.uniform(0.05, 0.95) * w, rd.uniform(0.1, 0.9) * h
            draw_motif(dr, m, cx, cy, rd.uniform(0.05, 0.16) * w, fill=int(rd.integers(1, n)), rng=rd,
                       line=int(rd.integers(0, n)))
        shade = 1.0 - 0.25 * yy * np.ones((1, w), np.float32)
    elif scene == "portrait":
        dr.rectangle([0, 0, w, h], fill=n - 1)
        cx = w * rc.uniform(0.4, 0.6)
        hr = w * rc.uniform(0.13, 0.2)
        hy = h * rc.uniform(0.25, 0.4)
        sw = w * rc.uniform(0.3, 0.45)
        dr.polygon([(cx - sw * 0.4, hy + hr), (cx + sw * 0.4, hy + hr), (cx + sw, h), (cx - sw, h)], fill=2)
        dr.ellipse([cx - hr * 1.1, hy - hr * 1.25, cx + hr * 1.1, hy + hr * 0.6], fill=3)
        dr.ellipse([cx - hr * 0.85, hy - hr, cx + hr * 0.85, hy + hr * 1.05], fill=0)
        for ex in (-0.35, 0.35):
            dr.ellipse([cx + ex * hr - hr * 0.1, hy - hr * 0.1, cx + ex * hr + hr * 0.1, hy + hr * 0.05], fill=4)
        dr.line([(cx - hr * 0.3, hy + hr * 0.55), (cx + hr * 0.3, hy + hr * 0.55)], fill=4,
                width=max(1, int(hr * 0.08)))
        for j in range(max(int(rd.integers(3, 8)), len(d.motifs))):
            m = d.motifs[j % len(d.motifs)]
            draw_motif(dr, m, cx + rd.uniform(-0.6, 0.6) * sw, h * rd.uniform(0.7, 0.95), w * rd.uniform(0.04, 0.09),
                       fill=int(rd.integers(0, n)), rng=rd, line=1)
        for _ in range(int(rd.integers(0, 3))):
            m = d.motifs[int(rd.integers(len(d.motifs)))]
            draw_motif(dr, m, w * rd.choice([0.12, 0.88]), h * rd.uniform(0.1, 0.5), w * rd.uniform(0.08, 0.15),
                       fill=int(rd.integers(1, n)), rng=rd)
        xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
        shade = 1.0 - 0.35 * np.clip((xx - (cx / w * 2 - 1)) ** 2 + (yy - 0.4) ** 2, 0, 1)
    elif scene == "still life":
        dr.rectangle([0, 0, w, h], fill=n - 2)
        table = h * rc.uniform(0.55, 0.75)
        dr.rectangle([0, table, w, h], fill=int(rc.integers(1, n)))
        for _ in range(int(rc.integers(3, 7))):
            cx, r = rc.uniform(0.1, 0.9) * w, rc.uniform(0.05, 0.14) * w
            tall = rc.uniform(1.0, 3.0)
            col = int(rc.integers(0, n))
            if rc.random() < 0.5:
                dr.ellipse([cx - r, table - 2 * r + r * 0.3, cx + r, table + r * 0.3], fill=col)
            else:
                dr.rectangle([cx - r * 0.6, table - r * tall, cx + r * 0.6, table + r * 0.2], fill=col)
                top = table - r * tall
                dr.ellipse([cx - r * 0.6, top - r * 0.2, cx + r * 0.6, top + r * 0.2], fill=col)
        for j in range(max(int(rd.integers(3, 8)), len(d.motifs))):
            m = d.motifs[j % len(d.motifs)]
            draw_motif(dr, m, rd.uniform(0.1, 0.9) * w, rd.uniform(0.1, 0.5) * h, w * rd.uniform(0.06, 0.14),
                       fill=int(rd.integers(0, n)), rng=rd)
        xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
        shade = 0.7 + 0.45 * np.clip(1.0 - np.abs(xx - 0.35) - 0.4 * yy, 0, 1)
    else:  # abstract
        field = value_noise(rc, h, w, cells=(2, 4, 8), aspect=d.aspect)
        lab = np.minimum((field * n).astype(np.uint8), n - 1)
        img = Image.fromarray(lab, "L")
        dr = ImageDraw.Draw(img)
        for _ in range(int(rc.integers(8, 20))):
            x0, y0 = rc.uniform(-0.1, 0.9) * w, rc.uniform(-0.1, 0.9) * h
            x1, y1 = x0 + rc.uniform(0.05, 0.5) * w, y0 + rc.uniform(0.05, 0.5) * h
            col = int(rc.integers(0, n))
            shape = rc.integers(0, 3)
            if shape == 0:
                dr.rectangle([x0, y0, x1, y1], fill=col)
            elif shape == 1:
                dr.ellipse([x0, y0, x1, y1], fill=col)
            else:
                dr.line([(x0, y0), (x1, y1)], fill=col, width=max(1, int(rc.uniform(0.01, 0.04) * w)))
        for j in range(max(int(rd.integers(3, 9)), len(d.motifs))):
            m = d.motifs[j % len(d.motifs)]
            draw_motif(dr, m, rd.uniform(0.1, 0.9) * w, rd.uniform(0.1, 0.9) * h, w * rd.uniform(0.08, 0.3),
                       fill=int(rd.integers(0, n)), rng=rd, line=int(rd.integers(0, n)))
    lab = np.asarray(img, np.uint8)
    if d.flip:
        lab, shade = lab[:, ::-1], np.ascontiguousarray(shade[:, ::-1])
    return np.minimum(lab, n - 1), shade


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
    lab, shade = _scene(scene, d, h, w)
    pal = d.colours
    rc = rng_for(d.composition, "paint")
    tex = value_noise(rc, h, w, cells=(4, 8, 16, 32), aspect=d.aspect)
    # each region is painted with a mix of its colour and the next one, not a flat fill
    mix = value_noise(rc, h, w, cells=(6, 12, 24, 48), aspect=d.aspect)[..., None]
    rgb = pal[lab] * (1 - 0.5 * mix) + pal[(lab.astype(np.int64) + 1) % len(pal)] * 0.5 * mix
    strokes = value_noise(rc, h, w, cells=(24, 48), stretch=(1.0, 6.0) if rc.random() < 0.5 else (6.0, 1.0),
                          aspect=d.aspect)
    rgb = rgb * (0.78 + 0.3 * tex)[..., None] * (0.9 + 0.2 * strokes)[..., None] * shade[..., None]
    if d.style == "landscape":  # sky gradient above the hills
        sky = colour_map(np.linspace(0, 1, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32),
                         np.stack([pal[0], (pal[0] + pal[1]) / 2]))
        rgb = np.where((lab == 0)[..., None], sky * (0.85 + 0.25 * tex)[..., None], rgb)
    rgb = blur(rgb, w * 0.002)
    return aged(rgb, d, h, w)


def _print(d: Design, h: int, w: int) -> np.ndarray:
    scene = str(rng_for(d.composition, "print-scene").choice(SCENES))
    lab, shade = _scene(scene, d, h, w)
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
        edges = (np.abs(np.diff(lab.astype(np.int16), axis=0, prepend=lab[:1])) +
                 np.abs(np.diff(lab.astype(np.int16), axis=1, prepend=lab[:, :1]))) > 0
        ink = np.clip(blur(edges.astype(np.float32), max(0.5, w * 0.0015)) * 2.0, 0, 1) + 0.25 * (1 - tone)
    paper = np.asarray([0.95, 0.92, 0.84], np.float32) * (0.94 + 0.06 * value_noise(rc, h, w, cells=(16, 64),
                                                                                       aspect=d.aspect))[..., None]
    ink_col = np.asarray(rc.choice([[0.08, 0.07, 0.06], [0.25, 0.15, 0.08], [0.1, 0.12, 0.3]]), np.float32)
    ink = np.clip(ink, 0, 1)[..., None]
    rgb = paper * (1 - ink) + ink_col * ink
    m = max(2, int(0.06 * min(h, w)))  # plate margin
    margin = np.zeros((h, w), bool)
    margin[:m], margin[-m:], margin[:, :m], margin[:, -m:] = True, True, True, True
    rgb[margin] = paper[margin]
    return aged(rgb, d, h, w)


def _photograph(d: Design, h: int, w: int) -> np.ndarray:
    lab, shade = _scene(d.style, d, h, w)
    tone = luminance(d.colours)[lab] * shade
    rc = rng_for(d.composition, "photo")
    tone = blur(tone, w * 0.004) * (0.85 + 0.3 * value_noise(rc, h, w, cells=(4, 16), aspect=d.aspect))
    yy, xx = np.mgrid[-1:1:complex(0, h), -1:1:complex(0, w)].astype(np.float32)
    tone *= 1.0 - 0.35 * (xx ** 2 + yy ** 2) / 2
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
            tdr.rectangle([0, y0, tile_px, y0 + rc.uniform(0.04, 0.2) * tile_px], fill=int(rc.integers(0, n)))
    elif d.style == "geometric":
        for _ in range(int(rc.integers(2, 5))):
            m = str(rc.choice(["diamond", "cross", "triangle", "zigzag", "ring"]))
            draw_motif(tdr, m, rc.uniform(0.2, 0.8) * tile_px, rc.uniform(0.2, 0.8) * tile_px,
                       rc.uniform(0.2, 0.6) * tile_px, fill=int(rc.integers(0, n)), rng=rc)
    for m in d.motifs:
        draw_motif(tdr, m, rd.uniform(0.25, 0.75) * tile_px, rd.uniform(0.25, 0.75) * tile_px,
                   rd.uniform(0.25, 0.55) * tile_px, fill=int(rd.integers(0, n)), rng=rd, line=int(rd.integers(0, n)))
    t = np.asarray(tile, np.uint8)
    if rc.random() < 0.5:
        t = np.maximum(t, t[:, ::-1]) if rc.random() < 0.5 else t
    ty, tx = h // tile_px + 2, w // tile_px + 2
    lab = np.tile(t, (ty, tx))
    if rc.random() < 0.6:  # half-drop repeat
        for j in range(1, tx, 2):
            lab[:, j * tile_px:(j + 1) * tile_px] = np.roll(lab[:, j * tile_px:(j + 1) * tile_px], tile_px // 2, 0)
    lab = lab[:h, :w].copy()
    bands = int(rc.integers(0, 3))
    for k in range(bands):
        bh = max(1, int(rc.uniform(0.03, 0.1) * h))
        col = int(rc.integers(0, n))
        lab[k * bh * 2:k * bh * 2 + bh], lab[h - k * bh * 2 - bh:h - k * bh * 2] = col, col
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
