"""Exhibit designs: what identifies a work (kind, style, palette, motifs, seeds) and its relatives.

A :class:`Design` fixes everything that makes an exhibit that exhibit: kind (department),
style, proportions, palette, motifs and the seeds of its composition and details. A
:class:`Pose` is how one photo sees it. Rendering lives in :mod:`artid.data.synth.artworks`
(flat works in :mod:`~artid.data.synth.flat`, objects in :mod:`~artid.data.synth.objects`).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace

import numpy as np

from artid.data.synth.drawing import MOTIFS
from artid.data.synth.seeding import sub_seed

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
KIND_WEIGHTS = {
    "painting": 0.2,
    "print": 0.2,
    "textile": 0.12,
    "photograph": 0.1,
    "vessel": 0.15,
    "sculpture": 0.13,
    "coin": 0.1,
}
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


def luminance(c: np.ndarray) -> np.ndarray:
    """Luma (Rec. 601) of (..., 3) RGB colours."""
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
    return pal[np.argsort(-luminance(pal))]


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
    return Design(
        kind=kind,
        style=style,
        aspect=aspect,
        palette=tuple(map(tuple, palette.tolist())),
        motifs=motifs,
        composition=sub_seed(rng),
        detail=sub_seed(rng),
        age=float(rng.uniform(0.0, 0.5)),
        flip=False,
    )


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
        return replace(
            base,
            palette=tuple(map(tuple, pal.tolist())),
            aspect=base.aspect * float(rng.uniform(0.97, 1.03)) if base.kind != "coin" else 1.0,
            age=float(np.clip(base.age + rng.uniform(-0.3, 0.3), 0, 1)),
            flip=bool(rng.random() < 0.25) != base.flip,
        )
    if relation == "variant":
        pal = np.clip(pal + rng.normal(0, 0.06, pal.shape), 0, 1)
        if rng.random() < 0.5:
            pal[int(rng.integers(len(pal)))] = make_palette(rng, 1)[0]
        motifs = list(base.motifs)
        if rng.random() < 0.5:
            motifs[int(rng.integers(len(motifs)))] = str(rng.choice(MOTIFS))
        return replace(
            base,
            palette=tuple(map(tuple, pal.tolist())),
            detail=sub_seed(rng),
            motifs=tuple(sorted(set(motifs))),
            age=float(rng.uniform(0, 0.5)),
        )
    if relation == "series":
        pal = np.clip(pal + rng.normal(0, 0.04, pal.shape), 0, 1)
        return replace(
            base,
            palette=tuple(map(tuple, pal.tolist())),
            composition=sub_seed(rng),
            detail=sub_seed(rng),
            aspect=base.aspect * float(rng.uniform(0.9, 1.1)) if base.kind != "coin" else 1.0,
            age=float(rng.uniform(0, 0.5)),
        )
    raise ValueError(f"unknown relation {relation!r}; expected one of {RELATIONS}")


def size_for(design: Design, long_side: int) -> tuple[int, int]:
    """(height, width) of a render whose longer side is ``long_side``."""
    if design.aspect >= 1:
        return max(8, int(round(long_side / design.aspect))), long_side
    return long_side, max(8, int(round(long_side * design.aspect)))


def is_flat(design: Design) -> bool:
    """True for works that hang on a wall (rendered edge to edge)."""
    return design.kind in FLAT_KINDS
