"""Bootstrap standard errors: the textbook value for a mean; paired differences below either SE."""

from __future__ import annotations

import numpy as np
import pytest

from artid.errors import ArtidError
from artid.metrics.bootstrap import bootstrap, ilr_estimates, ilr_paired, paired_difference


def test_se_of_a_mean_matches_the_formula():
    x = np.random.default_rng(0).normal(size=400)
    est = bootstrap(lambda ix: float(x[ix].mean()), len(x), resamples=2000)
    assert est.value == pytest.approx(x.mean())
    assert est.se == pytest.approx(x.std(ddof=1) / np.sqrt(len(x)), rel=0.08)
    assert f"{est:.2f}".count("±") == 1


def test_paired_difference_cancels_shared_query_difficulty():
    rng = np.random.default_rng(1)
    hard = rng.normal(size=300)
    a, b = hard + 0.1, hard + 0.05 * rng.normal(size=300)
    d = paired_difference(lambda ix: a[ix].mean(), lambda ix: b[ix].mean(), 300)
    single = bootstrap(lambda ix: a[ix].mean(), 300)
    assert d.value == pytest.approx(a.mean() - b.mean())
    assert d.se < single.se / 5


def test_ilr_estimates_and_paired_on_the_same_queries():
    rng = np.random.default_rng(2)
    labels = np.where(rng.random(500) < 0.3, rng.integers(0, 50, 500), -1)
    pred_a = np.where(rng.random(500) < 0.6, labels, 99)
    score_a = rng.normal(size=500) + (pred_a == labels)
    est = ilr_estimates(pred_a, score_a, labels, resamples=200)
    assert set(est) == {"gap", "gap_minus", "acc"} and all(e.se > 0 for e in est.values())
    same = ilr_paired((pred_a, score_a), (pred_a, score_a), labels, resamples=200)
    assert all(e.value == 0 and e.se == 0 for e in same.values())


def test_too_few_queries_or_resamples_are_refused():
    with pytest.raises(ArtidError):
        bootstrap(lambda ix: 0.0, 0)
    with pytest.raises(ArtidError):
        bootstrap(lambda ix: 0.0, 10, resamples=1)
