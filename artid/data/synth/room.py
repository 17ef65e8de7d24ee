"""The gallery around an exhibit: rooms (wall, floor, light), frames and mats, visitors in the way.

A few rooms (:data:`N_ROOMS`) are shared by many visitor photos, as the Met's galleries are: the
common context that a descriptor must learn to ignore.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from artid.data.synth.drawing import blur, value_noise
from artid.data.synth.seeding import rng_for

#: Number of gallery rooms (the context shared by many visitor photos).
N_ROOMS = 12


def room(
    seed: int, room_id: int, h: int, w: int, rng: np.random.Generator
) -> tuple[np.ndarray, float, np.ndarray]:
    """A gallery wall and floor seen from standing height.

    Returns:
        rgb (H, W, 3), the floor line as a fraction of the height, and the room's light tint (3,).
    """
    rr = rng_for(seed, "room", room_id)
    wall = np.asarray(
        rr.choice(
            [
                [0.9, 0.89, 0.86],
                [0.55, 0.12, 0.14],
                [0.2, 0.27, 0.38],
                [0.62, 0.6, 0.55],
                [0.3, 0.42, 0.36],
                [0.82, 0.76, 0.64],
                [0.16, 0.16, 0.17],
            ]
        ),
        np.float32,
    )
    wall = np.clip(wall + rr.normal(0, 0.04, 3), 0, 1)
    floor = np.asarray(
        rr.choice([[0.45, 0.3, 0.18], [0.6, 0.58, 0.55], [0.3, 0.2, 0.13], [0.75, 0.72, 0.66]]),
        np.float32,
    )
    tint = np.clip(np.asarray([1.0, 1.0, 1.0]) + rr.normal(0, 0.05, 3), 0.85, 1.15).astype(
        np.float32
    )
    planks = bool(rr.random() < 0.5)
    horizon = float(np.clip(rr.uniform(0.7, 0.9) + rng.normal(0, 0.06), 0.55, 1.05))
    tex = value_noise(rng, h, w, cells=(3, 9))
    rgb = wall[None, None, :] * (0.88 + 0.2 * tex)[..., None]
    yy = np.arange(h, dtype=np.float32)[:, None] / h
    xx = np.arange(w, dtype=np.float32)[None, :] / w
    fl = yy >= horizon
    if fl.any():
        depth = np.clip((yy - horizon) / max(1e-3, 1.0 - horizon + 0.05), 0, 1)
        pattern = (
            0.9 + 0.1 * np.sin((xx - 0.5) / (0.3 + depth) * 40.0)
            if planks
            else 0.92 + 0.1 * value_noise(rng, h, w, cells=(8, 24))
        )
        floor_rgb = floor[None, None, :] * (pattern * (0.7 + 0.4 * depth))[..., None]
        rgb = np.where(fl[..., None], floor_rgb, rgb)
        base = (yy >= horizon - 0.015) & (yy < horizon)
        rgb = np.where(base[..., None] & np.ones((1, w, 1), bool), wall * 0.6, rgb)
    return rgb.astype(np.float32), horizon, tint


def frame_work(rgb: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    """Add a mat and/or a frame around a flat work; returns a larger (H', W', 3) image."""
    h, w = rgb.shape[:2]
    out = rgb
    if kind in ("print", "photograph") and rng.random() < 0.6:
        m = max(1, int(rng.uniform(0.06, 0.15) * max(h, w)))
        out = np.pad(out, ((m, m), (m, m), (0, 0)), constant_values=float(rng.uniform(0.85, 0.97)))
    if rng.random() < (0.3 if kind == "textile" else 0.85):
        f = max(1, int(rng.uniform(0.03, 0.09) * max(h, w)))
        col = np.asarray(
            rng.choice(
                [[0.72, 0.55, 0.22], [0.35, 0.22, 0.12], [0.08, 0.08, 0.08], [0.85, 0.83, 0.8]]
            ),
            np.float32,
        )
        H, W = out.shape[0] + 2 * f, out.shape[1] + 2 * f
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        # 0 at the outer edge, 1 at the inner
        dist = np.minimum.reduce([yy, xx, H - 1 - yy, W - 1 - xx]) / f
        bevel = 0.75 + 0.5 * np.sin(np.clip(dist, 0, 1) * math.pi) * (1.0 - 0.3 * (yy > xx))
        frame = col * bevel[..., None]
        frame[f : f + out.shape[0], f : f + out.shape[1]] = out
        out = frame
    return out.astype(np.float32)


def add_visitors(img: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """Occluding visitors: out-of-focus silhouettes in the foreground."""
    H, W = img.shape[:2]
    for _ in range(count):
        layer = Image.new("L", (W, H), 0)
        dr = ImageDraw.Draw(layer)
        cx = rng.uniform(-0.1, 1.1) * W
        head_y = rng.uniform(0.35, 0.9) * H
        s = rng.uniform(0.07, 0.16) * max(H, W)
        dr.ellipse([cx - s * 0.5, head_y - s * 0.65, cx + s * 0.5, head_y + s * 0.65], fill=255)
        dr.rounded_rectangle(
            [cx - s * 1.5, head_y + s * 0.7, cx + s * 1.5, H + s * 4], radius=s * 0.6, fill=255
        )
        mask = blur(np.asarray(layer, np.float32) / 255.0, rng.uniform(0.5, 3.0) * max(H, W) / 500)
        cloth = np.asarray(
            rng.choice(
                [
                    [0.1, 0.1, 0.12],
                    [0.5, 0.1, 0.1],
                    [0.2, 0.25, 0.45],
                    [0.7, 0.7, 0.65],
                    [0.3, 0.4, 0.25],
                ]
            ),
            np.float32,
        )
        skin = np.asarray(
            rng.choice([[0.85, 0.65, 0.52], [0.55, 0.38, 0.27], [0.35, 0.22, 0.16]]), np.float32
        )
        hair = (np.arange(H, dtype=np.float32)[:, None] < head_y - s * 0.1) & np.ones((1, W), bool)
        yy = np.arange(H, dtype=np.float32)[:, None] * np.ones((1, W), np.float32)
        col = np.where(
            (yy < head_y + s * 0.7)[..., None], np.where(hair[..., None], skin * 0.3, skin), cloth
        )
        col = col * (0.8 + 0.3 * value_noise(rng, H, W, cells=(4, 12)))[..., None]
        img = img * (1 - mask[..., None]) + col * mask[..., None]
    return img
