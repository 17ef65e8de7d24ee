"""The confidence calibration: monotone, bounded, its fallbacks, and the calibration error."""

from __future__ import annotations

import numpy as np
import pytest

from artid.errors import ArtidError
from artid.metrics.calibration import (
    ConfidenceCalibration,
    expected_calibration_error,
    fit_confidence,
    reliability_bins,
)


def _answers(q: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose answers are right more often the higher they are (not always)."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(0, 3, q)
    right = rng.random(q) < 1 / (1 + np.exp(-scores))
    return scores, right


@pytest.mark.parametrize("q, method", [(12, "logistic"), (400, "isotonic")])
def test_confidence_is_monotone_and_bounded(q, method) -> None:
    scores, right = _answers(q)
    cal = fit_confidence(scores, right)
    assert cal.method == method and cal.n_queries == q and cal.n_right == int(right.sum())
    grid = np.r_[-np.inf, -1e300, np.linspace(-20, 20, 2001), 1e300, np.inf]
    shown = cal(grid)
    assert np.all(np.diff(shown) >= 0)  # never less sure of a higher score
    assert shown.min() >= 1 / (q + 2) - 1e-12 and shown.max() <= (q + 1) / (q + 2) + 1e-12
    assert shown[-1] > shown[0] + 0.3  # and it does tell low scores from high ones


def test_isotonic_on_a_hand_example() -> None:
    """Scores 1..6 right, wrong, right, wrong, right, right: the wrong answer at 2 pools with the
    right one at 1, the one at 4 with the one at 3 (isotonic regression), kept in [1/8, 7/8]."""
    cal = fit_confidence(np.arange(1.0, 7.0), np.array([1, 0, 1, 0, 1, 1], bool), min_isotonic=1)
    assert cal.method == "isotonic"
    assert cal(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])) == pytest.approx(
        [0.5, 0.5, 0.5, 0.5, 7 / 8, 7 / 8]
    )
    assert float(cal(-np.inf)) == pytest.approx(0.5) and float(cal(99.0)) == pytest.approx(7 / 8)


def test_fallbacks_when_validation_is_tiny_or_one_sided() -> None:
    every = fit_confidence(np.array([1.0, 2.0, 3.0]), np.ones(3, bool))
    assert every.method == "constant" and float(every(-5.0)) == pytest.approx(4 / 5)
    none = fit_confidence(np.array([1.0, 2.0, np.inf, -np.inf]), np.zeros(4, bool))
    assert none.method == "constant" and none.n_queries == 2 and float(none(9.0)) == 0.25
    # the right answers scoring LOWER: no positive slope, so no ordering is claimed
    backwards = fit_confidence(np.arange(10.0), np.arange(10) < 5)
    assert backwards.method == "constant" and float(backwards(100.0)) == pytest.approx(0.5)
    with pytest.raises(ArtidError, match="no validation answer"):
        fit_confidence(np.array([np.nan]), np.array([True]))
    with pytest.raises(ArtidError, match="3 scores but 2"):
        fit_confidence(np.zeros(3), np.zeros(2, bool))


def test_expected_calibration_error_on_a_hand_example() -> None:
    """Bins [0, .1): 0.05 wrong (gap .05); [.1, .2): 0.15 right (.85); [.9, 1]: 0.95 right,
    0.95 wrong, 1.0 right (share 2/3, mean .9667: .3). ECE = (.05 + .85 + 3 * .3) / 5."""
    conf = np.array([0.05, 0.15, 0.95, 0.95, 1.0])
    right = np.array([0, 1, 1, 0, 1], bool)
    assert expected_calibration_error(conf, right) == pytest.approx((0.05 + 0.85 + 0.9) / 5)
    bins = reliability_bins(conf, right)
    assert [b["queries"] for b in bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 3]
    assert bins[9]["right"] == pytest.approx(2 / 3) and bins[2]["right"] is None
    assert expected_calibration_error(np.array([0.25, 0.75]), np.array([0, 1], bool)) == 0.25
    with pytest.raises(ArtidError, match=r"\[0, 1\]"):
        expected_calibration_error(np.array([1.5]), np.array([True]))


def test_calibration_round_trips_and_refuses_bad_knots() -> None:
    cal = fit_confidence(*_answers(200))
    again = ConfidenceCalibration.from_json(cal.to_json())
    assert again == cal
    with pytest.raises(ArtidError, match="pipeline.json: .*must not decrease"):
        ConfidenceCalibration.from_json(
            {"method": "isotonic", "scores": [0, 1], "shares": [0.9, 0.1]}, "pipeline.json"
        )
    with pytest.raises(ArtidError, match="x.json: not a confidence calibration"):
        ConfidenceCalibration.from_json({"shares": [1]}, "x.json")
