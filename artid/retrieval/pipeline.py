"""The one kNN pipeline: projection (whitening) -> kNN classifier -> (k, tau) tuned on validation.

Evaluation, the recognition service and training validation all use :class:`KNNPipeline`::

    pipe = KNNPipeline(PipelineConfig(whiten="auto")).fit(db, db_labels, val, val_labels, val_keys)
    answer = pipe.predict(test)              # Classified(pred, score, conf)
    pipe.save(folder); KNNPipeline.load(folder)

``fit`` chooses, on the validation queries, what the configuration leaves open: the whitening
(``auto``: raw descriptors or PCA-whitening at a supported dimension, by validation GAP) and
(k, tau) (grid search by GAP, one search per whitening candidate). Queries are ranked by the
top class's log-odds with ties broken by key (the query path), so nothing depends on the
order of the input files.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from artid.errors import ArtidError
from artid.metrics.ilr import accuracy, gap, gap_minus
from artid.retrieval.autotune import AutotuneResult, autotune
from artid.retrieval.config import WHITEN_MODES, Candidate, PipelineConfig, whitening_candidates
from artid.retrieval.expansion import Expansion, tune_expansion
from artid.retrieval.knn import Classified, KNNClassifier
from artid.retrieval.projection import Projection, as_parts

__all__ = ["WHITEN_MODES", "Candidate", "KNNPipeline", "PipelineConfig"]

log = logging.getLogger(__name__)

FORMAT = "artid-pipeline/1"


class KNNPipeline:
    """Whitening + kNN classifier + (k, tau): fit on the database and validation, then answer queries."""

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config or PipelineConfig()
        self.config.check()
        self.projection: Projection | None = None
        self.classifier: KNNClassifier | None = None
        self.k: int | None = None
        self.tau: float | None = None
        self.tuned: AutotuneResult | None = None
        self.candidates: list[Candidate] = []
        cfg = self.config  # fixed QE / DBA apply throughout; open ones (None) are tuned after the whitening
        self.expansion = Expansion(cfg.qe_n or 0, cfg.qe_alpha, cfg.dba_n or 0, cfg.dba_alpha)
        self.expansion_grid: list[dict] = []

    # --- fitting ---------------------------------------------------------------------------------
    def _build(self, db_parts: list[np.ndarray], labels: np.ndarray, cand: Candidate) -> None:
        cfg = self.config
        self.projection = Projection.fit(db_parts, cand.whiten, cand.dim or cfg.dim, cfg.shrinkage)
        db = self.expansion.augment(self.projection.transform(db_parts), cfg.use_gpu)
        searcher = None
        if cfg.index == "ivf":
            from artid.retrieval.index import IVFSearcher

            searcher = IVFSearcher(db, nprobe=cfg.nprobe)
        self.classifier = KNNClassifier(db, labels, n_classes=cfg.n_classes, use_gpu=cfg.use_gpu, searcher=searcher)

    def _tune(self, val_parts: list[np.ndarray] | None, val_labels: np.ndarray | None,
              val_keys: np.ndarray | None) -> float | None:
        """Set (k, tau) (tuned or fixed); return the validation GAP at them (None without val)."""
        cfg, clf, projection = self.config, self.classifier, self.projection
        assert clf is not None and projection is not None, "_build() first"
        if cfg.k is not None:
            assert cfg.tau is not None  # PipelineConfig.check: both or neither
            self.k, self.tau, self.tuned = clf.clamp_k(cfg.k), float(cfg.tau), None
            if val_parts is None:
                return None
            assert val_labels is not None
            ans = clf.predict(self.expansion.expand(projection.transform(val_parts), clf), self.k, self.tau)
            return gap(ans.pred, ans.score, val_labels, val_keys)
        assert val_parts is not None and val_labels is not None  # fit() refuses to tune without them
        val = self.expansion.expand(projection.transform(val_parts), clf)
        self.tuned = autotune(clf, val, val_labels, cfg.ks, cfg.taus, keep_neighbours=True, keys=val_keys)
        self.k, self.tau = self.tuned.best_k, self.tuned.best_tau
        return self.tuned.best_gap

    def fit(
        self,
        db: np.ndarray | Sequence[np.ndarray],
        db_labels: np.ndarray,
        val: np.ndarray | Sequence[np.ndarray] | None = None,
        val_labels: np.ndarray | None = None,
        val_keys: Sequence[str] | np.ndarray | None = None,
    ) -> KNNPipeline:
        """Fit the whitening and the classifier on the database; choose what is open on validation.

        Args:
            db: (N, D) database descriptors, or one matrix per part (concatenation).
            db_labels: (N,) class of each database image.
            val, val_labels: validation descriptors (same parts) and their classes (-1 for a
                distractor); needed to tune (k, tau) and for ``whiten="auto"``.
            val_keys: (Q,) tie-break keys of the validation ranking (the query paths).
        """
        db_parts = as_parts(db)
        db_labels = np.asarray(db_labels, dtype=np.int64)
        val_parts = None if val is None else as_parts(val)
        if val_parts is not None:
            val_labels = np.asarray(val_labels)
            if val_labels.shape != (val_parts[0].shape[0],):
                raise ArtidError(f"{val_parts[0].shape[0]} validation queries but labels of shape {val_labels.shape}")
        val_keys = None if val_keys is None else np.asarray(val_keys)
        if self.config.k is None and val_parts is None:
            raise ArtidError("tuning k and tau needs validation queries (or give fixed k and tau)")
        candidates = whitening_candidates(self.config, db_parts)
        if len(candidates) > 1 and val_parts is None:
            log.warning("whiten=auto without validation queries: using PCA-whitening to %d", candidates[0].dim)
            candidates = candidates[:1]
        best: Candidate | None = None
        for cand in candidates:
            self._build(db_parts, db_labels, cand)
            cand.val_gap = self._tune(val_parts, val_labels, val_keys)
            assert self.projection is not None
            cand.k, cand.tau, cand.projection = self.k, self.tau, self.projection.describe()
            if len(candidates) > 1:
                assert cand.val_gap is not None  # several candidates only with validation queries
                log.info("whitening %s: val GAP %.1f at k=%d tau=%g", cand.projection["dims"] if cand.whiten
                         else "none", 100 * cand.val_gap, cand.k, cand.tau)
            if best is None or (cand.val_gap or 0.0) > (best.val_gap or 0.0):
                best = cand
        self.candidates = candidates
        assert best is not None
        if best is not candidates[-1]:  # the last one built is in place; rebuild the winner
            self._build(db_parts, db_labels, best)
            self._tune(val_parts, val_labels, val_keys)
        if self.config.qe_n is None or self.config.dba_n is None:
            if val_parts is None:
                raise ArtidError("tuning qe_n / dba_n needs validation queries (or give fixed values)")
            assert val_labels is not None
            self.expansion_grid = tune_expansion(self, db_parts, db_labels, best, val_parts, val_labels, val_keys)
        return self

    # --- answering -------------------------------------------------------------------------------
    def _fitted(self) -> tuple[KNNClassifier, Projection, int, float]:
        """The classifier, projection, k and tau of a fitted pipeline."""
        if self.classifier is None or self.projection is None or self.k is None or self.tau is None:
            raise ArtidError("the kNN pipeline is not fitted: call fit() or load() first")
        return self.classifier, self.projection, self.k, self.tau

    def transform(self, x: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Descriptors -> the searched space (whitened, concatenated, L2-normalised)."""
        _, projection, _, _ = self._fitted()
        return projection.transform(x)

    def neighbours(self, queries: np.ndarray | Sequence[np.ndarray], k: int | None = None,
                   progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(sims, idx) of the k (default: the pipeline's k) nearest database images."""
        clf, _, own_k, _ = self._fitted()
        return clf.search(self.expansion.expand(self.transform(queries), clf), k or own_k, progress=progress)

    def predict(self, queries: np.ndarray | Sequence[np.ndarray], progress: bool = True) -> Classified:
        """Predicted class, log-odds score and confidence of each query."""
        clf, _, k, tau = self._fitted()
        sims, idx = self.neighbours(queries, progress=progress)
        return clf.classify(sims, idx, min(k, sims.shape[1]), tau)

    def top_classes(self, queries: np.ndarray | Sequence[np.ndarray],
                    n: int = 5) -> list[list[tuple[int, float, float]]]:
        """Per query the n best classes ``(class, s_c, softmax probability)``, best first."""
        clf, _, k, tau = self._fitted()
        sims, idx = self.neighbours(queries, max(k, n), progress=False)
        return clf.top_classes(sims, idx, min(k, sims.shape[1]), tau, n)

    def answer(self, queries: np.ndarray | Sequence[np.ndarray], n_top: int = 5,
               list_neighbours: int = 20) -> tuple[Classified, list[list[tuple[int, float, float]]]]:
        """The decision and a list of candidates from one search (what a recognition service shows).

        The decision (class, log-odds, confidence) uses the pipeline's k; the candidates are the
        ``n_top`` best classes among the ``max(k, list_neighbours)`` nearest images, with their
        softmax share at the same tau.
        """
        clf, _, k, tau = self._fitted()
        many = min(max(k, list_neighbours), clf.size)
        sims, idx = self.neighbours(queries, many, progress=False)
        decision = clf.classify(sims, idx, min(k, sims.shape[1]), tau)
        return decision, clf.top_classes(sims, idx, many, tau, n_top)

    def use(self, k: int, tau: float) -> None:
        """Serve with this (k, tau) instead of the tuned one (e.g. a tie-break of the service's own)."""
        clf, _, _, _ = self._fitted()
        if not tau > 0:
            raise ArtidError(f"tau must be a positive temperature, got {tau}")
        self.k, self.tau = clf.clamp_k(int(k)), float(tau)

    def score(self, queries: np.ndarray | Sequence[np.ndarray], labels: np.ndarray,
              keys: Sequence[str] | np.ndarray | None = None) -> dict:
        """GAP, GAP- and ACC (fractions) of labelled queries (-1 = distractor)."""
        ans = self.predict(queries, progress=False)
        return {"gap": gap(ans.pred, ans.score, labels, keys),
                "gap_minus": gap_minus(ans.pred, ans.score, labels, keys),
                "acc": accuracy(ans.pred, ans.score, labels), "k": self.k, "tau": self.tau}

    def describe(self) -> dict:
        """JSON-able: the configuration, what fit chose, and every whitening candidate's val GAP."""
        clf, projection, _, _ = self._fitted()
        return {"config": self.config.to_json(), "k": self.k, "tau": self.tau, "n_classes": clf.n_classes,
                "database_images": clf.size, "projection": projection.describe(),
                "candidates": [asdict(c) for c in self.candidates], "expansion": self.expansion.to_json(),
                "expansion_grid": self.expansion_grid}

    # --- persistence -----------------------------------------------------------------------------
    def save(self, folder: str | Path, with_database: bool = True) -> Path:
        """Write the fitted pipeline to a folder (JSON + ``.npy`` / ``.npz``; no pickle).

        Args:
            folder: created if needed.
            with_database: also write the projected database and its labels (what :meth:`load`
                needs); without, only the choices and the whitening (a record of the run).
        """
        clf, projection, _, _ = self._fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        projection.save(folder)
        if with_database:
            np.save(folder / "database.npy", clf.db)
            np.save(folder / "labels.npy", clf.labels)
        tmp = folder / "pipeline.json.tmp"
        tmp.write_text(json.dumps({"format": FORMAT, **self.describe()}, indent=1), encoding="utf-8")
        os.replace(tmp, folder / "pipeline.json")
        return folder

    @classmethod
    def load(cls, folder: str | Path, use_gpu: bool | None = None, mmap: bool = False) -> KNNPipeline:
        """Read a pipeline written by :meth:`save`."""
        folder = Path(folder)
        path = folder / "pipeline.json"
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
            cfg = dict(meta["config"])
            cfg["ks"], cfg["taus"] = tuple(cfg["ks"]), tuple(cfg["taus"])
            config = PipelineConfig(**cfg, use_gpu=use_gpu)
            k, tau, n_classes = int(meta["k"]), float(meta["tau"]), int(meta["n_classes"])
        except FileNotFoundError:
            raise ArtidError(f"{path} not found: not a saved artid pipeline") from None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ArtidError(f"{path}: not an artid pipeline file ({exc})") from None
        try:
            db = np.load(folder / "database.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
            labels = np.load(folder / "labels.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ArtidError(f"{folder}: database of the pipeline cannot be read ({exc})") from None
        pipe = cls.from_parts(Projection.load(folder), db, labels, k, tau, n_classes, config)
        pipe.candidates = [Candidate(**c) for c in meta.get("candidates", [])]
        pipe.expansion = Expansion.from_json(meta.get("expansion"))  # the saved database is already augmented
        pipe.expansion_grid = list(meta.get("expansion_grid", []))
        return pipe

    @classmethod
    def from_parts(cls, projection: Projection, db: np.ndarray, labels: np.ndarray, k: int, tau: float,
                   n_classes: int | None = None, config: PipelineConfig | None = None) -> KNNPipeline:
        """A fitted pipeline from stored pieces: projection, projected database, labels, k and tau."""
        config = config or PipelineConfig(k=int(k), tau=float(tau))
        pipe = cls(config)
        pipe.projection = projection
        if db.ndim != 2 or db.shape[1] != projection.out_dim:
            raise ArtidError(f"the stored database has shape {db.shape} but the projection gives "
                             f"{projection.out_dim}-d descriptors")
        pipe.classifier = KNNClassifier(db, labels, n_classes=n_classes, use_gpu=config.use_gpu)
        pipe.k, pipe.tau = 1, 1.0
        pipe.use(k, tau)
        return pipe
