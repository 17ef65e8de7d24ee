"""iMet-style attribute labels of an exhibit: department, style, dominant colours, motifs.

Labels are strings ``group::value`` as in the iMet collection (``culture::...``,
``tag::...``): here ``department::Textiles``, ``style::floral``, ``colour::red``,
``motif::star``. Dominant colours are measured on a small render of the exhibit, not
taken from its palette, so they describe what the image shows.
"""

from __future__ import annotations

import colorsys

import numpy as np

from artid.data.synth.artworks import KINDS, STYLES, Design, render
from artid.data.synth.drawing import MOTIFS

COLOUR_NAMES = (
    "black",
    "white",
    "grey",
    "red",
    "orange",
    "brown",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
)
#: A colour is dominant when it covers at least this share of the exhibit's pixels.
MIN_COLOUR_SHARE = 0.15
MAX_COLOURS = 3


def colour_name(rgb: np.ndarray) -> str:
    """Basic colour name of one (3,) RGB colour in [0, 1]."""
    h, s, v = colorsys.rgb_to_hsv(*(float(c) for c in rgb))
    if v < 0.2:
        return "black"
    if s < 0.18:
        return "white" if v > 0.8 else "grey"
    if h < 0.04 or h >= 0.95:
        return "red" if v > 0.35 else "brown"
    if h < 0.11:
        return "orange" if v > 0.6 else "brown"
    if h < 0.19:
        return "yellow" if v > 0.5 else "brown"
    if h < 0.45:
        return "green"
    if h < 0.7:
        return "blue"
    if h < 0.83:
        return "purple"
    return "pink"


def dominant_colours(rgb: np.ndarray, alpha: np.ndarray) -> list[str]:
    """Names covering at least :data:`MIN_COLOUR_SHARE` of the pixels with alpha > 0.5, largest 1st.

    Args:
        rgb: (H, W, 3) float in [0, 1].
        alpha: (H, W) float.
    """
    pixels = rgb[alpha > 0.5]
    if len(pixels) == 0:
        return []
    q = np.round(pixels * 15).astype(np.int64)  # 16 levels per channel: name each level once
    keys, counts = np.unique(q[:, 0] * 256 + q[:, 1] * 16 + q[:, 2], return_counts=True)
    share: dict[str, float] = {}
    for key, count in zip(keys.tolist(), counts.tolist()):
        col = np.asarray([key // 256, (key // 16) % 16, key % 16], np.float64) / 15.0
        name = colour_name(col)
        share[name] = share.get(name, 0.0) + count / len(pixels)
    ranked = sorted(share.items(), key=lambda kv: (-kv[1], COLOUR_NAMES.index(kv[0])))
    return [name for name, s in ranked[:MAX_COLOURS] if s >= MIN_COLOUR_SHARE]


def drawn_motifs(design: Design) -> list[str]:
    """Motifs the renderer actually draws on this design (sculptures, glazed vessels: none)."""
    if design.kind == "sculpture" or (design.kind == "vessel" and design.style == "glazed"):
        return []
    return sorted(design.motifs)


def labels_of(design: Design, render_size: int = 48) -> list[str]:
    """All attribute labels of an exhibit, e.g. ``["department::Textiles", "style::floral"]``."""
    rgb, alpha = render(design, render_size)
    out = [f"department::{KINDS[design.kind]}", f"style::{design.style}"]
    out += [f"colour::{c}" for c in dominant_colours(rgb, alpha)]
    out += [f"motif::{m}" for m in drawn_motifs(design)]
    return out


def vocabulary() -> list[str]:
    """Every label the generator can emit, in a fixed order (attribute ids are indices into it)."""
    labels = [f"department::{d}" for d in KINDS.values()]
    labels += sorted({f"style::{s}" for styles in STYLES.values() for s in styles})
    labels += [f"colour::{c}" for c in COLOUR_NAMES]
    labels += [f"motif::{m}" for m in MOTIFS]
    return labels
