"""A bundle's contents in memory, and the edits ``artid index add`` / ``remove`` make to them.

Nothing here touches the disk: :mod:`artid.service.bundle` reads and writes these contents.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from artid.data.entries import Entry
from artid.descriptors import DescriptorSet
from artid.errors import ArtidError
from artid.extraction.local import LocalFeatures, LocalFeatureSet
from artid.retrieval.pipeline import KNNPipeline, PipelineConfig
from artid.retrieval.projection import Projection
from artid.retrieval.whitening import PCAWhitening
from artid.service.calibrate import Calibration
from artid.service.collection import Artwork


@dataclass
class BundleData:
    """The contents of a bundle, in memory.

    Attributes:
        model: ``{"ref": ..., "spec": ...}``: what :func:`artid.models.build_embedder` takes
            (a model name, or ``models/<sha>.pt`` relative to the bundle) and the model's spec.
        extraction: how query descriptors are computed (``max_size``, ``scales``).
        descriptors: the searched database descriptors, (N, d) float32 L2-normalised rows
            (whitened when ``whitening`` is set), entries in row order.
        whitening: the PCA-whitening applied to query descriptors, or None.
        artworks: one per class label present in ``descriptors``.
        thumbnails: label -> thumbnail file name in ``thumbnails/``.
        k, tau: the kNN classifier's hyper-parameters.
        calibration: the acceptance threshold and its validation figures.
        info: free-form provenance (source collection, tuning results, history).
        generation: the generation these contents were read from (None for new contents); a
            bundle refuses to commit contents read from a generation that is no longer current.
        attributes: the attributes run that tags photos, or None: ``ref`` (``attributes/<sha>``, a
            copy of the run inside the bundle, see :func:`artid.service.bundle_layout.store_attributes`),
            ``source`` (the run folder it was copied from) and what
            :meth:`artid.attributes.tagger.Tagger.describe` says of it.
        local: the SIFT features of the descriptor rows, in row order, when the bundle re-ranks
            (``artid index build --rerank K``), else None.
        rerank: the re-ranking stage's record (:func:`artid.service.reranking.build_stage`), or None.
    """

    model: dict[str, Any]
    extraction: dict[str, Any]
    descriptors: DescriptorSet
    whitening: PCAWhitening | None
    artworks: list[Artwork]
    thumbnails: dict[int, str]
    k: int
    tau: float
    calibration: Calibration
    info: dict[str, Any] = field(default_factory=dict)
    generation: str | None = None
    attributes: dict[str, Any] | None = None
    local: LocalFeatureSet | None = None
    rerank: dict[str, Any] | None = None

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64 labels of the descriptor rows."""
        return self.descriptors.labels

    @property
    def n_classes(self) -> int:
        return len(self.artworks)

    def pipeline(self) -> KNNPipeline:
        """The kNN pipeline these contents store: whitening, searched database, k (limited to the
        database size: removed artworks may leave fewer images) and tau."""
        d = self.descriptors.matrix.shape[1]
        width = d
        if self.whitening is not None:
            assert self.whitening.mean is not None, "a bundle's whitening is fitted"
            width = self.whitening.mean.shape[0]
        projection = Projection([self.whitening], [width])
        matrix = np.asarray(self.descriptors.matrix, dtype=np.float32)
        return KNNPipeline.from_parts(projection, matrix, self.labels, min(self.k, len(matrix)), self.tau,
                                      n_classes=self.n_classes, config=PipelineConfig(use_gpu=False))

    def artwork_by_label(self) -> dict[int, Artwork]:
        return {a.label: a for a in self.artworks}

    def check(self) -> None:
        """Refuse inconsistent contents (rows of unknown artworks, artworks without rows, bad k)."""
        labels = set(int(x) for x in np.unique(self.labels))
        known = {a.label for a in self.artworks}
        if len(known) != len(self.artworks):
            raise ArtidError("bundle: two artworks share a class label")
        keys = [a.key for a in self.artworks]
        if len(set(keys)) != len(keys):
            raise ArtidError("bundle: two artworks share a key")
        if labels - known:
            raise ArtidError(f"bundle: descriptor rows of unknown class(es) {sorted(labels - known)[:5]}")
        if known - labels:
            raise ArtidError(f"bundle: artwork(s) without any image: {sorted(known - labels)[:5]}")
        if self.k < 1:
            raise ArtidError(f"bundle: k must be >= 1, got {self.k}")
        if (self.local is None) != (self.rerank is None):
            raise ArtidError("bundle: a re-ranking stage needs the local features of its images, and the other way")
        if self.local is not None and len(self.local) != len(self.labels):
            raise ArtidError(f"bundle: local features of {len(self.local)} images for {len(self.labels)} descriptors")

    @property
    def rerank_config(self) -> dict[str, Any]:
        """The re-ranking stage's settings (K, SIFT keypoints and image size; empty without re-ranking)."""
        return dict((self.rerank or {}).get("stage", {}).get("config", {}))


