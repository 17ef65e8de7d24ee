"""Choices that survive a small validation set: keep the default unless another setting wins.

A validation GAP on a few dozen queries is noisy: on the real-image benchmark (docs/real_images.md,
Lite0 single-scale, 10 draws per size; benchmarks/small_validation.py) ``--whiten auto`` picking the
best val GAP among PCAw 512, PCAw 256 and raw descriptors lost 1.2 / 0.4 / 1.1 test GAP points
(mean paired SE 0.4 / 0.1 / 0.4) to the best fixed setting (PCAw 512) at 10 / 20 / 50 val photos;
with a 2-SE margin it lost nothing at any size (at 150, both rules kept PCAw 512). The rule here
keeps the default (the first candidate) unless an alternative's val GAP exceeds the default's by
more than :data:`MARGIN_SE` standard errors of their paired difference (bootstrap over the
validation queries, both answering the same queries); among those that do, the best val GAP wins.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from artid.metrics.bootstrap import paired_difference
from artid.metrics.ilr import gap

#: How many paired standard errors an alternative must win by on validation (1 SE still lost 0.2 /
#: 0.1 points at 10 / 50 val photos; 2 and 3 lost none: the smaller one, see above).
MARGIN_SE = 2.0
#: Bootstrap resamples of the paired difference (its SE to about 5%).
RESAMPLES = 200

Answers = tuple[np.ndarray, np.ndarray]
"""(pred, score) of one setting on the validation queries."""


def margin_choice(
    answers: Sequence[Answers],
    labels: np.ndarray,
    keys: np.ndarray | None = None,
    margin_se: float = MARGIN_SE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[int, list[float]]:
    """The index of the chosen setting (0, the default, unless beaten by the margin) and each
    setting's val GAP minus the default's, in paired SEs (0 for the default; inf where the
    difference is positive with zero spread).

    Args:
        answers: (pred, score) on the same validation queries of each setting, default first.
        labels: (Q,) the queries' classes (-1 distractor); keys: their tie-break keys.
        margin_se: the margin in paired SEs (0: the best val GAP, ties to the earlier setting).
    """
    gaps, z = paired_z(answers, labels, keys, resamples, seed)
    return pick(gaps, z, margin_se), z


def paired_z(
    answers: Sequence[Answers],
    labels: np.ndarray,
    keys: np.ndarray | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[list[float], list[float]]:
    """Each setting's val GAP, and its difference from the default's (the first) in paired SEs
    (bootstrap over the validation queries; arguments as :func:`margin_choice`)."""
    labels = np.asarray(labels)

    def stat(a: Answers):  # noqa: ANN202
        return lambda ix: gap(a[0][ix], a[1][ix], labels[ix], None if keys is None else keys[ix])

    n = len(labels)
    gaps = [float(stat(a)(np.arange(n))) for a in answers]
    z = [0.0]
    for a in answers[1:]:
        d = paired_difference(stat(a), stat(answers[0]), n, resamples, seed)
        z.append(d.value / d.se if d.se > 0 else (np.inf if d.value > 0 else 0.0))
    return gaps, z


def pick(gaps: Sequence[float], z: Sequence[float], margin_se: float = MARGIN_SE) -> int:
    """The rule of :func:`margin_choice` on val GAPs and z already computed: 0 unless some z
    exceeds ``margin_se``, then the best val GAP among those (``margin_se <= 0``: the best val
    GAP overall; ties to the earlier setting)."""
    if margin_se <= 0:
        return int(np.argmax(gaps))
    beats = [i for i in range(1, len(gaps)) if z[i] > margin_se]
    if not beats:
        return 0
    return max(beats, key=lambda i: (gaps[i], -i))
