"""GAP, GAP-, ACC and the breakdowns pinned to hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from artid.errors import ArtidError
from artid.metrics.ilr import (
    accuracy,
    accuracy_by_bucket,
    gap,
    gap_at_distractor_ratio,
    gap_minus,
    precision_recall,
    subsample_distractors,
)

# ranks by confidence: q0 right, q1 distractor, q2 right, q3 wrong
PRED = np.array([1, 5, 2, 4])
CONF = np.array([0.9, 0.8, 0.7, 0.6])
LABELS = np.array([1, -1, 2, 3])


def test_gap_by_hand():
    # p(1) = 1 (hit), p(3) = 2/3 (hit); M = 3 Met queries
    assert gap(PRED, CONF, LABELS) == pytest.approx((1 + 2 / 3) / 3)


def test_gap_minus_drops_distractors():
    # without q1: hits at ranks 1 and 2 -> (1 + 1) / 3
    assert gap_minus(PRED, CONF, LABELS) == pytest.approx(2 / 3)


def test_accuracy_ignores_distractors_and_confidence():
    assert accuracy(PRED, CONF, LABELS) == pytest.approx(2 / 3)
    assert accuracy(PRED, CONF[::-1], LABELS) == pytest.approx(2 / 3)


def test_order_of_input_does_not_matter_without_ties():
    perm = np.array([2, 0, 3, 1])
    assert gap(PRED[perm], CONF[perm], LABELS[perm]) == pytest.approx(gap(PRED, CONF, LABELS))


def test_ties_are_broken_by_input_order():
    conf = np.array([0.5, 0.5])
    # right query first in the input: ranked first -> p(1) = 1, M = 2
    assert gap(np.array([1, 9]), conf, np.array([1, 2])) == pytest.approx(0.5)
    # wrong query first: the hit is at rank 2 -> p(2) = 1/2
    assert gap(np.array([9, 1]), conf, np.array([2, 1])) == pytest.approx(0.25)


def test_no_distractors_gap_equals_gap_minus():
    pred, conf, labels = np.array([1, 2, 3]), np.array([0.2, 0.9, 0.5]), np.array([1, 7, 3])
    # ranks: q1 wrong, q2 right (p=1/2), q0 right (p=2/3)
    assert gap(pred, conf, labels) == pytest.approx((1 / 2 + 2 / 3) / 3)
    assert gap_minus(pred, conf, labels) == gap(pred, conf, labels)


def test_all_wrong_is_zero_and_only_distractors_is_zero():
    assert gap(np.array([2, 3]), np.array([0.9, 0.1]), np.array([1, 1])) == 0.0
    assert accuracy(np.array([2, 3]), np.array([0.9, 0.1]), np.array([1, 1])) == 0.0
    assert gap(np.array([2]), np.array([0.9]), np.array([-1])) == 0.0
    assert accuracy(np.array([2]), np.array([0.9]), np.array([-1])) == 0.0


def test_confident_distractors_lower_gap_not_accuracy():
    pred, labels = np.array([1, 0]), np.array([1, -1])
    assert gap(pred, np.array([0.9, 0.1]), labels) == 1.0
    assert gap(pred, np.array([0.1, 0.9]), labels) == pytest.approx(0.5)
    assert accuracy(pred, np.array([0.1, 0.9]), labels) == 1.0


def test_precision_recall_curve():
    precision, recall = precision_recall(PRED, CONF, LABELS)
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3, 2 / 4])
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3])


def test_mismatched_lengths_are_refused():
    with pytest.raises(ArtidError, match="one length"):
        gap(PRED, CONF[:3], LABELS)


def test_accuracy_by_bucket():
    sizes = {1: 1, 2: 2, 3: 3, 4: 7}
    pred = np.array([1, 0, 2, 3, 0, 9])
    labels = np.array([1, 1, 2, 3, 4, -1])
    rows = accuracy_by_bucket(pred, labels, sizes, buckets=((1, 1), (2, 2), (3, 4), (5, 10)))
    assert [r["bucket"] for r in rows] == ["1", "2", "3-4", "5-10"]
    assert [(r["queries"], r["correct"]) for r in rows] == [(2, 1), (1, 1), (1, 1), (1, 0)]
    assert [r["accuracy"] for r in rows] == [0.5, 1.0, 1.0, 0.0]
    empty = accuracy_by_bucket(pred, labels, sizes, buckets=((8, 9),))
    assert empty[0]["queries"] == 0 and empty[0]["accuracy"] is None


def test_distractor_ratio_subsampling():
    labels = np.array([1, -1, -1, 2, -1, -1, -1, -1, -1, -1, -1, -1])
    kept = subsample_distractors(labels, 0.5, seed=3)
    assert len(kept) == 2 + 5 and {0, 3} <= set(kept.tolist())
    assert np.all(np.diff(kept) > 0)
    assert np.array_equal(kept, subsample_distractors(labels, 0.5, seed=3))
    with pytest.raises(ArtidError, match="ratio"):
        subsample_distractors(labels, 1.5)


def test_gap_at_distractor_ratio_endpoints():
    assert gap_at_distractor_ratio(PRED, CONF, LABELS, 1.0) == gap(PRED, CONF, LABELS)
    assert gap_at_distractor_ratio(PRED, CONF, LABELS, 0.0) == gap_minus(PRED, CONF, LABELS)
