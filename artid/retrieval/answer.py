"""What the pipeline answers for a batch of queries: the decision, the global answer beside it, and
the list of candidate classes a service shows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artid.retrieval.knn import Classified, KNNClassifier

#: One candidate of a query's list: (class, s_c, softmax share).
Candidate = tuple[int, float, float]


@dataclass
class Answer:
    """The pipeline's answer for Q queries.

    Attributes:
        pred, score, conf: the decision: class, log-odds (what queries are ranked and accepted by)
            and its 0..1 confidence; the re-ranked ones when the stage ran.
        inliers: (Q,) int64, the most inliers of a verified image of the predicted class (0: not
            verified, always 0 without re-ranking).
        global_: the kNN-only answer of the same search (equal to the decision without re-ranking).
        sims, idx: (Q, M) the global neighbours the answer was made from.
        counts: (Q, K) inlier counts of the first K neighbours (None without re-ranking).
    """

    pred: np.ndarray
    score: np.ndarray
    conf: np.ndarray
    inliers: np.ndarray
    global_: Classified
    sims: np.ndarray
    idx: np.ndarray
    counts: np.ndarray | None = None

    @property
    def decision(self) -> Classified:
        return Classified(self.pred, self.score, self.conf)

    @property
    def reranked(self) -> bool:
        return self.counts is not None

    def rows(self, rows: np.ndarray) -> Answer:
        """The answer of these queries only."""
        return Answer(
            self.pred[rows],
            self.score[rows],
            self.conf[rows],
            self.inliers[rows],
            Classified(*(a[rows] for a in self.global_)),
            self.sims[rows],
            self.idx[rows],
            None if self.counts is None else self.counts[rows],
        )


def candidates(
    clf: KNNClassifier, answer: Answer, listed: int, tau: float, n_top: int
) -> list[list[Candidate]]:
    """Per query the ``n_top`` best classes among its first ``listed`` neighbours, at ``tau``, with
    the
    decision's class first (found among all of the answer's neighbours when verification reached it
    beyond the listed ones)."""
    sims, idx = answer.sims, answer.idx
    tops = clf.top_classes(sims[:, :listed], idx[:, :listed], listed, tau, n_top)
    for q, top in enumerate(tops):
        pred = int(answer.pred[q])
        found = [c for c in top if c[0] == pred]
        if not found:
            every = clf.top_classes(
                sims[q : q + 1], idx[q : q + 1], sims.shape[1], tau, sims.shape[1]
            )
            found = [c for c in every[0] if c[0] == pred]
        tops[q] = (found + [c for c in top if c[0] != pred])[:n_top]
    return tops
