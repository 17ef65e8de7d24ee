"""The fusion rule of re-ranking (artid.retrieval.fusion) against a plain per-query loop.

The loop implements the rule as the module's docstring states it, one query and one neighbour at
a time: the class score is the best similarity among the first k neighbours; a class's best
verified image among the first K (n >= min_inliers) adds ``w * min(n, cap) / cap``; a class reached
only through a verified image beyond the first k joins; the prediction is the best fused class
(ties: the class met first in the neighbour list); the score is the log-odds of the softmax over
all N classes with temperature tau, absent classes scoring 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from artid.errors import ArtidError
from artid.metrics.ilr import gap
from artid.retrieval.choosing import MARGIN_SE
from artid.retrieval.fusion import (
    MIN_INLIERS_GRID,
    W_GRID,
    choose_fusion,
    fuse,
    tune_fusion,
    verified_inliers,
)
from artid.retrieval.knn import KNNClassifier
from artid.retrieval.rerank import DEFAULT_MIN_INLIERS, DEFAULT_W, RerankConfig, Reranker


def reference(sims, idx, labels, inliers, k, tau, n_classes, w, min_inliers=10, cap=50):
    """(pred, score) of every query by the module docstring's rule, in plain Python."""
    preds, scores = [], []
    top_k = inliers.shape[1]
    for q in range(len(sims)):
        bonus: dict[int, float] = {}
        for j in range(top_k):
            n = int(inliers[q, j])
            if n >= min_inliers:
                c = int(labels[idx[q, j]])
                bonus[c] = max(bonus.get(c, 0.0), w * min(n, cap) / cap)
        best: dict[int, tuple[float, int]] = {}  # class -> (its best similarity, where first met)
        for j in range(max(k, top_k)):
            verified_beyond_k = w > 0 and j < top_k and inliers[q, j] >= min_inliers
            if j < k or verified_beyond_k:
                c = int(labels[idx[q, j]])
                s = float(sims[q, j])
                if c not in best or s > best[c][0]:
                    best[c] = (s, best[c][1] if c in best else j)
        fused = {c: s + bonus.get(c, 0.0) for c, (s, _) in best.items()}
        top = max(fused, key=lambda c: (fused[c], -best[c][1]))
        excess = sum(math.exp(tau * (fused[c] - fused[top])) for c in fused if c != top)
        excess += (n_classes - len(fused)) * math.exp(-tau * fused[top])
        preds.append(top)
        scores.append(-math.log(excess) if excess > 0 else math.inf)
    return np.array(preds), np.array(scores)


def _one(sims, classes, inliers):
    """One query whose j-th neighbour is database row j of class ``classes[j]``."""
    return (
        np.array([sims], np.float32),
        np.arange(len(sims))[None],
        np.array(classes),
        np.array([inliers]),
    )


def _check(case, k, tau, n_classes, w, min_inliers, cap, pred, score):
    sims, idx, labels, inliers = case
    got = fuse(sims, idx, labels, inliers, k, tau, n_classes, w, min_inliers, cap)
    ref_pred, ref_score = reference(
        sims, idx, labels, inliers, k, tau, n_classes, w, min_inliers, cap
    )
    assert got.pred.tolist() == ref_pred.tolist() == [pred]
    np.testing.assert_allclose(got.score, [score], rtol=1e-12)
    np.testing.assert_allclose(ref_score, [score], rtol=1e-12)


def test_verified_image_beyond_k_joins_and_wins():
    # k = 2, K = 4: neighbours of classes 0, 1, 2, 3 at 0.75, 0.5, 0.25, 0.125; the third (beyond
    # k) has 50 inliers: bonus 1.0 * 50 / 50 = 1, so class 2 joins at 0.25 + 1 = 1.25 and wins.
    # The fourth (9 inliers < 10) does not join: N = 4 classes, 3 present, 1 absent at 0.
    # excess = e^{2(0.75 - 1.25)} + e^{2(0.5 - 1.25)} + 1 * e^{-2 * 1.25}
    case = _one([0.75, 0.5, 0.25, 0.125], [0, 1, 2, 3], [0, 0, 50, 9])
    score = -math.log(math.exp(-1.0) + math.exp(-1.5) + math.exp(-2.5))
    _check(case, k=2, tau=2.0, n_classes=4, w=1.0, min_inliers=10, cap=50, pred=2, score=score)
    # without the bonus (w = 0) the verified image beyond k is not counted: the kNN answer, class 0
    # at 0.75 over class 1 at 0.5 and two absent classes
    score0 = -math.log(math.exp(2 * (0.5 - 0.75)) + 2 * math.exp(-2 * 0.75))
    _check(case, k=2, tau=2.0, n_classes=4, w=0.0, min_inliers=10, cap=50, pred=0, score=score0)


