"""Threshold search against brute force, and the per-image decision rules."""

import numpy as np
import pytest

from artid.errors import ArtidError
from artid.metrics.decisions import apply_thresholds, label_groups
from artid.metrics.multilabel import fbeta_per_image, mean_fbeta
from artid.metrics.thresholds import (
    candidate_thresholds,
    fbeta_curve,
    search_global,
    search_per_group,
    search_per_label,
)

GROUPS = ["culture"] * 3 + ["tag"] * 4 + ["medium"] * 2


def _data(seed: int, n: int = 30, zero_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(GROUPS))) < 0.3).astype(int)
    y[:zero_rows] = 0
    # rounded: ties on purpose
    scores = np.round(rng.random(y.shape) * 0.6 + 0.4 * y * rng.random(y.shape), 2)
    return y, scores


def _brute(
    y: np.ndarray, scores: np.ndarray, th: np.ndarray, at_least_one: bool, zd: float = 0.0
) -> float:
    pred = apply_thresholds(scores, th, at_least_one=at_least_one)
    return float(np.nanmean(fbeta_per_image(y, pred, zero_division=zd)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("at_least_one", [False, True])
@pytest.mark.parametrize("zd", [0.0, 1.0, float("nan")])
def test_global_curve_and_search_equal_brute_force(
    seed: int, at_least_one: bool, zd: float
) -> None:
    y, s = _data(seed)
    cands = np.linspace(0.0, 1.0, 41)
    brute = np.array([_brute(y, s, np.full(y.shape[1], c), at_least_one, zd) for c in cands])
    curve = fbeta_curve(y, s, cands, at_least_one=at_least_one, zero_division=zd)
    np.testing.assert_allclose(curve, brute, atol=1e-12)
    fit = search_global(y, s, candidates=cands, at_least_one=at_least_one, zero_division=zd)
    assert fit.fbeta == pytest.approx(brute.max())
    assert fit.fbeta == pytest.approx(_brute(y, s, fit.thresholds, at_least_one, zd))
    assert fit.mode == "global" and np.ptp(fit.thresholds) == 0


def test_fbeta_curve_accepts_unsorted_candidates() -> None:
    y, s = _data(0)
    cands = np.array([0.7, 0.1, 0.4])
    np.testing.assert_allclose(
        fbeta_curve(y, s, cands), [_brute(y, s, np.full(9, c), False) for c in cands]
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("at_least_one", [False, True])
def test_group_search_is_exact_coordinate_optimum_and_beats_global(
    seed: int, at_least_one: bool
) -> None:
    y, s = _data(seed)
    cands = np.linspace(0.0, 1.0, 21)
    glob = search_global(y, s, candidates=cands, at_least_one=at_least_one)
    fit = search_per_group(y, s, GROUPS, candidates=cands, at_least_one=at_least_one, rounds=20)
    assert fit.fbeta >= glob.fbeta - 1e-12
    assert fit.fbeta == pytest.approx(_brute(y, s, fit.thresholds, at_least_one))
    groups = np.array(GROUPS)
    for g in set(GROUPS):  # no single group's threshold can do better (brute force)
        assert len(set(fit.thresholds[groups == g])) == 1
        for c in cands:
            th = fit.thresholds.copy()
            th[groups == g] = c
            assert _brute(y, s, th, at_least_one) <= fit.fbeta + 1e-12


def test_group_search_matches_exhaustive_search_on_two_groups() -> None:
    y, s = _data(1, n=40)
    groups = ["a"] * 4 + ["b"] * 5
    cands = np.linspace(0.0, 1.0, 11)
    best = max(_brute(y, s, np.array([ca] * 4 + [cb] * 5), False) for ca in cands for cb in cands)
    fit = search_per_group(y, s, groups, candidates=cands, rounds=20)
    assert fit.fbeta <= best + 1e-12
    # coordinate ascent: a local optimum, close to the global one here
    assert fit.fbeta >= best - 0.02


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("at_least_one", [False, True])
def test_label_search_without_shrinkage_is_coordinate_optimal(
    seed: int, at_least_one: bool
) -> None:
    y, s = _data(seed)
    cands = np.linspace(0.0, 1.0, 21)
    group_fit = search_per_group(y, s, GROUPS, candidates=cands, at_least_one=at_least_one)
    fit = search_per_label(
        y, s, GROUPS, candidates=cands, at_least_one=at_least_one, shrinkage=0.0, rounds=10
    )
    assert fit.fbeta >= group_fit.fbeta - 1e-12
    assert fit.fbeta == pytest.approx(_brute(y, s, fit.thresholds, at_least_one))
    for j in range(y.shape[1]):
        for c in cands:
            th = fit.thresholds.copy()
            th[j] = c
            assert _brute(y, s, th, at_least_one) <= fit.fbeta + 1e-9


def test_shrinkage_blends_toward_group_by_positive_count() -> None:
    y, s = _data(2, n=40)
    y[:, 0], s[:, 0] = 0, 0.0  # a label never seen in validation, never predicted at 0.5 either
    start = np.full(y.shape[1], 0.5)
    cands = np.linspace(0.0, 1.0, 21)
    raw = search_per_label(y, s, GROUPS, candidates=cands, shrinkage=0.0, start=start)
    huge = search_per_label(y, s, GROUPS, candidates=cands, shrinkage=1e9, start=start)
    mid = search_per_label(y, s, GROUPS, candidates=cands, shrinkage=10.0, start=start, rounds=1)
    np.testing.assert_allclose(huge.thresholds, 0.5, atol=1e-6)
    assert mid.thresholds[0] == 0.5  # no positive: the group's threshold
    assert raw.thresholds[0] > s[:, 0].max()  # unshrunk: never predict a label that never occurs
    # Label 0 is off in both runs, so label 1 (visited next) sees the same state in both: its
    # shrunk threshold is the blend of its raw optimum and the group's by its positive count.
    n1 = y[:, 1].sum()
    assert mid.thresholds[1] == pytest.approx((n1 * raw.thresholds[1] + 10 * 0.5) / (n1 + 10))


def test_default_candidates_cover_the_top_scores() -> None:
    rng = np.random.default_rng(0)
    y = np.zeros((50, 200), dtype=int)
    y[np.arange(50), rng.integers(0, 200, 50)] = 1
    s = rng.random(y.shape) ** 8  # most scores near 0
    c = candidate_thresholds(y, s, n=64)
    assert np.all(np.diff(c) > 0) and len(c) <= 64
    assert np.median(c) > np.quantile(s, 0.9)
    fit = search_global(y, s)
    assert fit.fbeta == pytest.approx(mean_fbeta(y, apply_thresholds(s, fit.thresholds)))


def test_at_least_one_gives_every_image_its_top_label() -> None:
    s = np.array([[0.1, 0.3, 0.2], [0.9, 0.8, 0.1]])
    pred = apply_thresholds(s, 0.5, at_least_one=True)
    np.testing.assert_array_equal(pred, [[False, True, False], [True, True, False]])


def test_max_per_group_keeps_the_highest_scores_within_each_group() -> None:
    groups = label_groups(["culture::a", "culture::b", "culture::c", "tag::x", "tag::y", "plain"])
    assert groups == ["culture", "culture", "culture", "tag", "tag", ""]
    s = np.array([[0.9, 0.7, 0.8, 0.6, 0.95, 0.99], [0.1, 0.6, 0.2, 0.7, 0.1, 0.0]])
    pred = apply_thresholds(s, 0.5, max_per_group=1, groups=groups)
    np.testing.assert_array_equal(pred, [[1, 0, 0, 0, 1, 1], [0, 1, 0, 1, 0, 0]])
    pred = apply_thresholds(s, 0.5, max_per_group={"culture": 2}, groups=groups)
    np.testing.assert_array_equal(pred, [[1, 0, 1, 1, 1, 1], [0, 1, 0, 1, 0, 0]])
    per_label = np.array([0.95, 0.5, 0.5, 0.5, 0.5, 1.0])  # per-label thresholds, then the cap
    pred = apply_thresholds(s, per_label, max_per_group=1, groups=groups, at_least_one=True)
    np.testing.assert_array_equal(pred, [[0, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 0]])


def test_bad_inputs_raise_artid_error() -> None:
    s = np.zeros((2, 3))
    with pytest.raises(ArtidError, match="one threshold or 3"):
        apply_thresholds(s, [0.1, 0.2])
    with pytest.raises(ArtidError, match="groups"):
        apply_thresholds(s, 0.5, max_per_group=1)
    with pytest.raises(ArtidError, match="unknown groups"):
        apply_thresholds(s, 0.5, max_per_group={"x": 1}, groups=["a", "a", "b"])
    with pytest.raises(ArtidError, match="label groups"):
        search_per_group(np.zeros((2, 3)), s, ["a"])
    with pytest.raises(ArtidError, match="shrinkage"):
        search_per_label(np.zeros((2, 3)), s, ["a"] * 3, shrinkage=-1)
    with pytest.raises(ArtidError, match="candidates"):
        search_global(np.zeros((2, 3)), s, candidates=[])
