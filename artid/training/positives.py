"""Positive-pair strategies of the contrastive methods (METHOD section 7, thesis 4.4.2).

A strategy picks, for every anchor, either :data:`SYNTHETIC` (an augmented copy of the
anchor itself) or the index of another database image of the anchor's class.
Single-image classes always get :data:`SYNTHETIC`. A new strategy is one small class
with a ``pick`` method, registered in :data:`STRATEGIES`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

#: Marker for "an augmented copy of the anchor".
SYNTHETIC = -1


class PositiveStrategy(ABC):
    """Base class. ``needs_closest`` tells the trainer to compute closest positives each epoch."""

    name: ClassVar[str] = ""
    needs_closest: ClassVar[bool] = False

    @abstractmethod
    def pick(
        self, members: list[np.ndarray], rng: np.random.Generator, closest: np.ndarray | None = None
    ) -> np.ndarray:
        """Choose the positive of every anchor.

        Args:
            members: for image i, the indices of all images of its class (i included);
                see :func:`artid.training.mining.class_members`.
            rng: random generator.
            closest: (N,) int64 most similar other image of the class, -1 if none
                (only for strategies with ``needs_closest``).

        Returns:
            (N,) int64: :data:`SYNTHETIC` or the index of a real positive.
        """


class ConSyn(PositiveStrategy):
    """Con-Syn: the positive is always an augmented copy of the anchor."""

    name = "con-syn"

    def pick(self, members, rng, closest=None):
        return np.full(len(members), SYNTHETIC, dtype=np.int64)


class ConSynReal(PositiveStrategy):
    """Con-Syn+Real: uniform over {the anchor's augmentation} U {the other images of its class}.

    Each choice has probability 1 / |class|.
    """

    name = "con-syn+real"

    def pick(self, members, rng, closest=None):
        n = len(members)
        sizes = np.fromiter((m.size for m in members), dtype=np.int64, count=n)
        r = (rng.random(n) * sizes).astype(np.int64)  # 0 = synthetic, 1.. = r-th other image
        out = np.full(n, SYNTHETIC, dtype=np.int64)
        for i in np.flatnonzero(r > 0):
            others = members[i][members[i] != i]
            out[i] = others[r[i] - 1]
        return out


class ConSynRealClosest(PositiveStrategy):
    """Con-Syn+Real-closest: with probability 1/2 the augmentation, else the closest other image."""

    name = "con-syn+real-closest"
    needs_closest = True

    def pick(self, members, rng, closest=None):
        if closest is None:
            raise ValueError(
                "con-syn+real-closest needs the closest positives of the current epoch"
            )
        n = len(members)
        real = rng.random(n) < 0.5
        return np.where(real & (closest >= 0), closest, SYNTHETIC).astype(np.int64)


#: Name (as on the command line) -> strategy class.
STRATEGIES: dict[str, type[PositiveStrategy]] = {
    s.name: s for s in (ConSyn, ConSynReal, ConSynRealClosest)
}
