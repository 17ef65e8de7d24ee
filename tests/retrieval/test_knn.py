"""The kNN classifier's prediction and confidence on a hand-made database, and against a naive loop."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from artid.errors import ArtidError
from artid.retrieval.knn import KNNClassifier, first_occurrences, gpu_count

# database: e0, e1 of class 10, e2 of class 20, e3 of class 30; the query's similarities are
# 0.6, 0.5, 0.4, 0.3 (the fifth coordinate makes it a unit vector)
DB = np.eye(5, dtype=np.float32)[:4]
LABELS = np.array([10, 10, 20, 30])
QUERY = np.array([[0.6, 0.5, 0.4, 0.3, math.sqrt(1 - 0.86)]], dtype=np.float32)


def _conf(k: int, tau: float, n: int) -> float:
    """The confidence formula written out for QUERY."""
    present = {1: [0.6], 2: [0.6], 3: [0.6, 0.4], 4: [0.6, 0.4, 0.3]}[k]
    s = [np.float64(np.float32(v)) for v in present]
    return math.exp(tau * s[0]) / (sum(math.exp(tau * v) for v in s) + (n - len(s)))


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("tau", [0.1, 10.0, 30.0])
def test_confidence_formula_by_hand(k, tau):
    clf = KNNClassifier(DB, LABELS)
    assert clf.n_classes == 3
    pred, _, conf = clf.predict(QUERY, k, tau)
    assert pred.tolist() == [10]
    assert conf[0] == pytest.approx(_conf(k, tau, 3), rel=1e-12)


def test_class_score_is_the_max_of_its_images():
    # k=2: both neighbours are class 10, so only one class is present: e^{6} / (e^{6} + 2)
    clf = KNNClassifier(DB, LABELS)
    _, _, conf = clf.predict(QUERY, 2, 10.0)
    s = float(np.float32(0.6))
    assert conf[0] == pytest.approx(math.exp(10 * s) / (math.exp(10 * s) + 2), rel=1e-12)


def test_number_of_classes_counts_absent_classes():
    small, large = KNNClassifier(DB, LABELS), KNNClassifier(DB, LABELS, n_classes=224_408)
    _, _, c_small = small.predict(QUERY, 3, 10.0)
    _, _, c_large = large.predict(QUERY, 3, 10.0)
    assert c_large[0] == pytest.approx(_conf(3, 10.0, 224_408), rel=1e-12)
    assert c_large[0] < c_small[0] / 100  # the N-term dominates for large N
    with pytest.raises(ArtidError, match="smaller than"):
        KNNClassifier(DB, LABELS, n_classes=2)


def test_top_classes():
    clf = KNNClassifier(DB, LABELS)
    sims, idx = clf.search(QUERY, 4)
    top = clf.top_classes(sims, idx, 4, 10.0, n=2)
    assert [c for c, _, _ in top[0]] == [10, 20]
    pred, _, conf = clf.classify(sims, idx, 4, 10.0)
    assert top[0][0][2] == pytest.approx(conf[0])
    assert top[0][1][1] == pytest.approx(0.4)
    assert top[0][1][2] == pytest.approx(conf[0] * math.exp(10 * (top[0][1][1] - top[0][0][1])))
    assert len(clf.top_classes(sims, idx, 1, 10.0, n=5)[0]) == 1


def test_first_occurrences():
    labels = np.array([[3, 1, 3, 2, 1], [5, 5, 5, 5, 5]])
    expected = [[True, True, False, True, False], [True, False, False, False, False]]
    assert first_occurrences(labels).tolist() == expected


def _random(seed: int = 0, n: int = 400, d: int = 16, classes: int = 120, q: int = 60):
    rng = np.random.default_rng(seed)
    db = rng.normal(size=(n, d)).astype(np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    queries = rng.normal(size=(q, d)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return db, rng.integers(0, classes, n), queries


def _naive(db, labels, n_classes, queries, k, tau):
    """One query at a time, dictionaries, the formula as written (stabilised by exp(-tau s_max))."""
    preds, confs = [], []
    for q in queries:
        sims = db @ q
        order = np.argsort(-sims, kind="stable")[:k]
        scores: dict[int, float] = {}
        for j in order:
            c = int(labels[j])
            scores[c] = max(scores.get(c, -np.inf), float(sims[j]))
        best = max(scores, key=scores.get)
        s0 = scores[best]
        denom = sum(math.exp(tau * (v - s0)) for v in scores.values())
        denom += (n_classes - len(scores)) * math.exp(-tau * s0)
        preds.append(best)
        confs.append(1.0 / denom)
    return np.array(preds), np.array(confs)


def test_search_matches_brute_force():
    db, labels, queries = _random()
    sims, idx = KNNClassifier(db, labels).search(queries, 7)
    ref = queries @ db.T
    ref_idx = np.argsort(-ref, axis=1)[:, :7]
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(sims, np.take_along_axis(ref, ref_idx, axis=1), atol=1e-5)
    assert np.all(np.diff(sims, axis=1) <= 0)


@pytest.mark.parametrize("k,tau", [(1, 0.01), (5, 15.0), (20, 500.0)])
def test_vectorised_equals_naive_loop(k, tau):
    db, labels, queries = _random(seed=k)
    clf = KNNClassifier(db, labels, n_classes=500)
    pred, _, conf = clf.predict(queries, k, tau)
    ref_pred, ref_conf = _naive(db, labels, 500, queries, k, tau)
    np.testing.assert_array_equal(pred, ref_pred)
    # faiss and NumPy round float32 similarities differently (~1e-7), which exp(tau s) amplifies by tau
    np.testing.assert_allclose(conf, ref_conf, rtol=4e-7 * tau + 1e-9)


def test_k_larger_than_database_is_clamped(caplog):
    clf = KNNClassifier(DB, LABELS)
    with caplog.at_level(logging.WARNING):
        sims, idx = clf.search(QUERY, 50)
    assert sims.shape == (1, 4) and "larger than the database" in caplog.text
    assert clf.classify(sims, idx, 50, 10.0).score[0] == clf.classify(sims, idx, 4, 10.0).score[0]


def test_bad_inputs():
    if gpu_count() == 0:
        with pytest.raises(ArtidError, match="no GPU"):
            KNNClassifier(DB, LABELS, use_gpu=True)
    with pytest.raises(ArtidError, match="rows but"):
        KNNClassifier(DB, LABELS[:3])
    clf = KNNClassifier(DB, LABELS)
    with pytest.raises(ArtidError, match=r"\(Q, 5\)"):
        clf.search(np.ones((2, 3), np.float32), 1)
    sims, idx = clf.search(QUERY, 2)
    with pytest.raises(ArtidError, match="k=3"):
        clf.classify(sims, idx, 3, 1.0)


def test_ivf_searcher_probing_every_cell_is_exact():
    from artid.retrieval.index import IVFSearcher

    db, labels, queries = _random(seed=5, n=800)
    ivf = IVFSearcher(db, nlist=8, nprobe=8)
    exact = KNNClassifier(db, labels)
    approx = KNNClassifier(db, labels, searcher=ivf)
    np.testing.assert_array_equal(approx.search(queries, 10)[1], exact.search(queries, 10)[1])
    few = IVFSearcher(db, nlist=8, nprobe=1)
    sims, idx = KNNClassifier(db, labels, searcher=few).search(queries, 200)  # more than one cell holds
    assert (idx >= 0).all() and np.all(np.diff(sims, axis=1) <= 0)


def test_log_odds_at_a_large_tau_is_finite_without_overflow_warnings():
    """The top class's similarity far above the second's, at tau 500: the score is finite and no
    RuntimeWarning (overflow in exp) reaches the user's terminal."""
    import warnings

    from artid.retrieval.knn import log_odds

    sims = np.array([[0.95, -0.60, -0.70]])  # tau x (0.95 + 0.60) = 775 > log(float64 max)
    first = first_occurrences(np.array([[3, 1, 2]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        score = log_odds(sims, first, n_classes=10, tau=500.0)
    assert np.isfinite(score).all()
    # two classes seen: the absent 8 dominate the excess, exp(-tau 0.95) each
    assert score[0, 1] == pytest.approx(500.0 * 0.95 - math.log(8), rel=1e-9)
