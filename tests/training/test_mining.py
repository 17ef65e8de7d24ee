"""Hard negatives and closest positives on small seeded descriptor sets, against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from artid.errors import ArtidError
from artid.training.mining import class_members, closest_positives, hard_negatives


def _data(n=120, d=16, n_classes=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = rng.integers(0, n_classes, n)
    return x, labels


def test_negatives_are_of_another_class_and_among_10_nearest():
    x, labels = _data()
    sims = x @ x.T
    for seed in range(3):
        neg = hard_negatives(x, labels, np.random.default_rng(seed), k=10)
        assert neg.shape == (len(x),) and neg.dtype == np.int64
        for i, j in enumerate(neg):
            assert labels[j] != labels[i]
            other = np.flatnonzero(labels != labels[i])
            top10 = other[np.argsort(-sims[i, other], kind="stable")[:10]]
            assert sims[i, j] >= sims[i, top10].min() - 1e-6


def test_negatives_cover_the_pool_uniformly():
    x, labels = _data(n=40, n_classes=8, seed=1)
    picks = [hard_negatives(x, labels, np.random.default_rng(s), k=10)[0] for s in range(2000)]
    vals, c = np.unique(picks, return_counts=True)
    assert len(vals) == 10                                  # every one of the 10 nearest is used
    assert c.min() > 2000 / 10 * 0.75 and c.max() < 2000 / 10 * 1.25


def test_negative_pool_smaller_than_k():
    x = np.eye(4, dtype=np.float32)
    labels = np.array([0, 0, 0, 1])
    neg = hard_negatives(x, labels, np.random.default_rng(0), k=10)
    assert neg.tolist() == [3, 3, 3, neg[3]] and neg[3] in (0, 1, 2)


def test_one_class_is_refused():
    with pytest.raises(ArtidError, match="two classes"):
        hard_negatives(np.eye(3, dtype=np.float32), np.zeros(3, int), np.random.default_rng(0))


def test_closest_positives_against_brute_force():
    x, labels = _data(seed=2)
    got = closest_positives(x, labels)
    sims = x @ x.T
    for i in range(len(x)):
        same = np.flatnonzero((labels == labels[i]) & (np.arange(len(x)) != i))
        if same.size == 0:
            assert got[i] == -1
        else:
            assert got[i] == same[np.argmax(sims[i, same])]


def test_class_members():
    m = class_members(np.array([5, 3, 5, 7, 3, 5]))
    assert [a.tolist() for a in m] == [[0, 2, 5], [1, 4], [0, 2, 5], [3], [1, 4], [0, 2, 5]]
