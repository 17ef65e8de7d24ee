"""The acceptance threshold keeps its target on the photos it was calibrated on when they are
described again: a photo's score moves by rounding with the batch and the thread count
(measured: the build's threshold distractor scored 1.2e-7 higher when the service described it
with 2 threads, 5 of 40 validation distractors accepted at a target of 10%)."""

from __future__ import annotations

import numpy as np
import pytest

from artid.service.calibrate import calibrate_threshold, evaluate_threshold

TARGET = 0.1


def _queries(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-odds scores of 30 photos of the collection (27 right) and 40 distractors."""
    rng = np.random.default_rng(seed)
    pos = rng.normal(-1.0, 0.8, 30)
    dis = rng.normal(-2.5, 0.5, 40)
    correct = np.r_[np.arange(30) % 10 != 0, np.zeros(40, dtype=bool)]
    return np.r_[pos, dis], correct, np.r_[np.zeros(30, dtype=bool), np.ones(40, dtype=bool)]


@pytest.mark.parametrize("seed", range(5))
def test_scores_moved_by_rounding_keep_the_target_and_the_answers(seed: int) -> None:
    conf, correct, distractor = _queries(seed)
    cal = calibrate_threshold(conf, correct, distractor, TARGET)
    assert cal.false_accept == pytest.approx(TARGET)  # 4 of 40: the target is reached exactly
    for moved in (conf + 1.2e-7, conf - 1.2e-7, conf * (1 + 1e-7)):
        again = evaluate_threshold(cal.threshold, moved, correct, distractor)
        assert again["false_accept"] <= TARGET
        assert again["recall"] == pytest.approx(cal.recall)
        assert again["accepted"] == np.sum(conf > cal.threshold)


def test_the_threshold_lies_between_the_refused_distractor_and_the_next_score() -> None:
    conf, correct, distractor = _queries(0)
    cal = calibrate_threshold(conf, correct, distractor, TARGET)
    refused = np.sort(conf[distractor])[::-1][4]  # the 5th distractor: the first one refused
    above = conf[conf > refused].min()
    assert cal.threshold == pytest.approx((refused + above) / 2)
    # nothing above the refused distractor (target 0, a distractor scores highest)
    top = np.r_[conf[:-1], conf.max() + 1.0]
    cal = calibrate_threshold(top, correct, distractor, 0.0)
    assert cal.threshold > top.max() and cal.false_accept == 0.0
    # adjacent floats leave no room between them: the threshold is the refused score
    d = np.array([0.5, np.nextafter(0.5, 1.0)])
    cal = calibrate_threshold(d, np.array([False, True]), np.array([True, False]), 0.0)
    assert cal.threshold == 0.5 and cal.recall == 1.0
