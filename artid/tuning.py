"""One grid search for every tuner: try each point, keep the best score, ties to the first point.

The kNN classifier's (k, tau), query expansion, the re-ranking rule, the parametric classifier's
temperature and the label-transfer temperature are all chosen this way on validation queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P")


@dataclass
class GridResult(Generic[P]):
    """The best point of a grid search, its score, and every point tried with its score."""

    best: P
    score: float
    tried: list[tuple[P, float]] = field(default_factory=list)


def grid_search(points: Iterable[P], score: Callable[[P], float]) -> GridResult[P]:
    """Score every point; the highest score wins, the earliest point among equal scores.

    Raises:
        ValueError: an empty grid.
    """
    tried: list[tuple[P, float]] = []
    best: tuple[P, float] | None = None
    for p in points:
        s = float(score(p))
        tried.append((p, s))
        if best is None or s > best[1]:
            best = (p, s)
    if best is None:
        raise ValueError("grid search over an empty grid")
    return GridResult(best[0], best[1], tried)
