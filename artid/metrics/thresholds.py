"""Threshold search on validation scores for the mean per-image F-beta (iMet: F2).

Three searches, each starting from the previous one's answer:

- :func:`search_global`: one threshold for every label, the best of the candidates;
- :func:`search_per_group`: one threshold per label group (``culture::``, ``tag::``, ...), by
  coordinate ascent: each group's threshold in turn is set to its best candidate with the other
  groups' fixed, for a few rounds (the per-image F couples the groups, so they are not independent);
- :func:`search_per_label`: one threshold per label, shrunk toward its group's threshold.

Shrinkage rule. Label ``l`` with ``n_l`` positive validation images first gets its best threshold
``r_l`` with every other label fixed, then ``t_l = (n_l * r_l + k * g_l) / (n_l + k)``, ``g_l`` its
group's threshold and ``k`` = ``shrinkage`` (default 10): a label seen on 10 validation images is
half its own optimum and half its group's; a label never seen keeps the group's threshold. It is the
additive-smoothing (empirical-Bayes) blend: an optimum measured on a few positives is noise.

Vectorised. Per image, ``F = (1 + b^2) tp / (b^2 n_true + n_pred)``, so one threshold per label set
needs only each image's counts. For a set of columns and the sorted candidates, one ``bincount`` of
the candidate bin of every score, cumulated over the bins, gives the (N, T) counts at every
candidate at once (O(N L + N T)); for a single label with the others fixed, the F of threshold t is
the F with the label off plus the summed per-image gains of the images scoring at least t
(a cumulative sum over the images sorted by score). Written here because scikit-learn has no
threshold search for sample-averaged F-beta.

The ``at_least_one`` rule (:func:`artid.metrics.decisions.apply_thresholds`) is part of the searched
objective when asked for; ``max_per_group`` is not (it can only remove labels: apply it after, and
measure). The searches use each candidate as ``score >= threshold``, like ``apply_thresholds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from artid.errors import ArtidError
from artid.metrics.decisions import broadcast_thresholds, group_codes
from artid.metrics.multilabel import IMET_BETA
from artid.metrics.threshold_counts import (
    ThresholdProblem,
    best_index,
    candidate_thresholds,
    check_candidates,
    fbeta_curve,
)

__all__ = [
    "DEFAULT_SHRINKAGE",
    "ThresholdFit",
    "candidate_thresholds",
    "fbeta_curve",
    "search_global",
    "search_per_group",
    "search_per_label",
]

#: Default prior strength ``k`` of the per-label shrinkage (in positive validation images).
DEFAULT_SHRINKAGE = 10.0


@dataclass(frozen=True)
class ThresholdFit:
    """The searched thresholds and the validation score they reach.

    Attributes:
        thresholds: (L,) threshold of each label (equal within a group for "group", all equal for
            "global").
        fbeta: mean per-image F-beta on the validation data at these thresholds (``at_least_one``
            applied when the search used it).
        mode: "global", "group" or "label".
        at_least_one: whether the objective included the at-least-one-label rule.
    """

    thresholds: np.ndarray
    fbeta: float
    mode: str
    at_least_one: bool

    def as_dict(self) -> dict:
        """JSON-ready form (thresholds as a list)."""
        return {**self.__dict__, "thresholds": [float(t) for t in self.thresholds]}


def search_global(
    y_true: np.ndarray,
    scores: np.ndarray,
    *,
    candidates: np.ndarray | None = None,
    beta: float = IMET_BETA,
    at_least_one: bool = False,
    zero_division: float = 0.0,
) -> ThresholdFit:
    """The one threshold for every label that maximises the validation mean F-beta.

    Args:
        y_true: (N, L) 0/1 validation labels.
        scores: (N, L) validation scores.
        candidates: thresholds to try; default :func:`candidate_thresholds`.
        beta: F-beta's beta (2 for iMet).
        at_least_one: search with the at-least-one-label rule applied.
        zero_division: F of an image with nothing true and nothing predicted (see multilabel).
    """
    p = ThresholdProblem(y_true, scores, beta, at_least_one, zero_division)
    c = check_candidates(candidates, p)
    curve = p.mean_f(*p.counts_at(c, slice(None)))
    k = best_index(curve)
    return ThresholdFit(np.full(p.t.shape[1], c[k]), float(curve[k]), "global", at_least_one)


def search_per_group(
    y_true: np.ndarray,
    scores: np.ndarray,
    groups: Sequence[str],
    *,
    candidates: np.ndarray | None = None,
    beta: float = IMET_BETA,
    at_least_one: bool = False,
    zero_division: float = 0.0,
    rounds: int = 3,
    start: np.ndarray | float | None = None,
) -> ThresholdFit:
    """One threshold per label group by coordinate ascent (see the module docstring).

    Args:
        groups: (L,) group name of each label (:func:`artid.metrics.decisions.label_groups`).
        rounds: at most this many passes over the groups (stops early when a pass changes nothing).
        start: initial thresholds (default: :func:`search_global`'s).
        Others as :func:`search_global`.
    """
    p = ThresholdProblem(y_true, scores, beta, at_least_one, zero_division)
    c = check_candidates(candidates, p)
    codes, names = group_codes(groups, p.t.shape[1])
    if start is None:
        start = search_global(
            p.t,
            p.s,
            candidates=c,
            beta=beta,
            at_least_one=at_least_one,
            zero_division=zero_division,
        ).thresholds
    th = broadcast_thresholds(start, p.t.shape[1]).copy()
    for _ in range(max(1, rounds)):
        changed = False
        for g in range(len(names)):
            cols = codes == g
            tp_o, n_o = p.counts(th, ~cols)
            cand = np.unique(np.append(c, th[cols][0]))  # the current value too: never worse
            tp_g, n_g = p.counts_at(cand, cols)
            curve = p.mean_f(tp_o[:, None] + tp_g, n_o[:, None] + n_g)
            k, current = best_index(curve), int(np.searchsorted(cand, th[cols][0]))
            if curve[k] > curve[current]:  # ties keep the current threshold, so the ascent ends
                th[cols], changed = cand[k], True
        if not changed:
            break
    return ThresholdFit(th, float(p.mean_f(*p.counts(th))), "group", at_least_one)


def _label_curve(
    p: ThresholdProblem,
    j: int,
    tp: np.ndarray,
    n_pred: np.ndarray,
    on: np.ndarray,
    candidates: np.ndarray,
) -> np.ndarray:
    """(T,) mean F if label ``j`` alone had threshold candidates[k], the others as in ``on``."""
    tp_o = tp - (on[:, j] & p.t[:, j])
    n_o = n_pred - on[:, j]
    f_off = p.f(tp_o, n_o)
    f_on = p.f(tp_o + p.t[:, j], n_o + 1)
    ok_off, ok_on = ~np.isnan(f_off), ~np.isnan(f_on)
    d_sum = np.where(ok_on, f_on, 0.0) - np.where(ok_off, f_off, 0.0)
    d_cnt = ok_on.astype(np.int64) - ok_off
    order = np.argsort(-p.s[:, j], kind="stable")
    cs_sum = np.concatenate([[0.0], np.cumsum(d_sum[order])])
    cs_cnt = np.concatenate([[0], np.cumsum(d_cnt[order])])
    # images with score >= c
    n_on = len(p.s) - np.searchsorted(np.sort(p.s[:, j]), candidates, side="left")
    total = np.where(ok_off, f_off, 0.0).sum() + cs_sum[n_on]
    count = ok_off.sum() + cs_cnt[n_on]
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def search_per_label(
    y_true: np.ndarray,
    scores: np.ndarray,
    groups: Sequence[str],
    *,
    candidates: np.ndarray | None = None,
    beta: float = IMET_BETA,
    at_least_one: bool = False,
    zero_division: float = 0.0,
    shrinkage: float = DEFAULT_SHRINKAGE,
    rounds: int = 1,
    start: np.ndarray | float | None = None,
) -> ThresholdFit:
    """One threshold per label, each shrunk toward its group's threshold (module docstring).

    Labels are visited in order, ``rounds`` times; each sees the others' current thresholds.

    Args:
        shrinkage: prior strength ``k`` in positive images; 0 for unshrunk per-label optima.
        start: the group thresholds to start from and shrink toward (default:
            :func:`search_per_group`'s).
        Others as :func:`search_per_group`.
    """
    p = ThresholdProblem(y_true, scores, beta, at_least_one, zero_division)
    c = check_candidates(candidates, p)
    if shrinkage < 0:
        raise ArtidError(f"shrinkage must be >= 0; got {shrinkage}")
    if start is None:
        start = search_per_group(
            p.t,
            p.s,
            groups,
            candidates=c,
            beta=beta,
            at_least_one=at_least_one,
            zero_division=zero_division,
        ).thresholds
    prior = broadcast_thresholds(start, p.t.shape[1])
    th = prior.copy()
    n_pos = p.t.sum(0)
    on = p.s >= th[None, :]
    tp, n_pred = (on & p.t).sum(1), on.sum(1)
    for _ in range(max(1, rounds)):
        for j in range(p.t.shape[1]):
            cand = np.unique(np.append(c, th[j]))
            raw = cand[best_index(_label_curve(p, j, tp, n_pred, on, cand))]
            w = n_pos[j] / (n_pos[j] + shrinkage) if n_pos[j] + shrinkage > 0 else 1.0
            th[j] = w * raw + (1.0 - w) * prior[j]
            new = p.s[:, j] >= th[j]
            tp += (new & p.t[:, j]).astype(np.int64) - (on[:, j] & p.t[:, j])
            n_pred += new.astype(np.int64) - on[:, j]
            on[:, j] = new
    return ThresholdFit(th, float(p.mean_f(tp, n_pred)), "label", at_least_one)
