"""What a pipeline's fit chooses on validation: the whitening, the QE / DBA neighbour counts, and
the re-ranking stage's rule.

Each keeps a documented default unless an alternative wins on validation by a paired-bootstrap
margin (:func:`artid.retrieval.choosing.margin_choice`): the whitening ``auto``'s first candidate
(PCAw at the supported dimension), the expansion no QE / DBA beyond the configured ones, the
re-ranking rule the service's fixed one (:func:`artid.retrieval.fusion.choose_fusion`). Every
setting tried is recorded with its val GAP and its paired z against the default. The whitening and
expansion are grid searches (:func:`artid.tuning.grid_search`) whose every point rebuilds the
pipeline's index and tunes its (k, tau); the chosen one is left built in the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from artid.data.entries import DISTRACTOR
from artid.errors import ArtidError
from artid.extraction.local import LocalFeatures, LocalFeatureSet
from artid.retrieval.choosing import margin_choice
from artid.retrieval.config import PipelineConfig, WhiteningChoice, whitening_candidates
from artid.retrieval.expansion import N_GRID, Expansion
from artid.retrieval.projection import Projection
from artid.retrieval.rerank import Reranker
from artid.retrieval.verification import Features
from artid.tuning import grid_search

log = logging.getLogger(__name__)


class Fittable(Protocol):
    """The part of :class:`artid.retrieval.pipeline.KNNPipeline` the choices drive."""

    config: PipelineConfig
    classifier: Any
    projection: Projection | None
    k: int | None
    tau: float | None
    candidates: list[WhiteningChoice]
    expansion: Expansion
    expansion_grid: list[dict]

    def _build(
        self, db_parts: list[np.ndarray], labels: np.ndarray, cand: WhiteningChoice
    ) -> None: ...

    def _tune(
        self, val: list[np.ndarray] | None, labels: np.ndarray | None, keys: np.ndarray | None
    ) -> float | None: ...


def choose_whitening(
    self: Fittable,
    db: list[np.ndarray],
    labels: np.ndarray,
    val: list[np.ndarray] | None,
    val_labels: np.ndarray | None,
    keys: np.ndarray | None,
) -> WhiteningChoice:
    choices = whitening_candidates(self.config, db)
    if len(choices) > 1 and val is None:
        log.warning(
            "whiten=auto without validation queries: using %s",
            f"PCA-whitening to {choices[0].dim}" if choices[0].whiten else "raw descriptors",
        )
        choices = choices[:1]
    answers: list[tuple[np.ndarray, np.ndarray]] = []

    def score(c: WhiteningChoice) -> float:
        self._build(db, labels, c)
        c.val_gap = self._tune(val, val_labels, keys)
        assert self.projection is not None
        c.k, c.tau, c.projection = self.k, self.tau, self.projection.summary()
        if len(choices) > 1 and val is not None:
            q = self.expansion.expand(self.projection.transform(val), self.classifier)
            ans = self.classifier.predict(q, self.k, self.tau)
            answers.append((ans.pred, ans.score))
        if len(choices) > 1:
            log.info(
                "whitening %s: val GAP %.1f at k=%d tau=%g",
                c.projection["dims"] if c.whiten else "none",
                100 * (c.val_gap or 0.0),
                c.k,
                c.tau,
            )
        return c.val_gap or 0.0

    best = grid_search(choices, score).best
    if len(answers) > 1:
        assert val_labels is not None
        chosen, z = margin_choice(answers, val_labels, keys)
        for c, zc in zip(choices, z, strict=True):
            c.val_z = float(zc)
        if choices[chosen] is not best:
            log.info(
                "whitening: keeping %s (val GAP %.1f); the best val GAP %.1f is within the margin",
                choices[chosen].projection.get("dims") if choices[chosen].whiten else "none",
                100 * (choices[chosen].val_gap or 0.0),
                100 * (best.val_gap or 0.0),
            )
        best = choices[chosen]
    self.candidates = choices
    if best is not choices[-1]:  # the last one built is in place; rebuild the winner
        self._build(db, labels, best)
        self._tune(val, val_labels, keys)
    return best


def choose_expansion(
    self: Fittable,
    db: list[np.ndarray],
    labels: np.ndarray,
    best: WhiteningChoice,
    val: list[np.ndarray],
    val_labels: np.ndarray,
    keys: np.ndarray | None,
) -> None:
    """Choose the open qe_n / dba_n on validation (each point with its own tuned k, tau): the first
    point of the grid (0 for each open count: no expansion) unless another's val GAP beats it by
    the margin. Each point of :attr:`expansion_grid` records its val GAP, z and whether chosen."""
    cfg = self.config
    dbas: Sequence[int] = N_GRID if cfg.dba_n is None else (cfg.dba_n,)
    qes: Sequence[int] = N_GRID if cfg.qe_n is None else (cfg.qe_n,)
    points = [(d, q) for d in dbas for q in qes]
    built: list[int | None] = [None]
    answers: list[tuple[np.ndarray, np.ndarray]] = []
    grid: list[dict] = []

    def score(point: tuple[int, int]) -> float:
        dba_n, qe_n = point
        if built[0] != dba_n:
            self.expansion = Expansion(0, cfg.qe_alpha, dba_n, cfg.dba_alpha)
            self._build(db, labels, best)
            built[0] = dba_n
        self.expansion.qe_n = qe_n
        val_gap = self._tune(val, val_labels, keys) or 0.0
        assert self.projection is not None
        ans = self.classifier.predict(
            self.expansion.expand(self.projection.transform(val), self.classifier), self.k, self.tau
        )
        answers.append((ans.pred, ans.score))
        grid.append(
            {"qe_n": qe_n, "dba_n": dba_n, "val_gap": val_gap, "k": self.k, "tau": self.tau}
        )
        return val_gap

    result = grid_search(points, score)
    chosen, z = margin_choice(answers, val_labels, keys)
    for i, (point, zi) in enumerate(zip(grid, z, strict=True)):
        point["z"], point["chosen"] = float(zi), i == chosen
    self.expansion_grid.extend(grid)
    dba_n, qe_n = points[chosen]
    if points[chosen] != result.best:
        log.info(
            "expansion: keeping dba_n %d, qe_n %d (val GAP %.1f); the best val GAP %.1f "
            "(dba_n %d, qe_n %d) is within the margin",
            dba_n,
            qe_n,
            100 * grid[chosen]["val_gap"],
            100 * result.score,
            *result.best,
        )
    self.expansion = Expansion(qe_n, cfg.qe_alpha, dba_n, cfg.dba_alpha)
    if chosen != len(points) - 1:  # the last point built is in place; rebuild the chosen one
        self._build(db, labels, best)
        self._tune(val, val_labels, keys)


def fit_rerank(
    self: Any,
    db_features: LocalFeatureSet | Sequence[LocalFeatures] | None,
    val: list[np.ndarray] | None,
    val_labels: np.ndarray | None,
    keys: np.ndarray | None,
    val_features: Features | Sequence[LocalFeatures] | None,
    progress: bool,
) -> None:
    clf, _, k, tau = self._fitted()
    assert self.config.rerank is not None
    if db_features is None:
        raise ArtidError("the re-ranking stage needs the database images' local features")
    local = (
        db_features
        if isinstance(db_features, LocalFeatureSet)
        else LocalFeatureSet.pack(list(db_features))
    )
    if len(local) != clf.size:
        raise ArtidError(f"local features of {len(local)} images for {clf.size} database rows")
    self.local = local
    self.reranker = Reranker(self.config.rerank, local.__getitem__, tau)
    if val is None or val_features is None:
        return
    assert val_labels is not None
    sims, idx = self.neighbours(val, self._depth(True), progress=False)
    counts = self.reranker.verify(idx, _as_lookup(val_features), progress)
    if bool((val_labels != DISTRACTOR).any()):
        self.reranker.fit(sims, idx, counts, clf, k, tau, self.config.taus, val_labels, keys)
    else:
        log.warning("no validation query of a database class: the re-ranking rule is not tuned")
    self.val_answer = self._decide(sims, idx, counts)


def _as_lookup(features: Features | Sequence[LocalFeatures]) -> Features:
    return features if callable(features) else list(features).__getitem__
