"""Standard errors by bootstrap over queries, and paired differences between two methods.

A benchmark figure (GAP, ACC, F2...) is a statistic of a sample of queries. Resampling the
queries with replacement B times and recomputing the statistic gives its standard error;
when two methods answer the SAME queries, resampling the same query indices for both gives
the standard error of their difference, which is much smaller than either SE alone because
the hard queries are hard for both. artid calls a difference a gain only beyond 3 paired SE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from artid.errors import ArtidError

#: Bootstrap resamples; the SE of an SE estimate is about SE / sqrt(2 B), 2% at 1000.
DEFAULT_RESAMPLES = 1000

Statistic = Callable[[np.ndarray], float]
"""A function of query indices (with repeats) -> the statistic on those queries."""


@dataclass(frozen=True)
class Estimate:
    """A statistic on all queries with its bootstrap standard error."""

    value: float
    se: float

    def to_json(self) -> dict:
        return {"value": self.value, "se": self.se}

    def __format__(self, spec: str) -> str:
        """``f"{e:.1%}"`` style: the value and SE, both with the spec (e.g. ``12.3% ± 1.1%``)."""
        return f"{format(self.value, spec)} ± {format(self.se, spec)}"


def resample_indices(n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, n) int64 query indices drawn with replacement (seeded)."""
    if n < 1:
        raise ArtidError("bootstrap needs at least one query")
    if resamples < 2:
        raise ArtidError(f"bootstrap needs at least 2 resamples, got {resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap(
    stat: Statistic, n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> Estimate:
    """The statistic on all n queries and its bootstrap SE over resampled queries."""
    draws = resample_indices(n, resamples, seed)
    values = np.array([stat(ix) for ix in draws])
    return Estimate(float(stat(np.arange(n))), float(values.std(ddof=1)))


def paired_difference(
    stat_a: Statistic, stat_b: Statistic, n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> Estimate:
    """``stat_a - stat_b`` on the same n queries, with the difference's SE (paired bootstrap)."""
    draws = resample_indices(n, resamples, seed)
    diffs = np.array([stat_a(ix) - stat_b(ix) for ix in draws])
    return Estimate(float(stat_a(np.arange(n)) - stat_b(np.arange(n))), float(diffs.std(ddof=1)))


def _ilr_stats(
    pred: np.ndarray, score: np.ndarray, labels: np.ndarray, keys: np.ndarray | None
) -> dict[str, Statistic]:
    from artid.metrics.ilr import accuracy, gap, gap_minus

    k = (lambda ix: None) if keys is None else (lambda ix: keys[ix])  # noqa: E731
    return {
        "gap": lambda ix: gap(pred[ix], score[ix], labels[ix], k(ix)),
        "gap_minus": lambda ix: gap_minus(pred[ix], score[ix], labels[ix], k(ix)),
        "acc": lambda ix: accuracy(pred[ix], score[ix], labels[ix]),
    }


def ilr_estimates(
    pred: np.ndarray,
    score: np.ndarray,
    labels: np.ndarray,
    keys: np.ndarray | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Estimate]:
    """GAP, GAP- and ACC of one method's answers, each with its bootstrap SE over queries."""
    pred, score, labels = np.asarray(pred), np.asarray(score, dtype=np.float64), np.asarray(labels)
    keys = None if keys is None else np.asarray(keys)
    return {
        name: bootstrap(stat, len(pred), resamples, seed)
        for name, stat in _ilr_stats(pred, score, labels, keys).items()
    }


def ilr_paired(
    a: tuple[np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray],
    labels: np.ndarray,
    keys: np.ndarray | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Estimate]:
    """GAP, GAP- and ACC of method a minus method b on the same queries, with paired bootstrap SEs.

    Args:
        a, b: (pred, score) of each method, rows in the same query order.
        labels, keys: the queries' true classes (-1 distractor) and tie-break keys.
    """
    labels = np.asarray(labels)
    keys = None if keys is None else np.asarray(keys)
    sa = _ilr_stats(np.asarray(a[0]), np.asarray(a[1], dtype=np.float64), labels, keys)
    sb = _ilr_stats(np.asarray(b[0]), np.asarray(b[1], dtype=np.float64), labels, keys)
    return {
        name: paired_difference(sa[name], sb[name], len(labels), resamples, seed) for name in sa
    }
