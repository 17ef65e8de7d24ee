"""The re-ranking stage: spatial verification of the global top K, fused into the kNN answer.

After the pipeline's kNN search (:class:`artid.retrieval.pipeline.KNNPipeline`), :class:`Reranker`
verifies each query's first ``top`` (K) database images with local features and a MAGSAC homography
(:func:`artid.retrieval.verification.verify`) and fuses the inlier counts into the class scores by
the rule of :func:`artid.retrieval.fusion.fuse`. The pipeline owns the stage: it searches, asks the
stage to verify and decide, and saves the stage's rule with everything else. Without validation
queries the rule's defaults apply: ``w`` = :data:`DEFAULT_W`, ``min_inliers`` =
:data:`DEFAULT_MIN_INLIERS` (what validation chose at K = 50 on the default synthetic benchmark,
``benchmarks/rerank.py``) and the pipeline's own tau.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from artid.errors import ArtidError
from artid.extraction.local import DEFAULT_KEYPOINTS, DEFAULT_SIZE
from artid.metrics.ilr import gap
from artid.retrieval.fusion import (
    DEFAULT_CAP,
    MIN_INLIERS_GRID,
    W_GRID,
    FusionChoice,
    choose_fusion,
    fuse,
    verified_inliers,
)
from artid.retrieval.knn import Classified, KNNClassifier
from artid.retrieval.verification import Features, VerifyTiming, verify

#: The fusion rule without validation queries: what validation chose at K = 50 on the demo
#: benchmark (multi-scale descriptors, PCAw; ``benchmarks/rerank.py``).
DEFAULT_W = 0.5
DEFAULT_MIN_INLIERS = 8
#: The default number of verified neighbours.
DEFAULT_TOP = 50


@dataclass
class RerankConfig:
    """What the re-ranking stage does; None for ``w`` / ``min_inliers`` / ``tau``: tune on
    validation.

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
            raise ArtidError(
                "min_inliers must be at least 4 (a homography needs 4 points), "
                f"got {self.min_inliers}"
            )
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
    """

    classified: Classified
    inliers: np.ndarray
    counts: np.ndarray


class Reranker:
    """The stage's settings, its fusion rule in use, and the database rows' local features.

    Args:
        config: K, the rule's fixed or open settings, the SIFT settings.
        database: database row -> its local features.
        tau: the tau of the fused log-odds when the configuration leaves it open (the kNN tau).
    """

    def __init__(self, config: RerankConfig, database: Features, tau: float) -> None:
        config.check()
        self.config, self.database = config, database
        self.w = DEFAULT_W if config.w is None else float(config.w)
        self.min_inliers = (
            DEFAULT_MIN_INLIERS if config.min_inliers is None else int(config.min_inliers)
        )
        self.tau = float(tau) if config.tau is None else float(config.tau)
        self.tuned: FusionChoice | None = None
        #: every rule compared on validation, the default first, with its val GAP and z
        self.tried: list[FusionChoice] = []
        self.global_val_gap: float | None = None
        self.ms_per_query: float | None = None

    @property
    def top(self) -> int:
        """K."""
        return self.config.top

    @property
    def floor(self) -> int:
        """The fewest inliers a count must reach to matter: the rule's ``min_inliers`` once it
        is fixed or tuned, else the smallest of the tuning grid (counts below read 0)."""
        if self.config.min_inliers is not None or self.tuned is not None:
            return self.min_inliers
        return min(self.min_inliers, *MIN_INLIERS_GRID)

    def verify(
        self,
        idx: np.ndarray,
        features: Features,
        progress: bool = False,
        timing: VerifyTiming | None = None,
    ) -> np.ndarray:
        """(Q, K) inlier counts between each query (``features(q)``) and its first K neighbours
        (those below :attr:`floor` read 0: the fused answer is the same)."""
        counts, self.ms_per_query = verify(
            idx, features, self.database, self.top, progress, self.floor, timing
        )
        return counts

    def decide(
        self, sims: np.ndarray, idx: np.ndarray, counts: np.ndarray, clf: KNNClassifier, k: int
    ) -> Reranked:
        """Fuse inlier counts into the kNN answer of neighbours ``(sims, idx)`` (the rule
        in use)."""
        k = min(k, sims.shape[1])
        ans = fuse(
            sims,
            idx,
            clf.labels,
            counts,
            k,
            self.tau,
            clf.n_classes,
            self.w,
            self.min_inliers,
            self.config.cap,
        )
        inliers = verified_inliers(idx, clf.labels, counts, ans.pred, self.min_inliers)
        return Reranked(ans, inliers, counts)

    def fit(
        self,
        sims: np.ndarray,
        idx: np.ndarray,
        counts: np.ndarray,
        clf: KNNClassifier,
        k: int,
        global_tau: float,
        taus: Sequence[float],
        labels: np.ndarray,
        keys: np.ndarray | None = None,
    ) -> Reranker:
        """Choose what the configuration leaves open of (w, min_inliers, tau) on validation: the
        default (:data:`DEFAULT_W`, :data:`DEFAULT_MIN_INLIERS`, or the configured values) unless
        another (w, min_inliers) beats its val GAP by the margin
        (:func:`artid.retrieval.fusion.choose_fusion`; tau: the best for each).

        Args:
            sims, idx, counts: the validation queries' neighbours and their inlier counts.
            clf, k, global_tau: the kNN classifier and its k and tau (the global answer's).
            taus: the tau grid (the kNN tuning grid).
            labels, keys: the validation classes (-1: distractor) and ranking tie-break keys.
        """
        k = min(k, sims.shape[1])
        glob = clf.classify(sims, idx, k, global_tau)
        self.global_val_gap = gap(glob.pred, glob.score, labels, keys)
        cfg = self.config
        default = (
            DEFAULT_W if cfg.w is None else cfg.w,
            DEFAULT_MIN_INLIERS if cfg.min_inliers is None else cfg.min_inliers,
        )
        self.tuned, self.tried = choose_fusion(
            sims,
            idx,
            clf.labels,
            counts,
            labels,
            k,
            clf.n_classes,
            taus if cfg.tau is None else (cfg.tau,),
            default,
            keys,
            W_GRID if cfg.w is None else (cfg.w,),
            MIN_INLIERS_GRID if cfg.min_inliers is None else (cfg.min_inliers,),
            cfg.cap,
        )
        self.w, self.min_inliers, self.tau = self.tuned.w, self.tuned.min_inliers, self.tuned.tau
        return self

    def summary(self) -> dict[str, Any]:
        """JSON-able: the configuration, the rule in use and, when tuned, the validation GAPs."""
        return {
            "config": asdict(self.config),
            "top": self.top,
            "w": self.w,
            "min_inliers": self.min_inliers,
            "tau": self.tau,
            "val_gap": None if self.tuned is None else self.tuned.val_gap,
            "global_val_gap": self.global_val_gap,
            "tried": [asdict(c) for c in self.tried],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], database: Features) -> Reranker:
        """The stage as :meth:`summary` recorded it (the rule fixed, nothing tuned again)."""
        try:
            rr = cls(RerankConfig(**d["config"]), database, float(d["tau"]))
            rr.w, rr.min_inliers = float(d["w"]), int(d["min_inliers"])
            rr.global_val_gap = d.get("global_val_gap")
            if d.get("val_gap") is not None:
                rr.tuned = FusionChoice(rr.w, rr.min_inliers, rr.tau, float(d["val_gap"]))
            rr.tried = [FusionChoice(**c) for c in d.get("tried", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtidError(f"not a re-ranking description ({exc})") from None
        return rr
