"""Descriptors -> the space the kNN classifier searches: optional PCA-whitening per part,
concatenation.

One descriptor set is one part. Several parts (e.g. two backbones, thesis appendix B.1) are each
L2-normalised and, when whitening, whitened with a whitening fitted on that part's database
descriptors, then concatenated and L2-normalised again, so that every part weighs the same.

Whitening is only as good as the covariance it is fitted on: with N database images the
covariance has at most N - 1 non-zero eigenvalues and the smallest ones are noise that
whitening blows up. :func:`supported_dim` caps the output dimension at a share of N
(:data:`MAX_DIM_SHARE`) and says so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artid.errors import ArtidError
from artid.files import write_json
from artid.retrieval.whitening import PCAWhitening, l2_normalise

log = logging.getLogger(__name__)

#: PCA-whitening keeps at most this share of the number of database images as dimensions. The demo
#: benchmark (1,063 database images) gains from 512-D whitening; a 199-image collection loses
#: most of its GAP at 198-D (issue 11), so the cap sits between.
MAX_DIM_SHARE = 0.5
#: Smallest whitening dimension worth fitting.
MIN_DIM = 8


def supported_dim(requested: int, n_images: int, descriptor_dim: int) -> int:
    """The whitening dimension a database of ``n_images`` descriptors of ``descriptor_dim``
    supports.

    Returns ``min(requested, descriptor_dim, MAX_DIM_SHARE * n_images)`` (at least 1), with a
    warning when that is below ``requested``.
    """
    cap = max(1, min(descriptor_dim, int(MAX_DIM_SHARE * n_images)))
    if requested > cap:
        log.warning(
            "PCA-whitening to %d dimensions needs more data: %d database images of dimension %d "
            "support at most %d (%.0f%% of the images); using %d",
            requested,
            n_images,
            descriptor_dim,
            cap,
            100 * MAX_DIM_SHARE,
            cap,
        )
        return cap
    return requested


def as_parts(x: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """One (N, D) matrix or a sequence of (N, D_i) matrices of one N -> a list of parts."""
    parts = [x] if isinstance(x, np.ndarray) else list(x)
    if not parts:
        raise ArtidError("no descriptors given")
    for i, p in enumerate(parts):
        if p.ndim != 2:
            raise ArtidError(f"descriptor part {i} must be an (N, D) matrix, got shape {p.shape}")
        if p.shape[0] != parts[0].shape[0]:
            raise ArtidError(
                f"descriptor parts have different numbers of rows: {parts[0].shape[0]} and "
                f"{p.shape[0]} (part {i}): they must describe the same images in the same order"
            )
    return parts


class Projection:
    """Per-part whitening (or none), concatenation, L2 normalisation.

    Args:
        whitenings: one fitted :class:`PCAWhitening` or None per part.
        widths: input dimension of each part.
    """

    def __init__(self, whitenings: Sequence[PCAWhitening | None], widths: Sequence[int]) -> None:
        if len(whitenings) != len(widths):
            raise ArtidError("a projection needs one whitening (or None) per descriptor part")
        self.whitenings = list(whitenings)
        self.widths = [int(w) for w in widths]

    @classmethod
    def fit(
        cls,
        db: np.ndarray | Sequence[np.ndarray],
        whiten: bool,
        dim: int = 512,
        shrinkage: float = 1.0,
    ) -> Projection:
        """Fit a whitening per part on the database (``whiten``) or none, with the
        dimension capped."""
        parts = as_parts(db)
        whitenings: list[PCAWhitening | None] = []
        for p in parts:
            if whiten:
                d = supported_dim(dim, p.shape[0], p.shape[1])
                whitenings.append(PCAWhitening(dim=d, shrinkage=shrinkage).fit(p))
            else:
                whitenings.append(None)
        return cls(whitenings, [p.shape[1] for p in parts])

    @property
    def whitened(self) -> bool:
        return any(w is not None for w in self.whitenings)

    @property
    def out_dim(self) -> int:
        return sum(w.out_dim if w is not None else d for w, d in zip(self.whitenings, self.widths))

    def summary(self) -> dict:
        """JSON-able summary: whether whitened and the dimension of each part."""
        return {
            "whiten": "pcaw" if self.whitened else "none",
            "dims": [
                w.out_dim if w is not None else d for w, d in zip(self.whitenings, self.widths)
            ],
            "input_dims": self.widths,
            "out_dim": self.out_dim,
        }

    def transform(self, x: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """(M, sum D_i) parts -> (M, out_dim) float32 L2-normalised rows."""
        parts = as_parts(x)
        if [p.shape[1] for p in parts] != self.widths:
            raise ArtidError(
                f"descriptors of dimensions {[p.shape[1] for p in parts]} do not match the "
                f"{self.widths} this pipeline was fitted on: extract them with the same model(s)"
            )
        out = []
        for p, w in zip(parts, self.whitenings):
            out.append(w.transform(p) if w is not None else l2_normalise(p))
        return out[0] if len(out) == 1 else l2_normalise(np.concatenate(out, axis=1))

    def save(self, folder: Path) -> None:
        """``projection.json`` and ``whitening-<i>.npz`` per whitened part."""
        folder.mkdir(parents=True, exist_ok=True)
        for i, w in enumerate(self.whitenings):
            if w is not None:
                w.save(folder / f"whitening-{i}.npz")
        write_json(
            folder / "projection.json",
            {"widths": self.widths, "whitened": [w is not None for w in self.whitenings]},
        )

    @classmethod
    def load(cls, folder: Path) -> Projection:
        path = folder / "projection.json"
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            widths, whitened = meta["widths"], meta["whitened"]
        except FileNotFoundError:
            raise ArtidError(f"{path} not found: not a saved artid pipeline") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtidError(f"{path}: not an artid projection file ({exc})") from None
        whitenings = [
            PCAWhitening.load(folder / f"whitening-{i}.npz") if wh else None
            for i, wh in enumerate(whitened)
        ]
        return cls(whitenings, widths)
