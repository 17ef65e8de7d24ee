"""Compositions of the flat works: a scene (landscape, portrait, still life, ...) as a label map.

A scene is drawn from the design's composition seed (the layout) and its detail seed (secondary
elements), so variants of a work share a layout and differ in details; :mod:`artid.data.synth.flat`
colours it in the manner of a painting, a print or a photograph.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from artid.data.synth.designs import Design
from artid.data.synth.drawing import draw_motif, value_noise
from artid.data.synth.seeding import rng_for


def scene_map(scene: str, d: Design, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
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
            prof = base + rc.uniform(0.05, 0.25) * (
                np.interp(xs, np.linspace(0, 1, len(knots)), knots) - 0.5
            )
            pts = [(0, h)] + [
                (x * (w - 1), p * h)
                for x, p in zip(xs[:: max(1, w // 64)], prof[:: max(1, w // 64)])
            ]
            dr.polygon(pts + [(w - 1, h)], fill=1 + (i % (n - 1)))
        count = max(int(rd.integers(4, 12)), len(d.motifs))
        for j in range(count):
            m = d.motifs[j % len(d.motifs)]
            cx, cy = rd.uniform(0.05, 0.95) * w, rd.uniform(0.1, 0.9) * h
            draw_motif(
                dr,
                m,
                cx,
                cy,
                rd.uniform(0.05, 0.16) * w,
                fill=int(rd.integers(1, n)),
                rng=rd,
                line=int(rd.integers(0, n)),
            )
        shade = 1.0 - 0.25 * yy * np.ones((1, w), np.float32)
    elif scene == "portrait":
        dr.rectangle([0, 0, w, h], fill=n - 1)
        cx = w * rc.uniform(0.4, 0.6)
        hr = w * rc.uniform(0.13, 0.2)
        hy = h * rc.uniform(0.25, 0.4)
        sw = w * rc.uniform(0.3, 0.45)
        dr.polygon(
            [(cx - sw * 0.4, hy + hr), (cx + sw * 0.4, hy + hr), (cx + sw, h), (cx - sw, h)], fill=2
        )
        dr.ellipse([cx - hr * 1.1, hy - hr * 1.25, cx + hr * 1.1, hy + hr * 0.6], fill=3)
        dr.ellipse([cx - hr * 0.85, hy - hr, cx + hr * 0.85, hy + hr * 1.05], fill=0)
        for ex in (-0.35, 0.35):
            dr.ellipse(
                [cx + ex * hr - hr * 0.1, hy - hr * 0.1, cx + ex * hr + hr * 0.1, hy + hr * 0.05],
                fill=4,
            )
        dr.line(
            [(cx - hr * 0.3, hy + hr * 0.55), (cx + hr * 0.3, hy + hr * 0.55)],
            fill=4,
            width=max(1, int(hr * 0.08)),
        )
        for j in range(max(int(rd.integers(3, 8)), len(d.motifs))):
            m = d.motifs[j % len(d.motifs)]
            draw_motif(
                dr,
                m,
                cx + rd.uniform(-0.6, 0.6) * sw,
                h * rd.uniform(0.7, 0.95),
                w * rd.uniform(0.04, 0.09),
                fill=int(rd.integers(0, n)),
                rng=rd,
                line=1,
            )
        for _ in range(int(rd.integers(0, 3))):
            m = d.motifs[int(rd.integers(len(d.motifs)))]
            draw_motif(
                dr,
                m,
                w * rd.choice([0.12, 0.88]),
                h * rd.uniform(0.1, 0.5),
                w * rd.uniform(0.08, 0.15),
                fill=int(rd.integers(1, n)),
                rng=rd,
            )
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
                dr.rectangle(
                    [cx - r * 0.6, table - r * tall, cx + r * 0.6, table + r * 0.2], fill=col
                )
                top = table - r * tall
                dr.ellipse([cx - r * 0.6, top - r * 0.2, cx + r * 0.6, top + r * 0.2], fill=col)
        for j in range(max(int(rd.integers(3, 8)), len(d.motifs))):
            m = d.motifs[j % len(d.motifs)]
            draw_motif(
                dr,
                m,
                rd.uniform(0.1, 0.9) * w,
                rd.uniform(0.1, 0.5) * h,
                w * rd.uniform(0.06, 0.14),
                fill=int(rd.integers(0, n)),
                rng=rd,
            )
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
                dr.line(
                    [(x0, y0), (x1, y1)], fill=col, width=max(1, int(rc.uniform(0.01, 0.04) * w))
                )
        for j in range(max(int(rd.integers(3, 9)), len(d.motifs))):
            m = d.motifs[j % len(d.motifs)]
            draw_motif(
                dr,
                m,
                rd.uniform(0.1, 0.9) * w,
                rd.uniform(0.1, 0.9) * h,
                w * rd.uniform(0.08, 0.3),
                fill=int(rd.integers(0, n)),
                rng=rd,
                line=int(rd.integers(0, n)),
            )
    lab = np.asarray(img, np.uint8)
    if d.flip:
        lab, shade = lab[:, ::-1], np.ascontiguousarray(shade[:, ::-1])
    return np.minimum(lab, n - 1), shade
