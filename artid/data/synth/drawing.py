"""Vectorised drawing primitives shared by the generators: noise fields, colour maps, motifs.

Images are float32 arrays in [0, 1] of shape (H, W, 3); masks and scalar fields (H, W).
Every function takes its randomness from the generator it is given and draws the same
numbers whatever the output size, so one design renders alike at 64 px and at 500 px.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

#: Motifs an exhibit can carry (its "motif::" attribute labels).
MOTIFS = (
    "disc",
    "ring",
    "star",
    "flower",
    "leaf",
    "spiral",
    "wave",
    "zigzag",
    "cross",
    "diamond",
    "bird",
    "tree",
    "house",
    "figure",
    "crescent",
    "triangle",
)


def resize_field(field: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bicubic resize of a (h0, w0) float field to (h, w) float32."""
    return np.asarray(
        Image.fromarray(field.astype(np.float32), mode="F").resize((w, h), Image.Resampling.BICUBIC)
    )


def value_noise(
    rng: np.random.Generator,
    h: int,
    w: int,
    cells: tuple[int, ...] = (3, 6, 12, 24),
    persistence: float = 0.55,
    stretch: tuple[float, float] = (1.0, 1.0),
    aspect: float | None = None,
) -> np.ndarray:
    """Fractal value noise in [0, 1], roughly mean 0.5.

    Args:
        rng: random source (draws a fixed number of values whatever h, w).
        h, w: output size.
        cells: grid cells along the longer axis for each octave.
        persistence: amplitude ratio between successive octaves.
        stretch: (y, x) cell-size multipliers; e.g. (1, 8) gives horizontal streaks.
        aspect: nominal width / height that sets the grid shape (default w / h); pass the
            design's aspect so that the same noise comes out at every output size.

    Returns:
        (h, w) float32.
    """
    aspect = w / max(h, 1) if aspect is None else aspect
    total = np.zeros((h, w), np.float32)
    amp, norm = 1.0, 0.0
    for c in cells:
        gy = max(2, int(round(c * min(1.0, 1.0 / aspect) / stretch[0])) + 1)
        gx = max(2, int(round(c * min(1.0, aspect) / stretch[1])) + 1)
        grid = rng.random((gy, gx)).astype(np.float32)
        total += amp * resize_field(grid, h, w)
        norm += amp
        amp *= persistence
    out = (total / norm - 0.5) * 2.2 + 0.5
    return np.clip(out, 0.0, 1.0)


