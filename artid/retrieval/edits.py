"""Edits of a fitted pipeline's database: rows added or removed without fitting anything again.

What ``artid index add`` / ``remove`` do to a bundle's pipeline. The projection, (k, tau), the
expansion and the re-ranking rule stay as fitted; an IVF index keeps its cells (no new k-means) and
is refilled; an IVF-PQ index keeps its quantizers, encodes only the new rows and deletes the removed
ones from its lists; rows stay in the pipeline's storage dtype; the local features stay in step with
the rows. With DBA, new rows are augmented against the current database (a rebuild augments every
row anew).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from artid.errors import ArtidError
from artid.extraction.local import LocalFeatures
from artid.retrieval.compressed import PQSearcher
from artid.retrieval.index import IVFSearcher
from artid.retrieval.knn import KNNClassifier


def _replace_rows(
    pipe: Any, db: np.ndarray, labels: np.ndarray, n_classes: int, kept: np.ndarray | None = None
) -> None:
    """The classifier over the new rows (``kept``: the old rows they are, after a removal)."""
    clf = pipe._fitted()[0]
    db = np.ascontiguousarray(db, dtype=pipe.config.storage)
    searcher: IVFSearcher | PQSearcher | None = None
    if isinstance(clf.searcher, IVFSearcher):
        searcher = clf.searcher.with_rows(db)
    elif isinstance(clf.searcher, PQSearcher):
        pq = clf.searcher
        searcher = pq.added(db) if kept is None else pq.kept(kept, db)
    pipe.classifier = KNNClassifier(
        db, labels, n_classes=n_classes, use_gpu=clf.use_gpu, searcher=searcher
    )
    if pipe.reranker is not None and pipe.local is not None:
        pipe.reranker.database = pipe.local.__getitem__


def add_rows(
    pipe: Any,
    x: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray,
    features: Sequence[LocalFeatures] | None = None,
    n_classes: int | None = None,
) -> None:
    """Append database rows: raw descriptors of the fitted parts, their classes, and their local
    features when the pipeline re-ranks; N of the softmax grows with new classes (or is given)."""
    clf, projection, _, _ = pipe._fitted()
    new = projection.transform(x)
    if pipe.expansion.dba_n > 0:
        both = np.concatenate([clf.db, new])
        new = pipe.expansion.augment(both, pipe.config.use_gpu)[len(clf.db) :]
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(new),):
        raise ArtidError(f"{len(new)} new rows but labels of shape {labels.shape}")
    if pipe.local is not None:
        if features is None or len(features) != len(labels):
            raise ArtidError(
                "the pipeline re-ranks: new rows need their local features, one per row"
            )
        pipe.local = pipe.local.extended(features)
    all_labels = np.concatenate([clf.labels, labels])
    n = max(clf.n_classes, int(np.unique(all_labels).size)) if n_classes is None else n_classes
    _replace_rows(pipe, np.concatenate([clf.db, new]), all_labels, n)


def keep_rows(pipe: Any, rows: Sequence[int] | np.ndarray, n_classes: int | None = None) -> None:
    """Keep only these database rows, in this order (what removing artworks leaves); N of the
    softmax becomes the classes left (or is given)."""
    clf = pipe._fitted()[0]
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        raise ArtidError("removing every database image would leave an empty index")
    if pipe.local is not None:
        pipe.local = pipe.local.rows(rows)
    labels = clf.labels[rows]
    n = int(np.unique(labels).size) if n_classes is None else n_classes
    _replace_rows(pipe, np.asarray(clf.db)[rows], labels, n, kept=rows)
