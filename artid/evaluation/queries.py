"""Descriptor sets -> what the pipeline consumes: aligned parts, labels, keys, unreadable queries.

The protocol counts every query of the ground truth. A query whose image could not be read
(listed in its descriptor file's ``failures``) or whose descriptor is missing or not finite has
no prediction: it stays in the query set as a wrong answer at the lowest score (``-inf``),
with a warning naming it, so that M (the number of non-distractor queries) is the ground
truth's and GAP / ACC are not flattered by dropping hard photos.

Several descriptor sets of the same images (e.g. two backbones; thesis appendix B.1) are
aligned by image path: the parts of one row describe the same image.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from artid.data.entries import DISTRACTOR, Entry
from artid.descriptors import DescriptorSet
from artid.errors import ArtidError

log = logging.getLogger(__name__)

#: The prediction of a query that could not be described: no class has this id.
NO_PREDICTION = -2


@dataclass
class Queries:
    """Queries (or database images) ready for the pipeline.

    Attributes:
        parts: one (R, D_i) float32 matrix per descriptor set, rows = the readable ``entries``.
        entries: the R entries with descriptors, in row order.
        unreadable: entries of the ground truth with no usable descriptor (not in ``parts``).
        model, settings: of the first descriptor set (for reports).
    """

    parts: list[np.ndarray]
    entries: list[Entry]
    unreadable: list[Entry]
    model: dict
    settings: dict

    @property
    def labels(self) -> np.ndarray:
        return np.fromiter((e.label for e in self.entries), dtype=np.int64, count=len(self.entries))

    @property
    def keys(self) -> np.ndarray:
        """Tie-break keys of the ranking: the image paths."""
        return np.array([e.path for e in self.entries], dtype=str)

    @property
    def all_entries(self) -> list[Entry]:
        """Every query: the described ones, then the unreadable ones."""
        return self.entries + self.unreadable


def _failure_entry(failure: dict, source: str) -> Entry | None:
    try:
        return Entry(
            path=str(failure["path"]), label=int(failure["label"]), kind=str(failure["kind"])
        )
    except (KeyError, TypeError, ValueError):
        log.warning(
            "%s: unreadable image %s has no label in its manifest (descriptors extracted by an "
            "older artid): it cannot be counted; extract again to count it",
            source,
            failure.get("path"),
        )
        return None


def combine(sets: Sequence[DescriptorSet], name: str) -> Queries:
    """Align descriptor sets of the same images by path; collect the unreadable ones.

    Args:
        sets: one or more descriptor sets (parts) of one split.
        name: the split's name for messages (``database``, ``val``, ``test``).
    """
    if not sets:
        raise ArtidError(f"no {name} descriptors given")
    first = sets[0]
    unreadable: dict[str, Entry] = {}
    for dset in sets:
        for failure in dset.failures:
            entry = _failure_entry(failure, f"{name} descriptors")
            if entry is not None:
                unreadable.setdefault(entry.path, entry)
    rows = [{e.path: i for i, e in enumerate(d.entries)} for d in sets]
    for d, r in zip(sets, rows):
        if len(r) != len(d.entries):
            raise ArtidError(
                f"{name} descriptors list the same image twice: each image must have one row"
            )
    usable = [np.isfinite(d.matrix).all(axis=1) & (d.matrix != 0).any(axis=1) for d in sets]
    keep: list[int] = []
    for i, entry in enumerate(first.entries):
        if entry.path in unreadable:
            continue
        where = [r.get(entry.path) for r in rows]
        if any(j is None for j in where):
            unreadable[entry.path] = entry
            continue
        if not all(ok[j] for ok, j in zip(usable, where)):
            unreadable[entry.path] = entry
            continue
        keep.append(i)
    for d, r in zip(sets[1:], rows[1:]):
        for path in r.keys() - rows[0].keys():
            unreadable.setdefault(path, d.entries[r[path]])
    entries = [first.entries[i] for i in keep]
    parts = [
        np.ascontiguousarray(d.matrix[[r[e.path] for e in entries]], dtype=np.float32)
        for d, r in zip(sets, rows)
    ]
    lost = sorted(unreadable.values(), key=lambda e: e.path)
    if lost:
        log.warning(
            "%d %s image(s) have no usable descriptor (unreadable image, missing or non-finite "
            "row), e.g. %s",
            len(lost),
            name,
            ", ".join(e.path for e in lost[:3]),
        )
    return Queries(parts, entries, lost, first.model, first.settings)


def check_database(db: Queries) -> None:
    """Database images need a class id; an unreadable one is left out (already warned about)."""
    labels = db.labels
    if (labels < 0).any():
        bad = int(np.flatnonzero(labels < 0)[0])
        raise ArtidError(
            f"database entry {db.entries[bad].path} has label {labels[bad]}: "
            "database images need a class id"
        )
    if not db.entries:
        raise ArtidError("no database image has a usable descriptor")


def check_queries(name: str, queries: Queries, db: Queries) -> None:
    """Same dimensions as the database; warn about query classes with no database image."""
    dims, db_dims = [p.shape[1] for p in queries.parts], [p.shape[1] for p in db.parts]
    if dims != db_dims:
        show = lambda d: str(d[0]) if len(d) == 1 else "+".join(map(str, d))  # noqa: E731
        raise ArtidError(
            f"{name} descriptors have dimension {show(dims)} but the database has {show(db_dims)}: "
            "they were not extracted with the same model(s)"
        )
    labels = np.array([e.label for e in queries.all_entries])
    missing = np.setdiff1d(labels[labels != DISTRACTOR], db.labels)
    if missing.size:
        log.warning(
            "%d %s query class(es) have no database image (e.g. %d): those queries cannot be right",
            missing.size,
            name,
            int(missing[0]),
        )


def with_unreadable(
    queries: Queries, pred: np.ndarray, score: np.ndarray, conf: np.ndarray
) -> tuple[list[Entry], np.ndarray, np.ndarray, np.ndarray]:
    """Answers for every query: the unreadable ones appended as wrong at the lowest score."""
    n = len(queries.unreadable)
    return (
        queries.all_entries,
        np.concatenate([pred, np.full(n, NO_PREDICTION, dtype=np.int64)]),
        np.concatenate([score, np.full(n, -np.inf)]),
        np.concatenate([conf, np.zeros(n)]),
    )


def subsample(queries: Queries, keep_entries: set[str]) -> Queries:
    """The queries whose path is in ``keep_entries`` (e.g. after dropping distractors)."""
    rows = [i for i, e in enumerate(queries.entries) if e.path in keep_entries]
    return Queries(
        [p[rows] for p in queries.parts],
        [queries.entries[i] for i in rows],
        [e for e in queries.unreadable if e.path in keep_entries],
        queries.model,
        queries.settings,
    )
