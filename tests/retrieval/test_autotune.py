"""Autotune: one search, the whole grid, every point equal to the classifier's own output."""

from __future__ import annotations

import numpy as np
import pytest

from artid.errors import ArtidError
from artid.metrics.ilr import gap, gap_minus
from artid.retrieval.autotune import K_GRID, TAU_GRID, autotune
from artid.retrieval.knn import KNNClassifier


def _setup(seed: int = 0):
    rng = np.random.default_rng(seed)
    classes, d = 80, 12
    centres = rng.normal(size=(classes, d))
    labels = np.repeat(np.arange(classes), rng.integers(1, 4, classes))
    db = centres[labels] + 0.7 * rng.normal(size=(len(labels), d))
    q_labels = np.where(rng.random(90) < 0.4, rng.integers(0, classes, 90), -1)
    q = np.where(q_labels[:, None] >= 0, centres[np.maximum(q_labels, 0)], 0) + rng.normal(size=(90, d))
    norm = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return KNNClassifier(norm(db), labels, n_classes=1000), norm(q), q_labels


def test_grid_equals_classify_at_every_point():
    clf, q, labels = _setup()
    result = autotune(clf, q, labels)
    assert result.ks == list(K_GRID) and result.taus == list(TAU_GRID)
    assert result.gap.shape == (9, 12)
    sims, idx = clf.search(q, 50)
    for i, k in enumerate(result.ks):
        for j, tau in enumerate(result.taus):
            pred, conf, _ = clf.classify(sims, idx, k, tau)
            assert result.gap[i, j] == gap(pred, conf, labels)
            assert result.gap_minus[i, j] == gap_minus(pred, conf, labels)
    assert result.best_gap == result.gap.max()
    assert result.gap[result.ks.index(result.best_k), result.taus.index(result.best_tau)] == result.best_gap
    assert len(result.rows()) == 108


def test_one_search_for_the_whole_grid(monkeypatch):
    clf, q, labels = _setup(1)
    calls = []
    original = clf.search
    monkeypatch.setattr(clf, "search", lambda x, k, **kw: calls.append(k) or original(x, k, **kw))
    autotune(clf, q, labels)
    assert calls == [50]


def test_k_values_above_database_size_are_skipped():
    clf, q, labels = _setup(2)
    small = KNNClassifier(clf.db[:12], clf.labels[:12])
    result = autotune(small, q, labels, ks=(1, 5, 20, 50), taus=(1.0, 10.0))
    assert result.ks == [1, 5]
    assert result.gap.shape == (2, 2)


def test_needs_met_queries():
    clf, q, labels = _setup()
    with pytest.raises(ArtidError, match="no non-distractor"):
        autotune(clf, q, np.full(len(q), -1))
