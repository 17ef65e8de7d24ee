"""A bundle's contents in memory, and the edits ``artid index add`` / ``remove`` make to them.

Nothing here touches the disk: :mod:`artid.service.bundle` reads and writes these contents.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from artid.data.entries import Entry
from artid.errors import ArtidError
from artid.extraction.local import LocalFeatures
from artid.retrieval.pipeline import KNNPipeline
from artid.service.calibrate import Calibration
from artid.service.collection import Artwork


@dataclass
class BundleData:
    """The contents of a bundle, in memory.

    Attributes:
        models: one ``{"ref": ..., "spec": ...}`` per descriptor part (several: concatenated
            descriptors, thesis appendix B.1): what :func:`artid.models.build_embedder` takes (a
            model name, or ``models/<sha>.pt`` relative to the bundle) and the model's spec.
        extraction: how photos are described (``max_size``, ``scales``, ``crop``), as
            ``artid extract`` describes query images.
        pipeline: the fitted recognition pipeline, whole: projection, searched database rows
            (in the row order of ``entries``) and labels, index, (k, tau), expansion, and the
            re-ranking stage with the rows' local features when it has one.
        entries: the database rows' images, in row order.
        artworks: one per class label among the pipeline's rows.
        thumbnails: label -> thumbnail file name in ``thumbnails/``.
        calibration: the acceptance threshold of the pipeline's decision (the re-ranked one when
            the pipeline re-ranks) and its validation figures.
        global_calibration: with re-ranking, the threshold of the kNN-only answer (what a
            recognizer with re-ranking turned off accepts by); None without re-ranking.
        failures: ``{"path", "error"}`` of the images that could not be described.
        info: free-form provenance (source collection, validation, what fit chose).
        generation: the generation these contents were read from (None for new contents); a
            bundle refuses to commit contents read from a generation that is no longer current.
        attributes: the attributes run that tags photos, or None: ``ref`` (``attributes/<sha>``, a
            copy of the run inside the bundle), ``source`` (the run folder it was copied from)
            and what :meth:`artid.attributes.tagger.Tagger.describe` says of it.
        validation: the validation photos the thresholds are calibrated on, kept in the bundle
            (:mod:`artid.service.recalibration`: ``ref``, ``queries``, ``distractors``), or None.
    """

    models: list[dict[str, Any]]
    extraction: dict[str, Any]
    pipeline: KNNPipeline
    entries: list[Entry]
    artworks: list[Artwork]
    thumbnails: dict[int, str]
    calibration: Calibration
    global_calibration: Calibration | None = None
    failures: list[dict[str, str]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    generation: str | None = None
    attributes: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64 labels of the database rows."""
        clf = self.pipeline.classifier
        assert clf is not None, "a bundle's pipeline is fitted"
        return clf.labels

    @property
    def n_images(self) -> int:
        return int(len(self.labels))

    @property
    def n_classes(self) -> int:
        return len(self.artworks)

    @property
    def reranks(self) -> bool:
        """Whether the pipeline has a re-ranking stage (and the rows' local features)."""
        return self.pipeline.reranker is not None

    def artwork_by_label(self) -> dict[int, Artwork]:
        return {a.label: a for a in self.artworks}

    def check(self) -> None:
        """Refuse inconsistent contents (rows of unknown artworks, artworks without rows, ...)."""
        labels = set(int(x) for x in np.unique(self.labels))
        known = {a.label for a in self.artworks}
        if len(known) != len(self.artworks):
            raise ArtidError("bundle: two artworks share a class label")
        keys = [a.key for a in self.artworks]
        if len(set(keys)) != len(keys):
            raise ArtidError("bundle: two artworks share a key")
        if labels - known:
            raise ArtidError(
                f"bundle: database rows of unknown class(es) {sorted(labels - known)[:5]}"
            )
        if known - labels:
            raise ArtidError(f"bundle: artwork(s) without any image: {sorted(known - labels)[:5]}")
        if len(self.entries) != self.n_images:
            raise ArtidError(f"bundle: {len(self.entries)} image entries for {self.n_images} rows")
        if [e.label for e in self.entries] != self.labels.tolist():
            raise ArtidError("bundle: the image entries' labels are not those of the rows")
        if not self.models:
            raise ArtidError("bundle: no model describes its photos")
        projection = self.pipeline.projection
        if projection is None or len(self.models) != len(projection.widths):
            raise ArtidError(
                f"bundle: {len(self.models)} model(s) for a pipeline of "
                "another number of descriptor parts"
            )
        if self.reranks != (self.global_calibration is not None):
            raise ArtidError(
                "bundle: a re-ranking pipeline has the thresholds of both answers, another only one"
            )


def _edited(data: BundleData) -> KNNPipeline:
    """A copy of the contents' pipeline to edit (the contents read stay as they were: an edit
    replaces the copy's classifier and local features, and re-points its stage's features)."""
    pipe = copy.copy(data.pipeline)
    pipe.reranker = copy.copy(pipe.reranker)
    return pipe


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
    rows = np.flatnonzero(~np.isin(data.labels, np.fromiter(drop, dtype=np.int64)))
    pipe = _edited(data)
    pipe.keep(rows, n_classes=len(data.artworks) - len(drop))
    return replace(
        data,
        pipeline=pipe,
        entries=[data.entries[i] for i in rows],
        artworks=[a for a in data.artworks if a.label not in drop],
        thumbnails={lab: t for lab, t in data.thumbnails.items() if lab not in drop},
    )


def with_artworks(
    data: BundleData,
    artworks: list[Artwork],
    parts: Sequence[np.ndarray],
    entries: list[Entry],
    thumbnails: dict[int, str],
    failures: list[dict[str, str]] | None = None,
    local: Sequence[LocalFeatures] | None = None,
) -> BundleData:
    """The bundle's contents with new artworks appended.

    Args:
        data: the current contents.
        artworks: the new artworks (keys and labels not yet in the bundle).
        parts: (M, D_i) raw descriptors of their images, one matrix per model of the bundle
            (the pipeline projects them, as it projected the collection's).
        entries: the M entries, labels among the new artworks'.
        thumbnails: label -> thumbnail name for the new artworks.
        failures: ``{"path", "error"}`` of their images that could not be read (kept after
            those of earlier changes).
        local: the M images' local features, needed when the bundle re-ranks.
    """
    keys = {a.key for a in data.artworks}
    clash = [a.key for a in artworks if a.key in keys]
    if clash:
        raise ArtidError(
            f"artwork {', '.join(map(repr, clash))} is already in the bundle "
            "(remove it first to replace its images)"
        )
    if len(parts) != len(data.models):
        raise ArtidError(f"{len(parts)} descriptor part(s) for a bundle of {len(data.models)}")
    if data.reranks and (local is None or len(local) != len(entries)):
        raise ArtidError("the bundle re-ranks: new images need their local features, one per image")
    pipe = _edited(data)
    pipe.add(
        list(parts),
        np.array([e.label for e in entries], dtype=np.int64),
        features=list(local) if data.reranks and local is not None else None,
        n_classes=len(data.artworks) + len(artworks),
    )
    return replace(
        data,
        pipeline=pipe,
        entries=list(data.entries) + list(entries),
        artworks=list(data.artworks) + list(artworks),
        thumbnails={**data.thumbnails, **thumbnails},
        failures=list(data.failures) + list(failures or []),
    )


def next_label(data: BundleData) -> int:
    """The first free class label above every label in the bundle."""
    return max((a.label for a in data.artworks), default=-1) + 1