def test_fewer_verified_than_k_and_the_cap():
    # k = 4, K = 2: classes 0, 1, 0, 2 at 0.75, 0.625, 0.5, 0.25. Only the first two are verified:
    # 9 inliers (below min_inliers = 10, no bonus) and 80 (capped at 50: bonus 0.25 * 50 / 50).
    # Fused: class 0 0.75, class 1 0.625 + 0.25 = 0.875, class 2 0.25; N = 6, 3 absent.
    # excess = e^{4(0.75 - 0.875)} + e^{4(0.25 - 0.875)} + 3 e^{-4 * 0.875}
    case = _one([0.75, 0.625, 0.5, 0.25], [0, 1, 0, 2], [9, 80])
    score = -math.log(math.exp(-0.5) + math.exp(-2.5) + 3 * math.exp(-3.5))
    _check(case, k=4, tau=4.0, n_classes=6, w=0.25, min_inliers=10, cap=50, pred=1, score=score)
    # 10 inliers on the first (= min_inliers: counted): class 0 gains 0.25 * 10 / 50 = 0.05
    case = _one([0.75, 0.625, 0.5, 0.25], [0, 1, 0, 2], [10, 80])
    score = -math.log(math.exp(4 * (0.8 - 0.875)) + math.exp(-2.5) + 3 * math.exp(-3.5))
    _check(case, k=4, tau=4.0, n_classes=6, w=0.25, min_inliers=10, cap=50, pred=1, score=score)


def test_a_tie_goes_to_the_class_met_first():
    # classes 0, 1, 2 at 0.75, 0.5, 0.25; the second has 25 inliers: 0.5 + 0.5 * 25 / 50 = 0.75
    # ties class 0, which comes first in the neighbour list and stays the prediction.
    # excess = e^0 (class 1) + e^{2(0.25 - 0.75)} (class 2), N = 3 with no class absent
    case = _one([0.75, 0.5, 0.25], [0, 1, 2], [0, 25, 0])
    score = -math.log(1 + math.exp(-1.0))
    _check(case, k=3, tau=2.0, n_classes=3, w=0.5, min_inliers=10, cap=50, pred=0, score=score)
    # the bonus on the top class's image instead: 0.75 + 0.25 = 1.0 over 0.5 and 0.25
    case = _one([0.75, 0.5, 0.25], [0, 1, 2], [25, 0, 0])
    score = -math.log(math.exp(2 * (0.5 - 1.0)) + math.exp(2 * (0.25 - 1.0)))
    _check(case, k=3, tau=2.0, n_classes=3, w=0.5, min_inliers=10, cap=50, pred=0, score=score)


def test_a_class_takes_the_bonus_of_its_best_verified_image_not_the_sum():
    # classes 0, 1, 0 at 0.5, 0.375, 0.25 with 10 (= min_inliers), 0 and 40 inliers;
    # w = 0.25, cap = 40: the images of class 0 gain 0.0625 and 0.25; class 0's bonus is 0.25
    # (0.5 + 0.25 = 0.75; the sum would give 0.8125). N = 2, none absent:
    # score = -log e^{4 (0.375 - 0.75)} = 1.5
    case = _one([0.5, 0.375, 0.25], [0, 1, 0], [10, 0, 40])
    _check(case, k=3, tau=4.0, n_classes=2, w=0.25, min_inliers=10, cap=40, pred=0, score=1.5)
    # one inlier fewer on the first image: below min_inliers, the bonus is still 0.25
    case = _one([0.5, 0.375, 0.25], [0, 1, 0], [9, 0, 40])
    _check(case, k=3, tau=4.0, n_classes=2, w=0.25, min_inliers=10, cap=40, pred=0, score=1.5)


def _random_case(rng, quantised):
    q, m, n_db = 30, int(rng.integers(1, 9)), 40
    if quantised:  # multiples of 1/8 and bonuses w * n / 8: exact sums, so ties happen
        sims = -np.sort(-rng.integers(-8, 9, size=(q, m)) / 8, axis=1).astype(np.float32)
    else:
        sims = -np.sort(-rng.uniform(-1, 1, size=(q, m)), axis=1).astype(np.float32)
    idx = rng.integers(0, n_db, size=(q, m))
    labels = rng.integers(0, int(rng.integers(1, 6)), n_db)
    top = int(rng.integers(1, m + 1))
    inliers = rng.integers(0, 14, size=(q, top))
    return sims, idx, labels, inliers


