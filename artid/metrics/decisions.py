"""From (N, L) scores to (N, L) decisions: thresholds, label groups and the per-image rules.

iMet labels are named ``group::name`` (``culture::american``, ``tag::men``; 2020 adds
``country::``, ``dimension::``, ``medium::``, ``tags::``; the synthetic benchmark writes its own
groups). The group is what the threshold search shares thresholds over and what the "at most n per
group" rule counts in.

The rules, applied in this order by :func:`apply_thresholds`:

1. a label is predicted when its score is at or above its threshold (``score >= threshold``);
2. ``max_per_group``: of the labels predicted in one group, keep the ``n`` with the highest scores
   (the iMet 2019 winners kept at most a few ``culture::`` labels per image);
3. ``at_least_one``: an image left with no label gets its single highest-scoring label (an empty
   prediction scores 0 on an image that has labels, so a guess can only help).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from artid.errors import ArtidError
from artid.metrics.multilabel import check_scores

#: Separator between a label's group and its name.
GROUP_SEPARATOR = "::"


def label_group(name: str) -> str:
    """The group of a label name: the part before ``::``, or ``""`` for a name without one."""
    head, sep, _ = name.partition(GROUP_SEPARATOR)
    return head if sep else ""


def label_groups(names: Sequence[str]) -> list[str]:
    """The group of every label name, in order (see :func:`label_group`)."""
    return [label_group(str(n)) for n in names]


def group_codes(groups: Sequence[str], n_labels: int) -> tuple[np.ndarray, list[str]]:
    """(L,) int code of each label's group and the group names in order of first appearance."""
    if len(groups) != n_labels:
        raise ArtidError(f"{len(groups)} label groups given for {n_labels} labels")
    names: list[str] = []
    index: dict[str, int] = {}
    codes = np.empty(n_labels, dtype=np.int64)
    for j, g in enumerate(groups):
        if g not in index:
            index[g] = len(names)
            names.append(g)
        codes[j] = index[g]
    return codes, names


def broadcast_thresholds(thresholds: float | np.ndarray, n_labels: int) -> np.ndarray:
    """(L,) float64 thresholds from one number or one per label; :class:`ArtidError` otherwise."""
    th = np.asarray(thresholds, dtype=np.float64)
    if th.ndim == 0:
        th = np.full(n_labels, float(th))
    if th.shape != (n_labels,):
        raise ArtidError(f"need one threshold or {n_labels} (one per label); got shape {th.shape}")
    if np.isnan(th).any():
        raise ArtidError("a threshold is NaN")
    return th


def _cap_per_group(
    pred: np.ndarray,
    scores: np.ndarray,
    codes: np.ndarray,
    names: list[str],
    caps: Mapping[str, int],
) -> None:
    """Keep, in place, at most ``caps[group]`` predicted labels per group and image (top scores)."""
    for g, name in enumerate(names):
        if name not in caps:
            continue
        cols = np.flatnonzero(codes == g)
        cap = caps[name]
        if cap >= len(cols):
            continue
        sub = np.where(pred[:, cols], scores[:, cols], -np.inf)
        order = np.argsort(-sub, axis=1, kind="stable")
        drop = order[:, cap:]
        rows = np.arange(len(pred))[:, None]
        pred[rows, cols[drop]] = False


def apply_thresholds(
    scores: np.ndarray,
    thresholds: float | np.ndarray,
    *,
    at_least_one: bool = False,
    max_per_group: int | Mapping[str, int] | None = None,
    groups: Sequence[str] | None = None,
) -> np.ndarray:
    """(N, L) bool decisions from scores, thresholds and the per-image rules (module docstring).

    Args:
        scores: (N, L) float scores.
        thresholds: one threshold for all labels, or (L,) one per label.
        at_least_one: give an image with no label its highest-scoring label.
        max_per_group: at most this many labels per group and image: one int for every group, or
            ``{group: n}`` for some groups (others uncapped). Needs ``groups``.
        groups: (L,) group name of each label (:func:`label_groups` of the label names).
    """
    s = check_scores(scores)
    n, n_labels = s.shape
    th = broadcast_thresholds(thresholds, n_labels)
    pred = s >= th[None, :]
    if max_per_group is not None:
        if groups is None:
            raise ArtidError("max_per_group needs the label groups")
        codes, names = group_codes(groups, n_labels)
        caps = (
            {g: max_per_group for g in names}
            if isinstance(max_per_group, int)
            else dict(max_per_group)
        )
        unknown = sorted(set(caps) - set(names))
        if unknown:
            raise ArtidError(
                f"max_per_group names unknown groups {unknown}; the groups are {names}"
            )
        if any(int(c) < 1 for c in caps.values()):
            raise ArtidError(f"max_per_group must be at least 1 per group; got {caps}")
        _cap_per_group(pred, s, codes, names, {g: int(c) for g, c in caps.items()})
    if at_least_one and n_labels:
        empty = np.flatnonzero(~pred.any(axis=1))
        pred[empty, np.argmax(s[empty], axis=1)] = True
    return pred
