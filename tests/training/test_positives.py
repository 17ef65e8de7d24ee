"""Positive strategies pick from the right pools with the right probabilities (seeded,
statistical)."""

from __future__ import annotations

import numpy as np

from artid.training.mining import class_members
from artid.training.positives import STRATEGIES, SYNTHETIC

# class sizes 1, 2, 4: image 0 alone; 1-2 together; 3-6 together
LABELS = np.array([0, 1, 1, 2, 2, 2, 2])
MEMBERS = class_members(LABELS)
CLOSEST = np.array([-1, 2, 1, 5, 5, 6, 5])
TRIALS = 4000


def _frequencies(name):
    strategy = STRATEGIES[name]()
    rng = np.random.default_rng(123)
    picks = np.stack([strategy.pick(MEMBERS, rng, CLOSEST) for _ in range(TRIALS)])  # (T, N)
    return picks


def _freq(picks, i, value):
    return float(np.mean(picks[:, i] == value))


def test_con_syn_is_always_synthetic():
    picks = _frequencies("con-syn")
    assert (picks == SYNTHETIC).all()


def test_con_syn_real_is_uniform_over_augmentation_and_other_images():
    picks = _frequencies("con-syn+real")
    assert (picks[:, 0] == SYNTHETIC).all()  # single-image class
    for i in range(1, 7):
        pool = [SYNTHETIC] + [j for j in MEMBERS[i] if j != i]
        assert set(np.unique(picks[:, i])) == set(
            pool
        )  # never the anchor itself, never another class
        for v in pool:
            p = 1 / len(pool)
            assert abs(_freq(picks, i, v) - p) < 4 * np.sqrt(p * (1 - p) / TRIALS)


def test_con_syn_real_closest_is_half_augmentation_half_closest():
    picks = _frequencies("con-syn+real-closest")
    assert (picks[:, 0] == SYNTHETIC).all()
    for i in range(1, 7):
        assert set(np.unique(picks[:, i])) == {SYNTHETIC, CLOSEST[i]}
        assert abs(_freq(picks, i, CLOSEST[i]) - 0.5) < 4 * np.sqrt(0.25 / TRIALS)


def test_strategies_are_reproducible_with_a_seed():
    for name, cls in STRATEGIES.items():
        a = cls().pick(MEMBERS, np.random.default_rng(7), CLOSEST)
        b = cls().pick(MEMBERS, np.random.default_rng(7), CLOSEST)
        assert np.array_equal(a, b), name
