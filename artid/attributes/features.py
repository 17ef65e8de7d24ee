"""Frozen-backbone descriptors of iMet splits, extracted once and shared by the head, kNN and
multi-class models.

The images of a split go through :func:`artid.extraction.extract_list` (batched, resumable) into
``<folder>/<split>.npy/.json``: the same files ``artid extract --list`` writes, so a folder of
descriptors extracted earlier (same backbone and settings) is reused as it is, and several runs can
share one folder (``--descriptors``). Rows are matched to the split's images by path; an image that
could not be read is an error naming it (nothing is dropped silently).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artid.attributes.imet import IMetSplit
from artid.data.entries import DISTRACTOR, Entry
from artid.errors import ArtidError
from artid.extraction import ExtractionSettings, ImageList, extract_list
from artid.models import SINGLE_SCALE, Embedder, build_embedder

#: Longer side of the images the attribute models see by default (iMet images are about 300 px).
DEFAULT_ATTRIBUTE_SIZE = 320


@dataclass(frozen=True)
class FeatureSpec:
    """Which descriptors: backbone name (or checkpoint), weights, scales, image size.

    Attributes:
        model: backbone name or artid checkpoint (:func:`artid.models.build_embedder`).
        weights: local weights file for a backbone name.
        scales: image-pyramid factors (single-scale by default).
        max_size: longer-side bound of the images.
    """

    model: str = "efficientnet_lite0"
    weights: str | None = None
    scales: tuple[float, ...] = SINGLE_SCALE
    max_size: int = DEFAULT_ATTRIBUTE_SIZE

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "weights": self.weights,
            "scales": list(self.scales),
            "max_size": self.max_size,
        }

    @classmethod
    def from_json(cls, obj: dict) -> FeatureSpec:
        return cls(
            str(obj["model"]),
            obj.get("weights"),
            tuple(float(s) for s in obj["scales"]),
            int(obj["max_size"]),
        )


class SplitFeatures:
    """Descriptors of iMet splits in one folder, extracted on first use with one shared embedder.

    Args:
        spec: backbone and settings.
        folder: where ``<split>.npy/.json`` are (or will be) written.
        progress: show progress bars.
    """

    def __init__(self, spec: FeatureSpec, folder: str | Path, progress: bool = True) -> None:
        self.spec, self.folder, self.progress = spec, Path(folder), progress
        self._embedder: Embedder | None = None

    def __call__(self, split: IMetSplit) -> np.ndarray:
        """(N, D) float32 L2-normalised descriptors of the split's images, in the split's order."""
        if self._embedder is None:
            self._embedder = build_embedder(self.spec.model, weights=self.spec.weights)
        entries = [
            Entry(path=str(Path(p).resolve()), label=DISTRACTOR, kind="other") for p in split.paths
        ]
        settings = ExtractionSettings(
            scales=self.spec.scales, max_size=self.spec.max_size, batch_size=1, workers=0
        )
        images = ImageList(split.name, entries, Path("/"))
        dset = extract_list(
            images,
            self._embedder,
            self.folder / split.name,
            settings,
            "cpu",
            progress=self.progress,
        )
        return align_rows(
            dset.matrix,
            [e.path for e in dset.entries],
            dset.failures,
            entries,
            self.folder / f"{split.name}.json",
        )


def align_rows(
    matrix: np.ndarray, paths: list[str], failures: list[dict], wanted: list[Entry], source: Path
) -> np.ndarray:
    """Rows of ``matrix`` (one per path) in the order of ``wanted``; an unreadable or absent image
    is an error."""
    if failures:
        first = failures[0]
        raise ArtidError(
            f"{source}: {len(failures)} image(s) could not be read, e.g. "
            f"{first.get('path', '?')}: {first.get('error', '?')}"
        )
    row = {p: i for i, p in enumerate(paths)}
    missing = [e.path for e in wanted if e.path not in row]
    if missing:
        raise ArtidError(
            f"{source}: no descriptor for {len(missing)} image(s) of the split, e.g. {missing[0]}; "
            "delete the folder or pass another --descriptors"
        )
    return np.asarray(matrix[[row[e.path] for e in wanted]], dtype=np.float32)