def colour_map(t: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Map a field t in [0, 1] (H, W) through a palette (P, 3), lerped -> (H, W, 3)."""
    stops = np.linspace(0.0, 1.0, len(palette))
    return np.stack([np.interp(t, stops, palette[:, c]) for c in range(3)], axis=-1).astype(
        np.float32
    )


def to_pil(img: np.ndarray) -> Image.Image:
    """(H, W, 3) float in [0, 1] -> PIL RGB."""
    return Image.fromarray((np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB")


def blur(field: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur (sigma = ``radius`` pixels) of an (H, W) or (H, W, 3) float image."""
    if radius <= 0.05:
        return field
    sigma = (radius, radius, 0) if field.ndim == 3 else radius
    return ndimage.gaussian_filter(
        field.astype(np.float32), sigma=sigma, mode="nearest", truncate=3.0
    )


def _polygon(cx: float, cy: float, radii: list[float], angle: float) -> list[tuple[float, float]]:
    n = len(radii)
    return [
        (
            cx + r * math.cos(angle + 2 * math.pi * i / n),
            cy + r * math.sin(angle + 2 * math.pi * i / n),
        )
        for i, r in enumerate(radii)
    ]


def draw_motif(
    draw: ImageDraw.ImageDraw,
    name: str,
    cx: float,
    cy: float,
    size: float,
    fill: int | tuple[int, ...],
    rng: np.random.Generator,
    line: int | tuple[int, ...] | None = None,
) -> None:
    """Draw one motif centred at (cx, cy) pixels, about ``size`` pixels across.

    Draws a fixed number of random values for a given motif, whatever its pixel size.
    """
    s = max(size, 2.0) / 2.0
    width = max(1, int(round(s * 0.12)))
    angle = float(rng.uniform(0, 2 * math.pi))
    jitter = rng.uniform(0.8, 1.2, size=16)
    outline = line if line is not None else fill
    if name == "disc":
        draw.ellipse(
            [cx - s, cy - s * jitter[0], cx + s, cy + s * jitter[0]], fill=fill, outline=outline
        )
    elif name == "ring":
        draw.ellipse(
            [cx - s, cy - s, cx + s, cy + s], outline=fill, width=max(1, int(s * 0.3 * jitter[0]))
        )
        draw.ellipse([cx - s * 0.3, cy - s * 0.3, cx + s * 0.3, cy + s * 0.3], fill=outline)
    elif name == "star":
        n_pts = max(5, int(jitter[1] * 6))
        radii = [s if i % 2 == 0 else s * 0.42 * jitter[2] for i in range(2 * n_pts)]
        draw.polygon(_polygon(cx, cy, radii, angle), fill=fill, outline=outline)
    elif name == "flower":
        for i in range(6):
            a = angle + i * math.pi / 3
            px, py = cx + 0.55 * s * math.cos(a), cy + 0.55 * s * math.sin(a)
            r = 0.42 * s * jitter[i]
            draw.ellipse([px - r, py - r, px + r, py + r], fill=fill, outline=outline)
        draw.ellipse([cx - 0.3 * s, cy - 0.3 * s, cx + 0.3 * s, cy + 0.3 * s], fill=outline)
    elif name == "leaf":
        pts = [
            (
                cx
                + s * math.cos(angle) * t
                + 0.35 * s * math.sin(math.pi * (t + 1) / 2) * -math.sin(angle) * sgn,
                cy
                + s * math.sin(angle) * t
                + 0.35 * s * math.sin(math.pi * (t + 1) / 2) * math.cos(angle) * sgn,
            )
            for sgn in (1, -1)
            for t in (np.linspace(-1, 1, 9) if sgn == 1 else np.linspace(1, -1, 9))
        ]
        draw.polygon(pts, fill=fill, outline=outline)
        draw.line(
            [
                (cx - s * math.cos(angle), cy - s * math.sin(angle)),
                (cx + s * math.cos(angle), cy + s * math.sin(angle)),
            ],
            fill=outline,
            width=width,
        )
    elif name == "spiral":
        t = np.linspace(0, 4 * math.pi * jitter[0], 60)
        r = s * t / t[-1]
        draw.line(
            list(zip(cx + r * np.cos(t + angle), cy + r * np.sin(t + angle))),
            fill=fill,
            width=width * 2,
        )
    elif name == "wave":
        x = np.linspace(-s, s, 40)
        y = 0.35 * s * np.sin(x / s * math.pi * 2 * jitter[0])
        for k in (-0.5, 0.0, 0.5):
            draw.line(list(zip(cx + x, cy + y + k * s)), fill=fill, width=width * 2)
    elif name == "zigzag":
        n = 7
        pts = [
            (cx - s + 2 * s * i / (n - 1), cy + (0.45 * s if i % 2 else -0.45 * s) * jitter[i])
            for i in range(n)
        ]
        draw.line(pts, fill=fill, width=width * 2, joint="curve")
    elif name == "cross":
        a, b = 0.28 * s * jitter[0], s
        draw.rectangle([cx - a, cy - b, cx + a, cy + b], fill=fill, outline=outline)
        draw.rectangle([cx - b, cy - a, cx + b, cy + a], fill=fill, outline=outline)
    elif name == "diamond":
        draw.polygon(
            _polygon(cx, cy, [s, 0.6 * s * jitter[0], s, 0.6 * s * jitter[0]], math.pi / 2),
            fill=fill,
            outline=outline,
        )
    elif name == "bird":
        w = s * jitter[0]
        draw.line(
            [
                (cx - w, cy - 0.3 * s),
                (cx - 0.4 * w, cy - 0.45 * s),
                (cx, cy),
                (cx + 0.4 * w, cy - 0.45 * s),
                (cx + w, cy - 0.3 * s),
            ],
            fill=fill,
            width=width * 2,
            joint="curve",
        )
    elif name == "tree":
        draw.rectangle([cx - 0.1 * s, cy, cx + 0.1 * s, cy + s], fill=outline)
        for i in range(3):
            r = s * (0.55 - 0.12 * i) * jitter[i]
            oy = cy - 0.3 * s * i
            draw.ellipse([cx - r, oy - r, cx + r, oy + r * 0.8], fill=fill)
    elif name == "house":
        draw.rectangle(
            [cx - 0.7 * s, cy - 0.1 * s, cx + 0.7 * s, cy + s], fill=fill, outline=outline
        )
        draw.polygon(
            [(cx - 0.9 * s, cy - 0.1 * s), (cx, cy - s * jitter[0]), (cx + 0.9 * s, cy - 0.1 * s)],
            fill=outline,
        )
        draw.rectangle([cx - 0.15 * s, cy + 0.4 * s, cx + 0.15 * s, cy + s], fill=outline)
    elif name == "figure":
        r = 0.25 * s
        draw.ellipse([cx - r, cy - s, cx + r, cy - s + 2 * r], fill=outline)
        draw.polygon(
            [
                (cx - 0.2 * s, cy - s + 2 * r),
                (cx + 0.2 * s, cy - s + 2 * r),
                (cx + 0.5 * s * jitter[0], cy + s),
                (cx - 0.5 * s * jitter[1], cy + s),
            ],
            fill=fill,
        )
    elif name == "crescent":
        draw.ellipse([cx - s, cy - s, cx + s, cy + s], fill=fill)
        o = 0.45 * s * jitter[0]
        draw.ellipse([cx - s + o, cy - s, cx + s + o, cy + s - o * 0.2], fill=outline)
    elif name == "triangle":
        draw.polygon(
            _polygon(cx, cy, [s, s * jitter[0], s * jitter[1]], angle), fill=fill, outline=outline
        )
    else:
        raise ValueError(f"unknown motif {name!r}")


def perspective_coeffs(
    src: list[tuple[float, float]], dst: list[tuple[float, float]]
) -> tuple[float, ...]:
    """``Image.transform(..., Image.PERSPECTIVE)`` coefficients: output ``dst`` -> input ``src``."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    sol = np.linalg.solve(np.asarray(rows, np.float64), np.asarray(rhs, np.float64))
    return tuple(float(c) for c in sol)