@pytest.mark.parametrize("quantised", [False, True])
def test_fuse_equals_the_loop_on_random_cases(quantised):
    rng = np.random.default_rng(1 if quantised else 0)
    for _ in range(150):
        sims, idx, labels, inliers = _random_case(rng, quantised)
        k = int(rng.integers(1, sims.shape[1] + 1))
        n_classes = int(labels.max()) + 1 + int(rng.integers(0, 3))
        w = float(rng.choice([0.0, 0.25, 0.5, 1.0]))
        min_inliers, cap = int(rng.integers(0, 12)), 8
        tau = float(rng.choice([1.0, 5.0, 20.0]))
        got = fuse(sims, idx, labels, inliers, k, tau, n_classes, w, min_inliers, cap)
        pred, score = reference(sims, idx, labels, inliers, k, tau, n_classes, w, min_inliers, cap)
        np.testing.assert_array_equal(got.pred, pred)
        np.testing.assert_allclose(got.score, score, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("top", [3, 8])
def test_zero_weight_is_the_knn_answer(top):
    rng = np.random.default_rng(top)
    db = rng.normal(size=(60, 16)).astype(np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    labels = rng.integers(0, 12, 60)
    q = rng.normal(size=(25, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    clf = KNNClassifier(db, labels, use_gpu=False)
    sims, idx = clf.search(q, 10, progress=False)
    inliers = rng.integers(0, 60, size=(25, top))
    ref = clf.classify(sims, idx, 5, 20.0)
    got = fuse(sims, idx, labels, inliers, 5, 20.0, clf.n_classes, w=0.0, min_inliers=0)
    np.testing.assert_array_equal(got.pred, ref.pred)
    np.testing.assert_array_equal(got.score, ref.score)
    # and with a weight the answer is the loop's, which differs from the kNN answer here
    got = fuse(sims, idx, labels, inliers, 5, 20.0, clf.n_classes, w=0.5, min_inliers=30)
    pred, score = reference(sims, idx, labels, inliers, 5, 20.0, clf.n_classes, 0.5, 30)
    np.testing.assert_array_equal(got.pred, pred)
    np.testing.assert_allclose(got.score, score, rtol=1e-9)
    assert (got.pred != ref.pred).any()


def test_too_few_neighbours_are_refused():
    sims, idx, labels, inliers = _one([0.5, 0.25], [0, 1], [0, 0, 0])
    with pytest.raises(ArtidError, match="needs 3 neighbours"):
        fuse(sims, idx, labels, inliers, 2, 1.0, 2, 0.5)


def test_verified_inliers_of_the_predicted_class():
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 20, size=(40, 6))
    labels = rng.integers(0, 4, 20)
    inliers = rng.integers(0, 30, size=(40, 4))
    pred = rng.integers(0, 4, 40)
    expected = [
        max(
            [
                int(inliers[q, j])
                for j in range(4)
                if labels[idx[q, j]] == pred[q] and inliers[q, j] >= 10
            ],
            default=0,
        )
        for q in range(40)
    ]
    assert verified_inliers(idx, labels, inliers, pred, 10).tolist() == expected
    assert 0 < sum(expected) and expected.count(0) > 0


# Validation queries of tune_fusion: four database images, one per class; k = K = 2, tau = 10,
# N = 4 (two classes present, two absent), so score = -log(e^{10 (s2 - s1)} + 2 e^{-10 s1}).
#   q0 (class 0): neighbours 1, 0 at 0.75, 0.5 with 0 and 40 inliers -> kNN says 1 (wrong, score
#                 2.49); w = 0.5: class 0 gets 0.5 + 0.5 * 40 / 50 = 0.9 > 0.75 (right, 1.50)
#   q1 (class 2): neighbours 2, 3 at 0.75, 0.7 with 0 and 8 inliers -> right (0.50) unless the 8
#                 count: min_inliers 6 gives class 3 0.7 + 0.08 = 0.78 > 0.75 (wrong, 0.30)
#   q2 (distractor): neighbours 0, 1 at 0.3, 0.29, no inliers -> score 0.00, ranked last
#   q3 (class 3): neighbours 3, 1 at 0.9, 0.3 with 45 and 0 inliers -> right, ranked first (5.91;
#                 10.41 with the bonus 0.45)
VAL_SIMS = np.array([[0.75, 0.5], [0.75, 0.7], [0.3, 0.29], [0.9, 0.3]], np.float32)
VAL_IDX = np.array([[1, 0], [2, 3], [0, 1], [3, 1]])
VAL_INLIERS = np.array([[0, 40], [0, 8], [0, 0], [45, 0]])
VAL_LABELS = np.array([0, 2, -1, 3])
DB_LABELS = np.arange(4)


def test_tuning_finds_the_weight_and_threshold_that_fix_the_validation_queries():
    def val_gap(w, min_inliers):
        ans = fuse(VAL_SIMS, VAL_IDX, DB_LABELS, VAL_INLIERS, 2, 10.0, 4, w, min_inliers)
        return gap(ans.pred, ans.score, VAL_LABELS)

    # w = 0: ranked q3 (right), q0 (wrong), q1 (right), q2: GAP = (1/1 + 2/3) / 3 = 5/9
    assert val_gap(0.0, 6) == pytest.approx(5 / 9)
    # w = 0.5, min 6: ranked q3, q0 (right), q1 (wrong), q2: GAP = (1/1 + 2/2) / 3 = 2/3
    assert val_gap(0.5, 6) == pytest.approx(2 / 3)
    # w = 0.5, min 10: q3, q0, q1 all right, then the distractor: GAP = 1
    assert val_gap(0.5, 10) == pytest.approx(1.0)
    choice = tune_fusion(
        VAL_SIMS,
        VAL_IDX,
        DB_LABELS,
        VAL_INLIERS,
        VAL_LABELS,
        2,
        4,
        (10.0,),
        ws=(0.0, 0.5, 1.0),
        mins=(6, 10),
    )
    # w = 1.0 with min 10 is as good (GAP 1): the tie goes to the smaller weight
    assert (choice.w, choice.min_inliers, choice.tau) == (0.5, 10, 10.0)
    assert choice.val_gap - val_gap(0.0, 6) == pytest.approx(4 / 9)


def _tiled(times: int) -> tuple[np.ndarray, ...]:
    """The four validation queries above, each repeated ``times`` times (distinct keys)."""
    keys = np.array([f"q{i}" for i in range(4 * times)])
    return (*(np.tile(a, (times, 1)) for a in (VAL_SIMS, VAL_IDX, VAL_INLIERS)),
            np.tile(VAL_LABELS, times), keys)


@pytest.mark.parametrize("times", [1, 25])
def test_the_service_rule_is_kept_unless_another_wins_by_the_margin(times):
    # the service's rule (w 0.5, 8 inliers) lets q1's 8 inliers overturn it (val GAP 2/3); 10
    # inliers fix it (GAP 1), the old rule's choice. On the 4 queries that is a noisy win, kept
    # out by the margin; on the same queries 25 times over it is beyond doubt and taken.
    sims, idx, inliers, labels, keys = _tiled(times)
    args = (sims, idx, DB_LABELS, inliers, labels, 2, 4, (10.0,))
    grid = {"ws": (0.0, 0.5, 1.0), "mins": (6, 10)}
    old = tune_fusion(*args, keys, **grid)
    assert (old.w, old.min_inliers) == (0.5, 10)
    chosen, tried = choose_fusion(*args, (0.5, 8), keys, **grid)
    assert [(c.w, c.min_inliers) for c in tried] == [
        (0.5, 8), (0.0, 6), (0.5, 6), (0.5, 10), (1.0, 6), (1.0, 10)
    ]
    assert tried[0].val_gap == pytest.approx(2 / 3) and tried[0].z == 0.0
    assert tried[3].val_gap == pytest.approx(1.0)
    if times == 1:
        assert (chosen.w, chosen.min_inliers) == (0.5, 8)
        assert 0 < tried[3].z < MARGIN_SE
    else:
        assert (chosen.w, chosen.min_inliers, chosen.tau) == (0.5, 10, 10.0)
        assert tried[3].z > MARGIN_SE and tried[1].z < 0  # w = 0 (the global answer) loses
    # no margin: the best val GAP, as the plain grid search
    best, _ = choose_fusion(*args, (0.5, 8), keys, margin_se=0.0, **grid)
    assert (best.w, best.min_inliers) == (old.w, old.min_inliers)


def test_the_reranker_records_every_rule_it_compared():
    clf = KNNClassifier(np.eye(4, dtype=np.float32), DB_LABELS, n_classes=4, use_gpu=False)
    rr = Reranker(RerankConfig(top=2), lambda row: None, 10.0)  # type: ignore[arg-type, return-value]
    rr.fit(VAL_SIMS, VAL_IDX, VAL_INLIERS, clf, 2, 10.0, (10.0,), VAL_LABELS)
    # the old rule took (0.5, 10) here, the best val GAP on these 4 queries; the margin keeps the
    # service's rule
    assert (rr.w, rr.min_inliers) == (DEFAULT_W, DEFAULT_MIN_INLIERS)
    assert rr.tuned is not None and rr.tuned.val_gap == pytest.approx(2 / 3)
    tried = rr.summary()["tried"]
    assert (tried[0]["w"], tried[0]["min_inliers"], tried[0]["z"]) == (0.5, 8, 0.0)
    assert max(t["val_gap"] for t in tried) == pytest.approx(1.0)
    # w = 0 once, every other point of the grid once (the default among them, moved first)
    assert len(tried) == 1 + (len(W_GRID) - 1) * len(MIN_INLIERS_GRID)
    back = Reranker.from_json(rr.summary(), rr.database)
    assert back.tried == rr.tried and (back.w, back.min_inliers) == (rr.w, rr.min_inliers)
