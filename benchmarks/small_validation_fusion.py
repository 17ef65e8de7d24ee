"""The re-ranking rule's choice in ``benchmarks/small_validation.py``.

The default whitening is fitted on the database alone, so every val and test query's neighbours
and the inlier counts of its first K are the same in every draw: they are computed once (SIFT
features through evaluate's cache, ``artid.evaluation.reranking``; the verification through the
pipeline's :class:`artid.retrieval.rerank.Reranker`). A draw then only fuses: the default
whitening's (k, tau) tuned on the draw, :func:`artid.retrieval.fusion.choose_fusion` on the draw's
counts, and each (w, min_inliers) answering the test queries at the tau it took on the draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from small_validation_settings import Draw, FamilyAnswers, Space

from artid.descriptors import DescriptorSet
from artid.evaluation.reranking import RerankSetup, database_features, query_features
from artid.retrieval.autotune import K_GRID, TAU_GRID
from artid.retrieval.fusion import choose_fusion, fuse
from artid.retrieval.knn import KNNClassifier
from artid.retrieval.rerank import DEFAULT_MIN_INLIERS, DEFAULT_W, RerankConfig, Reranker


@dataclass
class Verified:
    """Neighbours (sims, idx) of a split's queries in the default space and their (Q, K) inlier
    counts."""

    sims: np.ndarray
    idx: np.ndarray
    counts: np.ndarray


def verified_splits(
    space: Space,
    db: DescriptorSet,
    val: DescriptorSet,
    test: DescriptorSet,
    images: Path,
    cache: Path,
    top: int,
) -> tuple[Verified, Verified, dict]:
    """The val and test queries' neighbours and inlier counts, and the database features' record.
    """
    setup = RerankSetup(RerankConfig(top=top), images, cache)
    local, record = database_features(setup, db)  # type: ignore[arg-type]
    clf = KNNClassifier(space[0], db.labels, use_gpu=False)
    reranker = Reranker(setup.config, local.__getitem__, 1.0)
    out = []
    for what, split, rows in (("val", val, space[1]), ("test", test, space[2])):
        sims, idx = clf.search(rows, min(max(max(K_GRID), top), clf.size), progress=False)
        feats = query_features(setup, split, what)  # type: ignore[arg-type]
        out.append(Verified(sims, idx, reranker.verify(idx, feats, progress=True)))
    record["ms_per_query"] = reranker.ms_per_query
    return out[0], out[1], record


def fusion_family(
    val: Verified, test: Verified, db_labels: np.ndarray, draw: Draw, k: int, n_classes: int
) -> FamilyAnswers:
    """The rules of :func:`choose_fusion` on a draw (the default whitening's k), their test
    answers at the tau each took there."""
    rows = draw.rows
    _, tried = choose_fusion(
        val.sims[rows],
        val.idx[rows],
        db_labels,
        val.counts[rows],
        draw.labels,
        k,
        n_classes,
        TAU_GRID,
        (DEFAULT_W, DEFAULT_MIN_INLIERS),
        draw.keys,
    )
    names = [f"w {c.w:g}, {c.min_inliers} inliers" for c in tried]
    test_answers = {}
    for name, c in zip(names, tried, strict=True):
        ans = fuse(
            test.sims, test.idx, db_labels, test.counts, k, c.tau, n_classes, c.w, c.min_inliers
        )
        test_answers[name] = (ans.pred, ans.score)
    return FamilyAnswers(
        {}, test_answers, names, [c.val_gap for c in tried], [float(c.z or 0.0) for c in tried]
    )
