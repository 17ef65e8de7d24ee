"""The one recognition pipeline: projection -> index -> kNN classifier -> expansion -> re-ranking.

Evaluation, the recognition service and training validation all use :class:`KNNPipeline`::

    pipe = KNNPipeline(PipelineConfig(whiten="auto", rerank=RerankConfig(top=50)))
    pipe.fit(db, db_labels, val, val_labels, val_keys, db_features=..., val_features=...)
    ans = pipe.predict(test, features=...)      # Answer: decision, inliers, the global answer
    pipe.save(folder); KNNPipeline.load(folder)  # everything, database included

``fit`` chooses, on the validation queries, what the configuration leaves open: the whitening
(``auto``: raw descriptors or PCA-whitening at a supported dimension, by validation GAP), (k, tau)
(grid search by GAP), QE / DBA neighbour counts, and the re-ranking rule. Queries are ranked by
the decision's log-odds with ties broken by key (the query path), so nothing depends on the order
of the input files. The saved folder (:mod:`artid.retrieval.storage`) is what a service bundle
keeps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from artid.errors import ArtidError
from artid.extraction.local import LocalFeatures, LocalFeatureSet
from artid.metrics.calibration import ConfidenceCalibration, fit_confidence
from artid.metrics.ilr import gap
from artid.retrieval import edits, storage
from artid.retrieval.answer import Answer, Candidate, candidates
from artid.retrieval.autotune import AutotuneResult, autotune
from artid.retrieval.compressed import PQSearcher
from artid.retrieval.config import WHITEN_MODES, PipelineConfig, WhiteningChoice
from artid.retrieval.expansion import Expansion
from artid.retrieval.fitting import choose_expansion, choose_whitening, fit_rerank
from artid.retrieval.index import IVFSearcher
from artid.retrieval.knn import KNNClassifier, confidence
from artid.retrieval.projection import Projection, as_parts
from artid.retrieval.rerank import Reranker
from artid.retrieval.verification import Features

__all__ = ["WHITEN_MODES", "Answer", "KNNPipeline", "PipelineConfig", "WhiteningChoice"]

log = logging.getLogger(__name__)

Descriptors = np.ndarray | Sequence[np.ndarray]
QueryFeatures = Features | Sequence[LocalFeatures]


def lookup(features: QueryFeatures) -> Features:
    """Query row -> local features, from a function or a sequence."""
    return features if callable(features) else list(features).__getitem__


class KNNPipeline:
    """Fit on the database and validation, then answer queries; saved and loaded whole."""

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config or PipelineConfig()
        self.config.check()
        self.projection: Projection | None = None
        self.classifier: KNNClassifier | None = None
        self.k: int | None = None
        self.tau: float | None = None
        self.tuned: AutotuneResult | None = None
        self.candidates: list[WhiteningChoice] = []
        cfg = self.config  # fixed QE / DBA apply throughout; open ones (None) are tuned later
        self.expansion = Expansion(cfg.qe_n or 0, cfg.qe_alpha, cfg.dba_n or 0, cfg.dba_alpha)
        self.expansion_grid: list[dict] = []
        self.reranker: Reranker | None = None
        #: the database rows' local features (with a re-ranking stage)
        self.local: LocalFeatureSet | None = None
        #: the validation queries' answer at the chosen settings (after :meth:`fit` with validation)
        self.val_answer: Answer | None = None
        #: score -> probability that the answer is right, fitted on that answer (or None)
        self.calibration: ConfidenceCalibration | None = None

    # --- fitting ---------------------------------------------------------------------------------
    def _index(self, db: np.ndarray, labels: np.ndarray, n_classes: int | None) -> None:
        cfg = self.config
        db = np.ascontiguousarray(db, dtype=cfg.storage)
        searcher: IVFSearcher | PQSearcher | None = None
        if cfg.index == "ivf":
            searcher = IVFSearcher(db, nprobe=cfg.nprobe)
        elif cfg.index == "ivfpq":
            searcher = PQSearcher.build(db, nprobe=cfg.nprobe, rescore=cfg.rescore, progress=False)
        self.classifier = KNNClassifier(
            db, labels, n_classes=n_classes, use_gpu=cfg.use_gpu, searcher=searcher
        )

    def _build(self, db_parts: list[np.ndarray], labels: np.ndarray, cand: WhiteningChoice) -> None:
        cfg = self.config
        self.projection = Projection.fit(db_parts, cand.whiten, cand.dim or cfg.dim, cfg.shrinkage)
        db = self.expansion.augment(self.projection.transform(db_parts), cfg.use_gpu)
        self._index(db, labels, cfg.n_classes)

    def _tune(
        self, val: list[np.ndarray] | None, labels: np.ndarray | None, keys: np.ndarray | None
    ) -> float | None:
        """Set (k, tau) (tuned or fixed); return the validation GAP at them (None without val)."""
        cfg, clf, projection = self.config, self.classifier, self.projection
        assert clf is not None and projection is not None, "_build() first"
        if cfg.k is not None:
            assert cfg.tau is not None  # PipelineConfig.check: both or neither
            self.k, self.tau, self.tuned = clf.clamp_k(cfg.k), float(cfg.tau), None
            if val is None:
                return None
            assert labels is not None
            q = self.expansion.expand(projection.transform(val), clf)
            ans = clf.predict(q, self.k, self.tau)
            return gap(ans.pred, ans.score, labels, keys)
        assert val is not None and labels is not None  # fit() refuses to tune without them
        q = self.expansion.expand(projection.transform(val), clf)
        self.tuned = autotune(clf, q, labels, cfg.ks, cfg.taus, keep_neighbours=True, keys=keys)
        self.k, self.tau = self.tuned.best_k, self.tuned.best_tau
        return self.tuned.best_gap

    def fit(
        self,
        db: Descriptors,
        db_labels: np.ndarray,
        val: Descriptors | None = None,
        val_labels: np.ndarray | None = None,
        val_keys: Sequence[str] | np.ndarray | None = None,
        db_features: LocalFeatureSet | Sequence[LocalFeatures] | None = None,
        val_features: QueryFeatures | None = None,
        progress: bool = True,
    ) -> KNNPipeline:
        """Fit the whitening, the index and the classifier on the database; choose what is open on
        validation; then the re-ranking stage's rule.

        Args:
            db: (N, D) database descriptors, or one matrix per part (concatenation).
            db_labels: (N,) class of each database image.
            val, val_labels: validation descriptors (same parts) and their classes (-1 for a
                distractor); needed to tune (k, tau) and for ``whiten="auto"``.
            val_keys: (Q,) tie-break keys of the validation ranking (the query paths).
            db_features: the database rows' local features (needed with a re-ranking stage).
            val_features: validation row -> local features (to tune the re-ranking rule; without
                them the rule's defaults apply).
        """
        db_parts = as_parts(db)
        labels = np.asarray(db_labels, dtype=np.int64)
        val_parts = None if val is None else as_parts(val)
        if val_parts is not None:
            val_labels = np.asarray(val_labels)
            if val_labels.shape != (val_parts[0].shape[0],):
                raise ArtidError(
                    f"{val_parts[0].shape[0]} validation queries but labels of shape "
                    f"{val_labels.shape}"
                )
        keys = None if val_keys is None else np.asarray(val_keys)
        if self.config.k is None and val_parts is None:
            raise ArtidError("tuning k and tau needs validation queries (or give fixed k and tau)")
        best = choose_whitening(self, db_parts, labels, val_parts, val_labels, keys)
        if self.config.qe_n is None or self.config.dba_n is None:
            if val_parts is None:
                raise ArtidError(
                    "tuning qe_n / dba_n needs validation queries (or give fixed values)"
                )
            assert val_labels is not None
            choose_expansion(self, db_parts, labels, best, val_parts, val_labels, keys)
        if self.config.rerank is not None:
            fit_rerank(self, db_features, val_parts, val_labels, keys, val_features, progress)
        elif val_parts is not None:
            self.val_answer = self.predict(val_parts, progress=False)
        if (ans := self.val_answer) is not None:
            self.calibration = fit_confidence(ans.score, ans.pred == val_labels)
        return self

    def confidence(self, score: np.ndarray) -> np.ndarray:
        """The probability that answers of these scores are right (:attr:`calibration`); the
        softmax ``sigmoid(score)`` of a pipeline fitted without validation."""
        return confidence(score) if self.calibration is None else self.calibration(score)

    # --- answering -------------------------------------------------------------------------------
    def _fitted(self) -> tuple[KNNClassifier, Projection, int, float]:
        """The classifier, projection, k and tau of a fitted pipeline."""
        if self.classifier is None or self.projection is None or self.k is None or self.tau is None:
            raise ArtidError("the pipeline is not fitted: call fit() or load() first")
        return self.classifier, self.projection, self.k, self.tau

    def transform(self, x: Descriptors) -> np.ndarray:
        """Descriptors -> the searched space (whitened, concatenated, L2-normalised)."""
        return self._fitted()[1].transform(x)

    def neighbours(
        self, queries: Descriptors, k: int | None = None, progress: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(sims, idx) of the k (default: the pipeline's k) nearest database images."""
        clf, _, own_k, _ = self._fitted()
        q = self.expansion.expand(self.transform(queries), clf)
        return clf.search(q, k or own_k, progress=progress)

    def _depth(self, rerank: bool, listed: int = 0) -> int:
        """Neighbours one search needs: k, the listed ones, and K when re-ranking."""
        clf, _, k, _ = self._fitted()
        top = self.reranker.top if rerank and self.reranker is not None else 0
        return min(max(k, listed, top), clf.size)

    def _reranks(self, rerank: bool | None, features: QueryFeatures | None) -> bool:
        if rerank and self.reranker is None:
            raise ArtidError(
                "this pipeline has no re-ranking stage: fit it with a RerankConfig "
                "(artid evaluate / index build --rerank K)"
            )
        on = self.reranker is not None and rerank is not False
        if on and features is None:
            raise ArtidError("re-ranking needs the queries' local features")
        return on

    def _decide(self, sims: np.ndarray, idx: np.ndarray, counts: np.ndarray | None) -> Answer:
        clf, _, k, tau = self._fitted()
        glob = clf.classify(sims, idx, min(k, sims.shape[1]), tau)
        if counts is None or self.reranker is None:
            return Answer(*glob, np.zeros(len(sims), np.int64), glob, sims, idx)
        rr = self.reranker.decide(sims, idx, counts, clf, k)
        return Answer(*rr.classified, rr.inliers, glob, sims, idx, counts)

    def predict(
        self,
        queries: Descriptors,
        features: QueryFeatures | None = None,
        rerank: bool | None = None,
        progress: bool = True,
    ) -> Answer:
        """The decision of each query (re-ranked when the pipeline has the stage, unless ``rerank``
        is False) and the global answer beside it.

        Args:
            queries: query descriptors (the database's parts).
            features: query row -> local features, or a list (needed to re-rank).
            rerank: None: re-rank when the pipeline has the stage; False: the global answer.
        """
        on = self._reranks(rerank, features)
        sims, idx = self.neighbours(queries, self._depth(on), progress=progress)
        counts = None
        if on:
            assert self.reranker is not None and features is not None
            counts = self.reranker.verify(idx, lookup(features), progress)
        return self._decide(sims, idx, counts)

    def answer(
        self,
        queries: Descriptors,
        features: QueryFeatures | None = None,
        rerank: bool | None = None,
        n_top: int = 5,
        list_neighbours: int = 20,
    ) -> tuple[Answer, list[list[Candidate]]]:
        """:meth:`predict` and, from the same search, the ``n_top`` candidate classes among the
        ``max(k, list_neighbours)`` nearest images (the decision's class first)."""
        clf, _, k, tau = self._fitted()
        on = self._reranks(rerank, features)
        listed = min(max(k, list_neighbours), clf.size)
        sims, idx = self.neighbours(queries, self._depth(on, listed), progress=False)
        counts = None
        if on:
            assert self.reranker is not None and features is not None
            counts = self.reranker.verify(idx, lookup(features))
        ans = self._decide(sims, idx, counts)
        return ans, candidates(clf, ans, listed, tau, n_top)

    # --- edits (the service's index add / remove) --------------------------------------------
    @property
    def n_classes(self) -> int:
        return self._fitted()[0].n_classes

    @n_classes.setter
    def n_classes(self, n: int) -> None:
        clf = self._fitted()[0]
        if n < int(np.unique(clf.labels).size):
            raise ArtidError(f"n_classes={n} is smaller than the distinct database labels")
        clf.n_classes = int(n)

    def add(
        self,
        x: Descriptors,
        labels: np.ndarray,
        features: Sequence[LocalFeatures] | None = None,
        n_classes: int | None = None,
    ) -> None:
        """Append database rows (:func:`artid.retrieval.edits.add_rows`)."""
        edits.add_rows(self, x, labels, features, n_classes)

    def keep(self, rows: Sequence[int] | np.ndarray, n_classes: int | None = None) -> None:
        """Keep only these database rows (:func:`artid.retrieval.edits.keep_rows`)."""
        edits.keep_rows(self, rows, n_classes)

    # --- persistence ------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """JSON-able: the configuration, what fit chose, every whitening and expansion tried."""
        return storage.summary(self)

    def save(self, folder: str | Path) -> Path:
        """Write the whole fitted pipeline to a folder (JSON + ``.npy`` + faiss; no pickle)."""
        return storage.save(self, Path(folder))

    @classmethod
    def load(
        cls, folder: str | Path, use_gpu: bool | None = None, mmap: bool = False
    ) -> KNNPipeline:
        """Read a pipeline :meth:`save` wrote (``mmap``: map the database, index and keypoints)."""
        return storage.load(cls, Path(folder), use_gpu, mmap)
