"""The per-image counts the threshold searches share (:mod:`artid.metrics.thresholds`).

:class:`ThresholdProblem` validates ``y_true`` and ``scores`` once and gives, for a set of label
columns and sorted candidate thresholds, the (N, T) true positives and predictions of every image
at every candidate in one ``bincount`` (see the search module's docstring).
:func:`candidate_thresholds` picks the default candidates and :func:`fbeta_curve` is the mean
F-beta at one global threshold per candidate.
"""

from __future__ import annotations

import numpy as np

from artid.errors import ArtidError
from artid.metrics.multilabel import IMET_BETA, check_labels, check_scores, fbeta_from_counts


class ThresholdProblem:
    """Validated inputs and the per-image quantities every search shares."""

    def __init__(
        self,
        y_true: np.ndarray,
        scores: np.ndarray,
        beta: float,
        at_least_one: bool,
        zero_division: float,
    ) -> None:
        self.t = check_labels(y_true, "y_true")
        self.s = check_scores(scores, self.t.shape)
        if self.t.shape[0] == 0 or self.t.shape[1] == 0:
            raise ArtidError(
                f"threshold search needs at least one image and one label; got {self.t.shape}"
            )
        self.beta, self.zd, self.at_least_one = float(beta), float(zero_division), at_least_one
        self.n_true = self.t.sum(1)
        top = np.argmax(self.s, axis=1)
        self.top_hit = self.t[np.arange(len(self.t)), top]

    def f(self, tp: np.ndarray, n_pred: np.ndarray) -> np.ndarray:
        """Per-image F (any shape whose first axis is the image), with the at-least-one fallback."""
        shape = (-1,) + (1,) * (np.ndim(tp) - 1)
        n_true = self.n_true.reshape(shape)
        if self.at_least_one:
            empty = n_pred == 0
            tp = np.where(empty, self.top_hit.reshape(shape), tp)
            n_pred = np.where(empty, 1, n_pred)
        return fbeta_from_counts(tp, n_true, n_pred, self.beta, self.zd)

    def mean_f(self, tp: np.ndarray, n_pred: np.ndarray) -> np.ndarray:
        """Mean over images (axis 0); NaN values (``zero_division=nan``) leave the mean."""
        f = self.f(tp, n_pred)
        ok = ~np.isnan(f)
        count = ok.sum(0)
        total = np.where(ok, f, 0.0).sum(0)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def counts(
        self, thresholds: np.ndarray, cols: np.ndarray | slice = slice(None)
    ) -> tuple[np.ndarray, ...]:
        """(N,) true positives and predictions over ``cols`` at per-label ``thresholds``."""
        on = self.s[:, cols] >= thresholds[cols][None, :]
        return (on & self.t[:, cols]).sum(1), on.sum(1)

    def counts_at(self, candidates: np.ndarray, cols: np.ndarray | slice) -> tuple[np.ndarray, ...]:
        """(N, T) true positives, predictions over ``cols`` if all had threshold candidates[k]."""
        s, t = self.s[:, cols], self.t[:, cols]
        n_c = len(candidates)
        # bin b = number of candidates <= score; the score counts at candidate k exactly when k < b.
        bins = np.searchsorted(candidates, s, side="right") + (n_c + 1) * np.arange(len(s))[:, None]
        size = len(s) * (n_c + 1)
        per_bin = np.bincount(bins.ravel(), minlength=size).reshape(len(s), n_c + 1)
        hit_bin = np.bincount(bins[t], minlength=size).reshape(len(s), n_c + 1)
        return sum_above(hit_bin), sum_above(per_bin)


def sum_above(per_bin: np.ndarray) -> np.ndarray:
    """(N, T) from (N, T + 1) counts per bin: column k is the sum over bins b > k."""
    return np.cumsum(per_bin[:, ::-1], axis=1)[:, ::-1][:, 1:]


def candidate_thresholds(y_true: np.ndarray, scores: np.ndarray, n: int = 256) -> np.ndarray:
    """Default candidates: up to ``n`` quantiles of the scores that could matter, sorted ascending.

    Only each image's top ``K`` scores are pooled,
    ``K = min(L, max(4, 5 * ceil(mean true labels)))``:
    iMet images have about 4 of 1,103 labels, so quantiles of all scores would crowd near the
    negatives' scores. Pass explicit candidates (e.g. ``np.linspace(0.01, 0.99, 99)``) to override.
    """
    t = check_labels(y_true, "y_true")
    s = check_scores(scores, t.shape)
    n_labels = s.shape[1]
    k = min(n_labels, max(4, 5 * int(np.ceil(t.sum(1).mean()))))
    pool = -np.partition(-s, k - 1, axis=1)[:, :k] if k < n_labels else s
    return np.unique(np.quantile(pool, np.linspace(0.0, 1.0, max(2, n))))


def check_candidates(candidates: np.ndarray | None, p: ThresholdProblem) -> np.ndarray:
    """Sorted distinct candidates (default: :func:`candidate_thresholds` of ``p``'s data)."""
    if candidates is None:
        return candidate_thresholds(p.t, p.s)
    c = np.unique(np.asarray(candidates, dtype=np.float64).ravel())
    if c.size == 0 or np.isnan(c).any():
        raise ArtidError("threshold candidates must be a non-empty list of numbers")
    return c


def fbeta_curve(
    y_true: np.ndarray,
    scores: np.ndarray,
    candidates: np.ndarray,
    *,
    beta: float = IMET_BETA,
    at_least_one: bool = False,
    zero_division: float = 0.0,
) -> np.ndarray:
    """(T,) mean per-image F-beta, one global threshold at each candidate (the report's curve)."""
    p = ThresholdProblem(y_true, scores, beta, at_least_one, zero_division)
    c = np.asarray(candidates, dtype=np.float64)
    order = np.argsort(c)
    curve = np.empty(len(c))
    curve[order] = p.mean_f(*p.counts_at(c[order], slice(None)))
    return curve


def best_index(values: np.ndarray) -> int:
    """Index of the largest value (NaN never wins); ties go to the first, the lowest threshold."""
    v = np.where(np.isnan(values), -np.inf, values)
    return int(np.argmax(v))
