"""The re-ranking stage of the pipeline: spatial verification of the global top K, fused into the kNN answer.

After :class:`artid.retrieval.pipeline.KNNPipeline` has searched, :class:`Reranker` verifies each
query's first ``top`` (K) database images with local features and a MAGSAC homography
(:mod:`artid.retrieval.verification`) and fuses the inlier counts into the class scores by the
rule of :func:`artid.retrieval.fusion.fuse`::

    pipe = KNNPipeline(config).fit(db, db_labels, val, val_labels, val_keys)
    rr = Reranker(pipe, database_features, RerankConfig(top=50))
    rr.fit(val, val_features, val_labels, val_keys)     # (w, min_inliers, tau) by validation GAP
    answer = rr.predict(test, test_features)            # Reranked: pred, score, conf, inliers

``database_features`` / ``val_features`` map a row to its :class:`LocalFeatures` (usually a
`artid.extraction.local.FeatureCache` lookup). Without validation queries the rule's
defaults apply: ``w`` = :data:`DEFAULT_W`, ``min_inliers`` = :data:`DEFAULT_MIN_INLIERS` (what
validation chose at K = 50 on the default synthetic benchmark, ``benchmarks/rerank.py``) and the
pipeline's own tau.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from artid.errors import ArtidError
from artid.extraction.local import DEFAULT_KEYPOINTS, DEFAULT_SIZE
from artid.metrics.ilr import gap
from artid.retrieval.fusion import (
    DEFAULT_CAP,
    MIN_INLIERS_GRID,
    W_GRID,
    FusionChoice,
    fuse,
    tune_fusion,
    verified_inliers,
)
from artid.retrieval.knn import Classified
from artid.retrieval.pipeline import KNNPipeline
from artid.retrieval.verification import Features, verify

#: The fusion rule without validation queries: what validation chose at K = 50 on the demo benchmark
#: (multi-scale descriptors, PCAw; ``benchmarks/rerank.py``).
DEFAULT_W = 0.5
DEFAULT_MIN_INLIERS = 8
#: The default number of verified neighbours.
DEFAULT_TOP = 50


@dataclass
class RerankConfig:
    """What the re-ranking stage does; None for ``w`` / ``min_inliers`` / ``tau`` means "tune on validation".

    Attributes:
        top: K, the database images verified per query (the first K of the global search).
        w: the bonus of a fully verified class (``w * min(n, cap) / cap`` added to its score).
        min_inliers: inliers a database image needs to count as verified.
        tau: the temperature of the fused log-odds.
        cap: the inlier count at which the bonus saturates.
        max_keypoints, max_size: SIFT keypoints per image and the longer side images are read at.
    """

    top: int = DEFAULT_TOP
    w: float | None = None
    min_inliers: int | None = None
    tau: float | None = None
    cap: int = DEFAULT_CAP
    max_keypoints: int = DEFAULT_KEYPOINTS
    max_size: int = DEFAULT_SIZE

    def check(self) -> None:
        """Refuse settings that cannot work, naming the setting."""
        if self.top < 1:
            raise ArtidError(f"re-ranking needs at least 1 verified neighbour (K), got {self.top}")
        if self.w is not None and self.w < 0:
            raise ArtidError(f"the re-ranking weight w must be 0 or more, got {self.w}")
        if self.min_inliers is not None and self.min_inliers < 4:
            raise ArtidError(f"min_inliers must be at least 4 (a homography needs 4 points), got {self.min_inliers}")
        if self.tau is not None and not self.tau > 0:
            raise ArtidError(f"the re-ranking tau must be a positive temperature, got {self.tau}")
        if self.cap < 1 or self.max_keypoints < 4 or self.max_size < 32:
            raise ArtidError("re-ranking needs cap >= 1, max_keypoints >= 4 and max_size >= 32")


@dataclass
class Reranked:
    """The re-ranked answer of each query.

    Attributes:
        classified: prediction, fused log-odds and confidence.
        inliers: (Q,) the most inliers of a verified image of the predicted class (0: not verified).
        counts: (Q, K) inlier counts of the first K neighbours.
        sims, idx: (Q, M) the global neighbours the answer was fused from.
    """

    classified: Classified
    inliers: np.ndarray
    counts: np.ndarray
    sims: np.ndarray
    idx: np.ndarray


class Reranker:
    """Spatial-verification re-ranking on top of a fitted kNN pipeline."""

    def __init__(self, pipe: KNNPipeline, database: Features, config: RerankConfig | None = None) -> None:
        self.config = config or RerankConfig()
        self.config.check()
        if pipe.classifier is None or pipe.k is None or pipe.tau is None:
            raise ArtidError("the re-ranking stage needs a fitted kNN pipeline")
        self.pipe, self.database = pipe, database
        cfg = self.config
        self.w = DEFAULT_W if cfg.w is None else float(cfg.w)
        self.min_inliers = DEFAULT_MIN_INLIERS if cfg.min_inliers is None else int(cfg.min_inliers)
        self.tau = float(pipe.tau) if cfg.tau is None else float(cfg.tau)
        self.tuned: FusionChoice | None = None
        self.global_val_gap: float | None = None
        self.ms_per_query: float | None = None
        #: the validation queries' answer at the chosen rule (after :meth:`fit`)
        self.val_answer: Reranked | None = None

    @property
    def top(self) -> int:
        """K, capped at the database size."""
        assert self.pipe.classifier is not None
        return min(self.config.top, self.pipe.classifier.size)

    def search(self, queries: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The global neighbours the stage needs: max(k, K) per query."""
        assert self.pipe.k is not None
        return self.pipe.neighbours(queries, max(self.pipe.k, self.top), progress=False)

    def verify(self, idx: np.ndarray, features: Features, progress: bool = True) -> np.ndarray:
        """(Q, K) inlier counts between each query (``features(q)``) and its first K neighbours."""
        counts, self.ms_per_query = verify(idx, features, self.database, self.top, progress)
        return counts

    def decide(self, sims: np.ndarray, idx: np.ndarray, counts: np.ndarray) -> Reranked:
        """Fuse inlier counts into the kNN answer (the rule of :func:`artid.retrieval.fusion.fuse`)."""
        clf, k = self.pipe.classifier, self.pipe.k
        assert clf is not None and k is not None
        k = min(k, sims.shape[1])
        ans = fuse(sims, idx, clf.labels, counts, k, self.tau, clf.n_classes, self.w, self.min_inliers,
                   self.config.cap)
        inliers = verified_inliers(idx, clf.labels, counts, ans.pred, self.min_inliers)
        return Reranked(ans, inliers, counts, sims, idx)

    def fit(self, queries: np.ndarray | Sequence[np.ndarray], features: Features, labels: np.ndarray,
            keys: Sequence[str] | np.ndarray | None = None, progress: bool = True,
            counts: np.ndarray | None = None) -> Reranker:
        """Choose what the configuration leaves open of (w, min_inliers, tau) by validation GAP.

        ``counts``: (Q, >= K) inlier counts of these queries' neighbours already verified (by a
        stage with a larger K on the same pipeline); the verification is then skipped.
        """
        clf, k = self.pipe.classifier, self.pipe.k
        assert clf is not None and k is not None and self.pipe.tau is not None
        labels = np.asarray(labels)
        keys = None if keys is None else np.asarray(keys)
        sims, idx = self.search(queries)
        if counts is not None and counts.shape[1] >= min(self.top, idx.shape[1]):
            counts = counts[:, :min(self.top, idx.shape[1])]
        else:
            counts = self.verify(idx, features, progress)
        glob = clf.classify(sims, idx, min(k, sims.shape[1]), self.pipe.tau)
        self.global_val_gap = gap(glob.pred, glob.score, labels, keys)
        cfg = self.config
        self.tuned = tune_fusion(
            sims, idx, clf.labels, counts, labels, min(k, sims.shape[1]), clf.n_classes,
            self.pipe.config.taus if cfg.tau is None else (cfg.tau,), keys,
            W_GRID if cfg.w is None else (cfg.w,), MIN_INLIERS_GRID if cfg.min_inliers is None else (cfg.min_inliers,),
            cfg.cap)
        self.w, self.min_inliers, self.tau = self.tuned.w, self.tuned.min_inliers, self.tuned.tau
        self.val_answer = self.decide(sims, idx, counts)
        return self

    def predict(self, queries: np.ndarray | Sequence[np.ndarray], features: Features,
                progress: bool = True) -> Reranked:
        """Search, verify the top K and fuse: the re-ranked answer of each query."""
        sims, idx = self.search(queries)
        return self.decide(sims, idx, self.verify(idx, features, progress))

    def describe(self) -> dict:
        """JSON-able: the configuration, the rule in use and, when tuned, the validation GAPs."""
        return {"config": asdict(self.config), "top": self.top, "w": self.w, "min_inliers": self.min_inliers,
                "tau": self.tau, "val_gap": None if self.tuned is None else self.tuned.val_gap,
                "global_val_gap": self.global_val_gap}

    @classmethod
    def from_json(cls, pipe: KNNPipeline, database: Features, d: dict) -> Reranker:
        """The stage as :meth:`describe` recorded it (the rule fixed, nothing tuned again)."""
        try:
            cfg = RerankConfig(**d["config"])
            rr = cls(pipe, database, cfg)
            rr.w, rr.min_inliers, rr.tau = float(d["w"]), int(d["min_inliers"]), float(d["tau"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtidError(f"not a re-ranking description ({exc})") from None
        return rr