def without_artworks(data: BundleData, keys: list[str]) -> BundleData:
    """The bundle's contents with the artworks ``keys`` (and all their images) removed.

    Raises:
        ArtidError: a key not in the bundle, or removing every artwork.
    """
    known = {a.key: a for a in data.artworks}
    missing = [k for k in keys if k not in known]
    if missing:
        raise ArtidError(f"no artwork {', '.join(map(repr, missing))} in the bundle")
    drop = {known[k].label for k in keys}
    if len(drop) == len(data.artworks):
        raise ArtidError("removing every artwork would leave an empty bundle")
    keep = ~np.isin(data.labels, np.fromiter(drop, dtype=np.int64))
    d = data.descriptors
    rows = np.flatnonzero(keep)
    descriptors = DescriptorSet(matrix=np.asarray(d.matrix)[rows], entries=[d.entries[i] for i in rows],
                                model=d.model, settings=d.settings, failures=d.failures)
    return replace(data, descriptors=descriptors, local=None if data.local is None else data.local.rows(rows),
                   artworks=[a for a in data.artworks if a.label not in drop],
                   thumbnails={lab: t for lab, t in data.thumbnails.items() if lab not in drop})


def with_artworks(data: BundleData, artworks: list[Artwork], matrix: np.ndarray, entries: list[Entry],
                  thumbnails: dict[int, str], failures: list[dict[str, str]] | None = None,
                  local: list[LocalFeatures] | None = None) -> BundleData:
    """The bundle's contents with new artworks appended.

    Args:
        data: the current contents.
        artworks: the new artworks (keys and labels not yet in the bundle).
        matrix: (M, d) float32 searched descriptors of their images (already whitened).
        entries: the M entries, labels among the new artworks'.
        thumbnails: label -> thumbnail name for the new artworks.
        failures: ``{"path", "error"}`` of their images that could not be read (kept with the
            bundle's descriptors, after those of earlier changes).
        local: the M images' local features, needed when the bundle re-ranks (ignored otherwise).
    """
    keys = {a.key for a in data.artworks}
    clash = [a.key for a in artworks if a.key in keys]
    if clash:
        raise ArtidError(f"artwork {', '.join(map(repr, clash))} is already in the bundle "
                         "(remove it first to replace its images)")
    d = data.descriptors
    if matrix.shape[1] != d.matrix.shape[1]:
        raise ArtidError(f"new descriptors have dimension {matrix.shape[1]}, the bundle {d.matrix.shape[1]}")
    if data.local is not None and (local is None or len(local) != len(entries)):
        raise ArtidError("the bundle re-ranks: new images need their local features, one per image")
    descriptors = DescriptorSet(matrix=np.concatenate([np.asarray(d.matrix), matrix.astype(np.float32)]),
                                entries=list(d.entries) + list(entries), model=d.model, settings=d.settings,
                                failures=list(d.failures) + list(failures or []))
    return replace(data, descriptors=descriptors, artworks=list(data.artworks) + list(artworks),
                   thumbnails={**data.thumbnails, **thumbnails},
                   local=None if data.local is None or local is None else data.local.extended(local))


def next_label(data: BundleData) -> int:
    """The first free class label above every label in the bundle."""
    return max((a.label for a in data.artworks), default=-1) + 1
