"""Objects (vessel, sculpture, coin): rendered on a neutral ground with their silhouette as alpha,
seen in a :class:`~artid.data.synth.designs.Pose` (rotation, light, side of a coin)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from artid.data.synth.designs import Design, Pose
from artid.data.synth.drawing import blur, draw_motif, value_noise
from artid.data.synth.flat import aged
from artid.data.synth.seeding import rng_for


def _vessel(d: Design, h: int, w: int, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    rc = rng_for(d.composition, "vessel")
    rd = rng_for(d.detail, "vessel")
    t = np.linspace(0, 1, h, dtype=np.float32)
    prof = np.full(h, 0.18, np.float32)
    for _ in range(int(rc.integers(2, 5))):
        prof += rc.uniform(0.05, 0.3) * np.exp(
            -(((t - rc.uniform(0.15, 0.9)) / rc.uniform(0.08, 0.3)) ** 2)
        )
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
            draw_motif(
                sdr,
                names[r % len(names)],
                (r + 0.5) * tw / reps,
                (y0 + y1) / 2,
                min(tw / reps, y1 - y0) * 0.8,
                fill=int(rd.integers(0, n)),
                rng=rd,
            )
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
    nz = np.sqrt(1 - xn**2)
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
    parts.append(
        (
            ys[idx] + rd.normal(0, 0.03, extra),
            xs[idx] + rd.choice([-1, 1], extra) * rs[idx] * 0.9,
            zs[idx] + rd.normal(0, 0.03, extra),
            rd.uniform(0.025, 0.05, extra),
        )
    )
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
    nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0, 1))
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
        mat = (
            mat * (1 - 0.4 * grain[..., None])
            + np.asarray([0.25, 0.45, 0.35], np.float32) * 0.4 * grain[..., None]
        )
        specular = 0.5
    elif d.style == "marble":
        veins = 0.5 + 0.5 * np.sin(xo * 25 + Y * 10 + grain * 8)
        mat = np.asarray([0.92, 0.9, 0.86], np.float32) - 0.25 * (veins**8)[..., None] * (
            1 - pal[-1] * 0.5
        )
        specular = 0.25
    elif d.style == "wood":
        rings = 0.5 + 0.5 * np.sin(xo * 60 + grain * 6)
        mat = np.asarray([0.5, 0.32, 0.18], np.float32) * (0.75 + 0.35 * rings)[..., None]
        specular = 0.1
    else:
        mat = pal[1] * 0.5 + np.asarray([0.5, 0.48, 0.45], np.float32) * 0.5
        mat = mat * (0.75 + 0.4 * grain)[..., None]
        specular = 0.05
    spec = diffuse**30 * specular
    rgb = mat * (0.3 + 0.8 * diffuse)[..., None] + spec[..., None]
    base_col = pal[-1] * 0.6 + 0.15
    rgb = np.where(
        base[..., None], base_col * (0.9 - 0.2 * Y)[..., None] * np.ones((1, w, 1), np.float32), rgb
    )
    alpha = np.maximum(alpha, base.astype(np.float32))
    return rgb.astype(np.float32), alpha


def _coin(d: Design, h: int, w: int, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    seed = d.composition if pose.side == 0 else d.detail
    rc = rng_for(seed, "coin", pose.side)
    img = Image.new("L", (w, h), 0)
    dr = ImageDraw.Draw(img)
    r = 0.47 * w
    c = w / 2
    dr.ellipse(
        [c - r * 0.9, c - r * 0.9, c + r * 0.9, c + r * 0.9],
        outline=200,
        width=max(1, int(0.03 * w)),
    )
    if pose.side == 0 and rc.random() < 0.35:
        # a profile head, its proportions drawn from the design
        hw, hh, nose, neck = (
            rc.uniform(0.25, 0.4),
            rc.uniform(0.3, 0.5),
            rc.uniform(0.08, 0.2),
            rc.uniform(0.4, 0.7),
        )
        dr.ellipse([c - r * hw, c - r * hh, c + r * hw * 0.9, c + r * hh * 0.8], fill=255)
        dr.polygon(
            [
                (c - r * 0.3, c + r * 0.1),
                (c + r * 0.2, c + r * 0.1),
                (c + r * 0.25, c + r * neck),
                (c - r * 0.35, c + r * neck),
            ],
            fill=230,
        )
        dr.polygon(
            [
                (c + r * hw * 0.85, c - r * 0.1),
                (c + r * (hw + nose), c + r * 0.02),
                (c + r * hw * 0.85, c + r * 0.08),
            ],
            fill=255,
        )
        if rc.random() < 0.6:  # wreath or crown
            for i in range(7):
                a = math.pi * (0.9 + 0.9 * i / 6)
                draw_motif(
                    dr,
                    "leaf",
                    c + r * hw * 0.8 * math.cos(a),
                    c - r * hh * 0.2 + r * hh * 0.8 * math.sin(a),
                    r * 0.18,
                    fill=200,
                    rng=rc,
                )
    else:
        for i, m in enumerate(d.motifs):  # the reverse carries all the design's motifs
            draw_motif(
                dr,
                m,
                c + rc.uniform(-0.25, 0.25) * r,
                c + rc.uniform(-0.25, 0.25) * r,
                r * rc.uniform(0.6, 1.0) / (1 + 0.5 * i),
                fill=240 - 20 * i,
                rng=rc,
            )
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
    metal = {"gold": [0.85, 0.68, 0.3], "silver": [0.75, 0.75, 0.78], "bronze": [0.55, 0.38, 0.22]}[
        d.style
    ]
    patina = value_noise(rng_for(d.detail, "patina", pose.side), h, w, cells=(4, 12, 36))
    base = np.asarray(metal, np.float32) * (0.75 + 0.35 * patina)[..., None]
    if d.style == "bronze":
        green = patina[..., None] ** 2
        base = base * (1 - 0.5 * green) + np.asarray([0.2, 0.4, 0.3], np.float32) * 0.5 * green
    rgb = base * shade[..., None] + 0.25 * np.clip(shade - 1.1, 0, 1)[..., None]
    return aged(rgb.astype(np.float32), d, h, w) if d.style != "gold" else rgb.astype(
        np.float32
    ), alpha


def draw_object(design: Design, h: int, w: int, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """RGB (h, w, 3) and alpha (h, w) float of an object seen in ``pose`` (unclipped)."""
    if design.kind == "vessel":
        return _vessel(design, h, w, pose)
    if design.kind == "sculpture":
        return _sculpture(design, h, w, pose)
    if design.kind == "coin":
        return _coin(design, h, w, pose)
    raise ValueError(f"not an object kind: {design.kind!r}")
