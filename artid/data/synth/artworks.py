"""Procedural exhibits: a small design (a few numbers and seeds) and its renderer, by kind.

A :class:`Design` fixes everything that makes an exhibit that exhibit: kind (department),
style, proportions, palette, motifs and the seeds of its composition and details. Rendering a
design at any size gives the same work; the view (pose, light, side of a coin) is a separate
argument, so a class's studio photos and its visitor photos show one object.

Flat kinds (painting, print, textile, photograph) render edge to edge with a full alpha
mask; objects (vessel, sculpture, coin) render on a neutral ground with their silhouette
as alpha, to be put on a studio backdrop or a gallery plinth.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from artid.data.synth.drawing import (
    MOTIFS, blur, colour_map, draw_motif, resize_field, value_noise,
)
from artid.data.synth.seeding import rng_for, sub_seed

#: Kind -> department name (the "department::" attribute).
KINDS = {
    "painting": "Paintings",
    "print": "Drawings and Prints",
    "textile": "Textiles",
    "photograph": "Photographs",
    "vessel": "Ceramics and Glass",
    "sculpture": "Sculpture",
    "coin": "Coins and Medals",
}
#: Share of each kind among exhibits (prints and photographs are a large part of the Met).
KIND_WEIGHTS = {"painting": 0.2, "print": 0.2, "textile": 0.12, "photograph": 0.1,
                "vessel": 0.15, "sculpture": 0.13, "coin": 0.1}
FLAT_KINDS = ("painting", "print", "textile", "photograph")
#: Kind -> styles (the "style::" attribute).
STYLES = {
    "painting": ("landscape", "portrait", "still life", "abstract"),
    "print": ("hatched", "woodcut", "line drawing"),
    "textile": ("floral", "geometric", "striped"),
    "photograph": ("landscape", "portrait"),
    "vessel": ("banded", "figurative", "glazed"),
    "sculpture": ("bronze", "marble", "wood", "stone"),
    "coin": ("gold", "silver", "bronze"),
}
SCENES = ("landscape", "portrait", "still life", "abstract")


@dataclass(frozen=True)
class Design:
    """Everything that identifies one exhibit.

    Attributes:
        kind: key of :data:`KINDS`.
        style: one of ``STYLES[kind]``.
        aspect: width / height of the work (of its bounding box for objects).
        palette: (P, 3) colours in [0, 1], lightest first (tuple of tuples, hashable).
        motifs: motif names drawn on it.
        composition: seed of the layout (what a series changes).
        detail: seed of secondary elements (what a variant changes).
        age: amount of yellowing / wear in [0, 1] (what distinguishes copies).
        flip: mirrored composition (copies after prints often are).
    """

    kind: str
    style: str
    aspect: float
    palette: tuple[tuple[float, float, float], ...]
    motifs: tuple[str, ...]
    composition: int
    detail: int
    age: float = 0.0
    flip: bool = False

    @property
    def colours(self) -> np.ndarray:
        return np.asarray(self.palette, np.float32)


@dataclass(frozen=True)
class Pose:
    """How one photo sees an exhibit: rotation about the vertical axis (radians), light
    direction (x, y in the image plane), which side (coins: 0 obverse, 1 reverse)."""

    angle: float = 0.0
    light: tuple[float, float] = (-0.5, -0.7)
    side: int = 0


def _luminance(c: np.ndarray) -> np.ndarray:
    return c @ np.asarray([0.299, 0.587, 0.114], np.float32)


def make_palette(rng: np.random.Generator, n: int = 5, muted: bool = False) -> np.ndarray:
    """A harmonious palette (n, 3), lightest colour first."""
    scheme = rng.choice(["analogous", "complementary", "triadic", "earth", "mono"])
    h0 = rng.random()
    cols = []
    for i in range(n):
        if scheme == "analogous":
            h = h0 + rng.uniform(-0.09, 0.09)
        elif scheme == "complementary":
            h = h0 + (0.5 if i % 2 else 0.0) + rng.uniform(-0.04, 0.04)
        elif scheme == "triadic":
            h = h0 + (i % 3) / 3.0 + rng.uniform(-0.03, 0.03)
        elif scheme == "earth":
            h = rng.uniform(0.03, 0.14)
        else:
            h = h0
        s = rng.uniform(0.15, 0.55) if muted or scheme == "earth" else rng.uniform(0.3, 0.95)
        v = rng.uniform(0.15, 0.98)
        cols.append(colorsys.hsv_to_rgb(h % 1.0, s, v))
    pal = np.asarray(cols, np.float32)
    return pal[np.argsort(-_luminance(pal))]


def make_design(rng: np.random.Generator, kind: str | None = None) -> Design:
    """Draw a new, unrelated exhibit design."""
    if kind is None:
        kinds = list(KIND_WEIGHTS)
        kind = str(rng.choice(kinds, p=np.asarray([KIND_WEIGHTS[k] for k in kinds])))
    style = str(rng.choice(STYLES[kind]))
    if kind == "coin":
        aspect = 1.0
    elif kind in ("vessel", "sculpture"):
        aspect = float(rng.uniform(0.55, 0.95))
    elif kind == "textile":
        aspect = float(rng.uniform(0.5, 2.0))
    else:
        aspect = float(np.exp(rng.uniform(np.log(0.62), np.log(1.6))))
    muted = kind in ("print", "photograph") or style in ("marble", "stone", "wood")
    palette = make_palette(rng, 5, muted=muted)
    n_motifs = int(rng.integers(1, 4))
    motifs = tuple(sorted(rng.choice(MOTIFS, size=n_motifs, replace=False).tolist()))
    return Design(kind=kind, style=style, aspect=aspect, palette=tuple(map(tuple, palette.tolist())),
                  motifs=motifs, composition=sub_seed(rng), detail=sub_seed(rng),
                  age=float(rng.uniform(0.0, 0.5)), flip=False)


#: How members of a family relate to its first member.
RELATIONS = ("copy", "variant", "series")


def vary(base: Design, rng: np.random.Generator, relation: str) -> Design:
    """A near-identical relative of ``base``.

    ``copy``: same composition and details, slightly different colours, age, proportions,
    sometimes mirrored. ``variant``: same composition, new details and shifted colours.
    ``series``: same kind, style, palette and motifs, a new composition.
    """
    pal = base.colours
    if relation == "copy":
        pal = np.clip(pal + rng.normal(0, 0.025, pal.shape), 0, 1)
        return replace(base, palette=tuple(map(tuple, pal.tolist())),
                       aspect=base.aspect * float(rng.uniform(0.97, 1.03)) if base.kind != "coin" else 1.0,
                       age=float(np.clip(base.age + rng.uniform(-0.3, 0.3), 0, 1)),
                       flip=bool(rng.random() < 0.25) != base.flip)
    if relation == "variant":
        pal = np.clip(pal + rng.normal(0, 0.06, pal.shape), 0, 1)
        if rng.random() < 0.5:
            pal[int(rng.integers(len(pal)))] = make_palette(rng, 1)[0]
        motifs = list(base.motifs)
        if rng.random() < 0.5:
            motifs[int(rng.integers(len(motifs)))] = str(rng.choice(MOTIFS))
        return replace(base, palette=tuple(map(tuple, pal.tolist())), detail=sub_seed(rng),
                       motifs=tuple(sorted(set(motifs))), age=float(rng.uniform(0, 0.5)))
    if relation == "series":
        pal = np.clip(pal + rng.normal(0, 0.04, pal.shape), 0, 1)
        return replace(base, palette=tuple(map(tuple, pal.tolist())), composition=sub_seed(rng),
                       detail=sub_seed(rng), aspect=base.aspect * float(rng.uniform(0.9, 1.1))
                       if base.kind != "coin" else 1.0, age=float(rng.uniform(0, 0.5)))
    raise ValueError(f"unknown relation {relation!r}; expected one of {RELATIONS}")


def size_for(design: Design, long_side: int) -> tuple[int, int]:
    """(height, width) of a render whose longer side is ``long_side``."""
    if design.aspect >= 1:
        return max(8, int(round(long_side / design.aspect))), long_side
    return long_side, max(8, int(round(long_side * design.aspect)))


# ---------------------------------------------------------------- scenes (label maps)

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
    shade = np.ones((h, w), np.float32)
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


def _age(rgb: np.ndarray, d: Design, h: int, w: int) -> np.ndarray:
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
    return _age(rgb, d, h, w)


def _print(d: Design, h: int, w: int) -> np.ndarray:
    scene = str(rng_for(d.composition, "print-scene").choice(SCENES))
    lab, shade = _scene(scene, d, h, w)
    tone = _luminance(d.colours)[lab] * shade  # 1 = paper, 0 = full ink
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
    return _age(rgb, d, h, w)


def _photograph(d: Design, h: int, w: int) -> np.ndarray:
    lab, shade = _scene(d.style, d, h, w)
    tone = _luminance(d.colours)[lab] * shade
    rc = rng_for(d.composition, "photo")
    tone = blur(tone, w * 0.004) * (0.85 + 0.3 * value_noise(rc, h, w, cells=(4, 16), aspect=d.aspect))
    yy, xx = np.mgrid[-1:1:complex(0, h), -1:1:complex(0, w)].astype(np.float32)
    tone *= 1.0 - 0.35 * (xx ** 2 + yy ** 2) / 2
    tint = np.asarray(rc.choice([[1.0, 1.0, 1.0], [1.0, 0.88, 0.7], [0.9, 0.95, 1.0]]), np.float32)
    rgb = np.clip(tone, 0, 1)[..., None] * tint
    b = max(2, int(0.05 * min(h, w)))
    rgb[:b], rgb[-b:], rgb[:, :b], rgb[:, -b:] = 0.93, 0.93, 0.93, 0.93
    return _age(rgb, d, h, w)


def _textile(d: Design, h: int, w: int) -> np.ndarray:
    rc = rng_for(d.composition, "textile")
    rd = rng_for(d.detail, "textile")
    n = len(d.palette)
    reps = int(rc.integers(3, 9))
    tile_px = max(4, int(round(w / reps)))
    tile = Image.new("L", (tile_px, tile_px), int(rc.integers(0, n)))
    tdr = ImageDraw.Draw(tile)
    if d.style == "striped":
        for k in range(int(rc.integers(2, 6))):
            y0 = rc.uniform(0, 1) * tile_px
            tdr.rectangle([0, y0, tile_px, y0 + rc.uniform(0.04, 0.2) * tile_px], fill=int(rc.integers(0, n)))
    elif d.style == "geometric":
        for k in range(int(rc.integers(2, 5))):
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
    return _age(rgb, d, h, w)


def _vessel(d: Design, h: int, w: int, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    rc = rng_for(d.composition, "vessel")
    rd = rng_for(d.detail, "vessel")
    t = np.linspace(0, 1, h, dtype=np.float32)
    prof = np.full(h, 0.18, np.float32)
    for _ in range(int(rc.integers(2, 5))):
        prof += rc.uniform(0.05, 0.3) * np.exp(-((t - rc.uniform(0.15, 0.9)) / rc.uniform(0.08, 0.3)) ** 2)
    prof = np.clip(prof / prof.max() * 0.46, 0.06, 0.46)  # radius as fraction of width
    top, bottom = 0.04, 0.98
    # surface decoration: fixed-resolution (u, t) texture
    th, tw = 128, 256
    n = len(d.palette)
    surf = Image.new("L", (tw, th), 0)
    sdr = ImageDraw.Draw(surf)
    edges = np.sort(rc.uniform(0, 1, int(rc.integers(2, 6))))
    bounds = np.concatenate([[0.0], edges, [1.0]]) * th
    n_bands = len(bounds) - 1
    if d.style == "glazed":
        motif_bands: list[int] = []
    elif d.style == "figurative":
        motif_bands = list(range(n_bands))
    else:
        motif_bands = list(range(1, n_bands, 2))
    for b in range(n_bands):
        y0, y1 = bounds[b], bounds[b + 1]
        sdr.rectangle([0, y0, tw, y1], fill=int(rc.integers(0, n)))
        if d.style == "glazed":
            continue
        reps = int(rc.integers(3, 10))
        names: list[str] = []
        if b in motif_bands:  # every motif of the design lands on some band
            k = motif_bands.index(b)
            names = [m for j, m in enumerate(d.motifs) if j % len(motif_bands) == k]
        if not names:
            names = [str(rc.choice(["zigzag", "wave", "diamond"]))]
        for r in range(reps):
            draw_motif(sdr, names[r % len(names)], (r + 0.5) * tw / reps, (y0 + y1) / 2,
                       min(tw / reps, y1 - y0) * 0.8, fill=int(rd.integers(0, n)), rng=rd)
    s = np.asarray(surf, np.uint8)
    if d.flip:
        s = s[:, ::-1]
    cx = w / 2
    xs = (np.arange(w, dtype=np.float32) + 0.5 - cx) / w
    yi = np.arange(h)
    tt = (yi / h - top) / (bottom - top)
    inside_t = (tt >= 0) & (tt <= 1)
    r_row = np.interp(np.clip(tt, 0, 1), t, prof)
    xn = xs[None, :] / r_row[:, None]
    alpha = ((np.abs(xn) <= 1) & inside_t[:, None]).astype(np.float32)
    xn = np.clip(xn, -1, 1)
    u = (np.arcsin(xn) / (2 * np.pi) + pose.angle / (2 * np.pi)) % 1.0
    ui = np.minimum((u * tw).astype(np.int32), tw - 1)
    ti = np.minimum((np.clip(tt, 0, 1) * th).astype(np.int32), th - 1)
    lab = s[ti[:, None], ui]
    rgb = d.colours[np.minimum(lab, n - 1)]
    nz = np.sqrt(1 - xn ** 2)
    lx, ly = pose.light
    lz = math.sqrt(max(0.05, 1 - lx * lx - ly * ly))
    diffuse = np.clip(-xn * lx + nz * lz, 0, 1)
    spec = np.clip(-xn * lx + nz * lz, 0, 1) ** 40 * (0.6 if d.style == "glazed" else 0.25)
    rgb = rgb * (0.35 + 0.75 * diffuse)[..., None] + spec[..., None]
    if rc.random() < 0.5:  # handles
        hdr_img = Image.new("L", (w, h), 0)
        hdr = ImageDraw.Draw(hdr_img)
        ty = rc.uniform(0.15, 0.45)
        r_at = float(np.interp(ty, t, prof)) * w
        hh, hw_ = rc.uniform(0.1, 0.25) * h, rc.uniform(0.08, 0.15) * w
        for side in (-1, 1):
            x0 = cx + side * r_at
            box = [min(x0, x0 + side * hw_) - 1, ty * h, max(x0, x0 + side * hw_) + 1, ty * h + hh]
            hdr.arc(box, 0, 360, fill=255, width=max(1, int(0.02 * w)))
        hm = np.asarray(hdr_img, np.float32) / 255.0 * (1 - alpha)
        rgb = rgb * (1 - hm[..., None]) + d.colours[-1] * 0.7 * hm[..., None]
        alpha = np.maximum(alpha, hm)
    return rgb, alpha


def _sculpture(d: Design, h: int, w: int, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    rc = rng_for(d.composition, "sculpture")
    rd = rng_for(d.detail, "sculpture")
    k = int(rc.integers(5, 10))  # a body: overlapping spheres along a wavering spine, plus limbs
    ys = np.linspace(0.2, 0.72, k) + rc.normal(0, 0.015, k)
    xs = np.cumsum(rc.normal(0, 0.03, k))
    xs -= xs.mean()
    zs = np.cumsum(rc.normal(0, 0.03, k))
    rs = rc.uniform(0.06, 0.13, k) * min(1.0, 1.6 * w / h)
    parts = [(ys, xs, zs, rs)]
    for _ in range(int(rc.integers(1, 4))):
        j = int(rc.integers(0, k))
        direction = rc.normal(0, 1, 3)
        direction /= np.linalg.norm(direction) + 1e-6
        steps = np.arange(1, 4)[:, None] * 0.07 * direction[None, :]
        limb_r = rs[j] * rc.uniform(0.35, 0.6) * np.ones(3)
        parts.append((ys[j] + steps[:, 1], xs[j] + steps[:, 0], zs[j] + steps[:, 2], limb_r))
    extra = int(rd.integers(1, 4))  # details: small knobs on the body
    idx = rd.integers(0, k, extra)
    parts.append((ys[idx] + rd.normal(0, 0.03, extra), xs[idx] + rd.choice([-1, 1], extra) * rs[idx] * 0.9,
                  zs[idx] + rd.normal(0, 0.03, extra), rd.uniform(0.025, 0.05, extra)))
    ys, xs, zs, rs = (np.concatenate(a) for a in zip(*parts))
    ys = np.clip(ys, 0.08, 0.8)
    if d.flip:
        xs = -xs
    ca, sa = math.cos(pose.angle), math.sin(pose.angle)
    xr, zr = xs * ca + zs * sa, -xs * sa + zs * ca
    Y = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h
    X = (np.arange(w, dtype=np.float32)[None, :] + 0.5 - w / 2) / h
    depth = np.full((h, w), -np.inf, np.float32)
    nx = np.zeros((h, w), np.float32)
    ny = np.zeros((h, w), np.float32)
    for i in range(len(rs)):
        d2 = (X - xr[i]) ** 2 + (Y - ys[i]) ** 2
        inside = d2 < rs[i] ** 2
        z = zr[i] + np.sqrt(np.maximum(rs[i] ** 2 - d2, 0))
        win = inside & (z > depth)
        depth = np.where(win, z, depth)
        nx = np.where(win, (X - xr[i]) / rs[i], nx)
        ny = np.where(win, (Y - ys[i]) / rs[i], ny)
    alpha = np.isfinite(depth).astype(np.float32)
    base_top = 0.82
    base_w = rc.uniform(0.18, 0.3) * w / h
    base = (Y >= base_top) & (Y <= 0.97) & (np.abs(X) <= base_w)
    nz = np.sqrt(np.clip(1 - nx ** 2 - ny ** 2, 0, 1))
    lx, ly = pose.light
    lz = math.sqrt(max(0.05, 1 - lx * lx - ly * ly))
    diffuse = np.clip(nx * lx + ny * ly + nz * lz, 0, 1)
    xo = X * ca - np.where(np.isfinite(depth), depth, 0) * sa  # object-space x for the material
    pal = d.colours
    tex = value_noise(rc, 64, 64, cells=(4, 8, 16))
    ti = np.clip((Y * 63).astype(np.int32), 0, 63)
    tj = np.clip(((xo + 0.5) * 63).astype(np.int32), 0, 63)
    grain = tex[ti, tj]
    if d.style == "bronze":
        mat = np.asarray([0.45, 0.3, 0.15], np.float32) * (0.7 + 0.4 * grain)[..., None]
        mat = mat * (1 - 0.4 * grain[..., None]) + np.asarray([0.25, 0.45, 0.35], np.float32) * 0.4 * grain[..., None]
        specular = 0.5
    elif d.style == "marble":
        veins = 0.5 + 0.5 * np.sin((xo * 25 + Y * 10 + grain * 8))
        mat = np.asarray([0.92, 0.9, 0.86], np.float32) - 0.25 * (veins ** 8)[..., None] * (1 - pal[-1] * 0.5)
        specular = 0.25
    elif d.style == "wood":
        rings = 0.5 + 0.5 * np.sin(xo * 60 + grain * 6)
        mat = np.asarray([0.5, 0.32, 0.18], np.float32) * (0.75 + 0.35 * rings)[..., None]
        specular = 0.1
    else:
        mat = pal[1] * 0.5 + np.asarray([0.5, 0.48, 0.45], np.float32) * 0.5
        mat = mat * (0.75 + 0.4 * grain)[..., None]
        specular = 0.05
    spec = diffuse ** 30 * specular
    rgb = mat * (0.3 + 0.8 * diffuse)[..., None] + spec[..., None]
    base_col = pal[-1] * 0.6 + 0.15
    rgb = np.where(base[..., None], base_col * (0.9 - 0.2 * Y)[..., None] * np.ones((1, w, 1), np.float32), rgb)
    alpha = np.maximum(alpha, base.astype(np.float32))
    return rgb.astype(np.float32), alpha


def _coin(d: Design, h: int, w: int, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    seed = d.composition if pose.side == 0 else d.detail
    rc = rng_for(seed, "coin", pose.side)
    img = Image.new("L", (w, h), 0)
    dr = ImageDraw.Draw(img)
    r = 0.47 * w
    c = w / 2
    dr.ellipse([c - r * 0.9, c - r * 0.9, c + r * 0.9, c + r * 0.9], outline=200, width=max(1, int(0.03 * w)))
    if pose.side == 0 and rc.random() < 0.35:
        # a profile head, its proportions drawn from the design
        hw, hh, nose, neck = rc.uniform(0.25, 0.4), rc.uniform(0.3, 0.5), rc.uniform(0.08, 0.2), rc.uniform(0.4, 0.7)
        dr.ellipse([c - r * hw, c - r * hh, c + r * hw * 0.9, c + r * hh * 0.8], fill=255)
        dr.polygon([(c - r * 0.3, c + r * 0.1), (c + r * 0.2, c + r * 0.1), (c + r * 0.25, c + r * neck),
                    (c - r * 0.35, c + r * neck)], fill=230)
        dr.polygon([(c + r * hw * 0.85, c - r * 0.1), (c + r * (hw + nose), c + r * 0.02),
                    (c + r * hw * 0.85, c + r * 0.08)], fill=255)
        if rc.random() < 0.6:  # wreath or crown
            for i in range(7):
                a = math.pi * (0.9 + 0.9 * i / 6)
                draw_motif(dr, "leaf", c + r * hw * 0.8 * math.cos(a), c - r * hh * 0.2 + r * hh * 0.8 * math.sin(a),
                           r * 0.18, fill=200, rng=rc)
    else:
        for i, m in enumerate(d.motifs):  # the reverse carries all the design's motifs
            draw_motif(dr, m, c + rc.uniform(-0.25, 0.25) * r, c + rc.uniform(-0.25, 0.25) * r,
                       r * rc.uniform(0.6, 1.0) / (1 + 0.5 * i), fill=240 - 20 * i, rng=rc)
    letters = int(rc.integers(8, 20))
    a0 = rc.uniform(0, 2 * np.pi)
    for i in range(letters):  # the legend: small raised marks around the rim
        a = a0 + 1.6 * np.pi * i / letters
        lx, ly = c + 0.75 * r * math.cos(a), c + 0.75 * r * math.sin(a)
        s = r * rc.uniform(0.04, 0.08)
        dr.rectangle([lx - s * 0.5, ly - s, lx + s * 0.5, ly + s], fill=220)
    height = blur(np.asarray(img, np.float32) / 255.0, max(0.6, w * 0.006))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rr = np.sqrt((xx + 0.5 - c) ** 2 + (yy + 0.5 - c) ** 2) / r
    alpha = (rr <= 1.0).astype(np.float32)
    height = height + np.clip((rr - 0.93) * 12, 0, 1)  # raised rim
    gy, gx = np.gradient(height * w * 0.02)
    lx, ly = pose.light
    shade = np.clip(0.8 - (gx * lx + gy * ly) * 1.5, 0.2, 1.6)
    metal = {"gold": [0.85, 0.68, 0.3], "silver": [0.75, 0.75, 0.78], "bronze": [0.55, 0.38, 0.22]}[d.style]
    patina = value_noise(rng_for(d.detail, "patina", pose.side), h, w, cells=(4, 12, 36))
    base = np.asarray(metal, np.float32) * (0.75 + 0.35 * patina)[..., None]
    if d.style == "bronze":
        green = patina[..., None] ** 2
        base = base * (1 - 0.5 * green) + np.asarray([0.2, 0.4, 0.3], np.float32) * 0.5 * green
    rgb = base * shade[..., None] + 0.25 * np.clip(shade - 1.1, 0, 1)[..., None]
    return _age(rgb.astype(np.float32), d, h, w) if d.style != "gold" else rgb.astype(np.float32), alpha


#: Works are drawn at least this large and then reduced with area averaging, so that fine
#: detail (hatching, weave, legends) turns into the tone it would have in a real small photo
#: instead of aliasing differently at every size.
MIN_DRAW_SIZE = 256


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
    if design.kind == "painting":
        rgb = _painting(design, h, w)
    elif design.kind == "print":
        rgb = _print(design, h, w)
    elif design.kind == "photograph":
        rgb = _photograph(design, h, w)
    elif design.kind == "textile":
        rgb = _textile(design, h, w)
    elif design.kind == "vessel":
        return _vessel(design, h, w, pose)
    elif design.kind == "sculpture":
        return _sculpture(design, h, w, pose)
    elif design.kind == "coin":
        return _coin(design, h, w, pose)
    else:
        raise ValueError(f"unknown kind {design.kind!r}")
    return rgb, np.ones((h, w), np.float32)


def is_flat(design: Design) -> bool:
    """True for works that hang on a wall (rendered edge to edge)."""
    return design.kind in FLAT_KINDS


def downsample(field: np.ndarray, h: int, w: int) -> np.ndarray:
    """Area-averaging reduction of an (H, W) or (H, W, 3) float image to (h, w)."""
    if field.ndim == 2:
        return np.asarray(Image.fromarray(field.astype(np.float32), mode="F").resize((w, h), Image.BOX))
    return np.stack([downsample(field[..., c], h, w) for c in range(field.shape[-1])], axis=-1)


def resample(field: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bicubic resize of an (H, W) or (H, W, 3) float image."""
    if field.ndim == 2:
        return resize_field(field, h, w)
    return np.stack([resize_field(field[..., c], h, w) for c in range(field.shape[-1])], axis=-1)
