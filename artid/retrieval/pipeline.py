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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from artid.errors import ArtidError
from artid.metrics.ilr import accuracy, gap, gap_minus
from artid.retrieval.autotune import K_GRID, TAU_GRID, AutotuneResult, autotune
from artid.retrieval.knn import Classified, KNNClassifier
from artid.retrieval.projection import MIN_DIM, Projection, as_parts, supported_dim

log = logging.getLogger(__name__)

WHITEN_MODES = ("none", "pcaw", "auto")
FORMAT = "artid-pipeline/1"


@dataclass
class PipelineConfig:
    """What the pipeline does; None for k and tau means "tune them on validation".

    Attributes:
        whiten: ``none`` (raw descriptors), ``pcaw`` (PCA-whitening to ``dim``, capped at what the
            database supports) or ``auto`` (whichever of raw, PCAw at the supported ``dim`` and
            at half of it scores the best validation GAP).
        dim: requested whitening dimension (the paper's 512).
        shrinkage: whitening shrinkage (1 full whitening, 0 plain PCA).
        k, tau: fixed classifier hyper-parameters, or None to tune both on validation.
        ks, taus: the tuning grid (the thesis' 9 x 12 by default).
        n_classes: N of the softmax (default: the distinct database labels).
        index: ``exact`` (the protocol) or ``ivf`` (approximate faiss IVF-Flat).
        nprobe: IVF cells visited per query.
        use_gpu: search on the GPU; None = when faiss has one.
    """

    whiten: str = "auto"
    dim: int = 512
    shrinkage: float = 1.0
    k: int | None = None
    tau: float | None = None
    ks: tuple[int, ...] = K_GRID
    taus: tuple[float, ...] = TAU_GRID
    n_classes: int | None = None
    index: str = "exact"
    nprobe: int = 32
    use_gpu: bool | None = field(default=None, compare=False)

    def check(self) -> None:
        """Refuse settings that cannot work, naming the setting."""
        if self.whiten not in WHITEN_MODES:
            raise ArtidError(f"whiten must be one of {', '.join(WHITEN_MODES)}, got {self.whiten!r}")
        if self.dim < 1:
            raise ArtidError(f"whitening dimension must be at least 1, got {self.dim}")
        if not 0.0 <= self.shrinkage <= 1.0:
            raise ArtidError(f"whitening shrinkage must be within [0, 1], got {self.shrinkage}")
        if (self.k is None) != (self.tau is None):
            raise ArtidError("give both k and tau, or neither (then they are tuned on the validation queries)")
        if self.k is not None and self.k < 1:
            raise ArtidError(f"k must be at least 1, got {self.k}")
        if self.tau is not None and not self.tau > 0:
            raise ArtidError(f"tau must be a positive temperature, got {self.tau}")
        if any(t <= 0 for t in self.taus) or any(k < 1 for k in self.ks) or not self.ks or not self.taus:
            raise ArtidError("the tuning grid needs k >= 1 and tau > 0 values")
        if self.index not in ("exact", "ivf"):
            raise ArtidError(f"unknown index {self.index!r}: use 'exact' or 'ivf'")

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("use_gpu")
        d["ks"], d["taus"] = list(self.ks), list(self.taus)
        return d


@dataclass
class Candidate:
    """One whitening choice tried by ``auto`` and its validation score."""

    whiten: bool
    dim: int
    val_gap: float | None = None
    k: int | None = None
    tau: float | None = None
    projection: dict = field(default_factory=dict)


def whitening_candidates(config: PipelineConfig, parts: list[np.ndarray]) -> list[Candidate]:
    """The whitening choices to try: the configured one, or for ``auto`` PCAw at the supported
    dimension, at half of it, and raw descriptors."""
    if config.whiten == "none":
        return [Candidate(False, 0)]
    n, width = parts[0].shape[0], min(p.shape[1] for p in parts)
    top = supported_dim(config.dim, n, width)
    if config.whiten == "pcaw":
        return [Candidate(True, top)]
    dims = [top] + ([top // 2] if top // 2 >= MIN_DIM else [])
    return [Candidate(True, d) for d in dims] + [Candidate(False, 0)]


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

    # --- fitting ---------------------------------------------------------------------------------
    def _build(self, db_parts: list[np.ndarray], labels: np.ndarray, cand: Candidate) -> None:
        cfg = self.config
        self.projection = Projection.fit(db_parts, cand.whiten, cand.dim or cfg.dim, cfg.shrinkage)
        db = self.projection.transform(db_parts)
        searcher = None
        if cfg.index == "ivf":
            from artid.retrieval.index import IVFSearcher

            searcher = IVFSearcher(db, nprobe=cfg.nprobe)
        self.classifier = KNNClassifier(db, labels, n_classes=cfg.n_classes, use_gpu=cfg.use_gpu, searcher=searcher)

    def _tune(self, val_parts: list[np.ndarray] | None, val_labels: np.ndarray | None,
              val_keys: np.ndarray | None) -> float | None:
        """Set (k, tau) (tuned or fixed); return the validation GAP at them (None without val)."""
        cfg, clf = self.config, self.classifier
        if cfg.k is not None:
            self.k, self.tau, self.tuned = clf.clamp_k(cfg.k), float(cfg.tau), None
            if val_parts is None:
                return None
            ans = clf.predict(self.projection.transform(val_parts), self.k, self.tau)
            return gap(ans.pred, ans.score, val_labels, val_keys)
        self.tuned = autotune(clf, self.projection.transform(val_parts), val_labels, cfg.ks, cfg.taus,
                              keep_neighbours=True, keys=val_keys)
        self.k, self.tau = self.tuned.best_k, self.tuned.best_tau
        return self.tuned.best_gap

    def fit(
        self,
        db: np.ndarray | Sequence[np.ndarray],
        db_labels: np.ndarray,
        val: np.ndarray | Sequence[np.ndarray] | None = None,
        val_labels: np.ndarray | None = None,
        val_keys: Sequence[str] | np.ndarray | None = None,
    ) -> "KNNPipeline":
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
            cand.k, cand.tau, cand.projection = self.k, self.tau, self.projection.describe()
            if len(candidates) > 1:
                log.info("whitening %s: val GAP %.1f at k=%d tau=%g", cand.projection["dims"] if cand.whiten
                         else "none", 100 * cand.val_gap, cand.k, cand.tau)
            if best is None or (cand.val_gap or 0.0) > (best.val_gap or 0.0):
                best = cand
        self.candidates = candidates
        if best is not candidates[-1]:  # the last one built is in place; rebuild the winner
            self._build(db_parts, db_labels, best)
            self._tune(val_parts, val_labels, val_keys)
        return self

    # --- answering -------------------------------------------------------------------------------
    def _fitted(self) -> KNNClassifier:
        if self.classifier is None or self.projection is None or self.k is None:
            raise ArtidError("the kNN pipeline is not fitted: call fit() or load() first")
        return self.classifier

    def transform(self, x: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Descriptors -> the searched space (whitened, concatenated, L2-normalised)."""
        self._fitted()
        return self.projection.transform(x)

    def neighbours(self, queries: np.ndarray | Sequence[np.ndarray], k: int | None = None,
                   progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(sims, idx) of the k (default: the pipeline's k) nearest database images."""
        clf = self._fitted()
        return clf.search(self.transform(queries), k or self.k, progress=progress)

    def predict(self, queries: np.ndarray | Sequence[np.ndarray], progress: bool = True) -> Classified:
        """Predicted class, log-odds score and confidence of each query."""
        clf = self._fitted()
        sims, idx = self.neighbours(queries, progress=progress)
        return clf.classify(sims, idx, min(self.k, sims.shape[1]), self.tau)

    def top_classes(self, queries: np.ndarray | Sequence[np.ndarray], n: int = 5) -> list[list[tuple[int, float, float]]]:
        """Per query the n best classes ``(class, s_c, softmax probability)``, best first."""
        clf = self._fitted()
        sims, idx = self.neighbours(queries, max(self.k, n), progress=False)
        return clf.top_classes(sims, idx, min(self.k, sims.shape[1]), self.tau, n)

    def score(self, queries: np.ndarray | Sequence[np.ndarray], labels: np.ndarray,
              keys: Sequence[str] | np.ndarray | None = None) -> dict:
        """GAP, GAP- and ACC (fractions) of labelled queries (-1 = distractor)."""
        ans = self.predict(queries, progress=False)
        return {"gap": gap(ans.pred, ans.score, labels, keys), "gap_minus": gap_minus(ans.pred, ans.score, labels, keys),
                "acc": accuracy(ans.pred, ans.score, labels), "k": self.k, "tau": self.tau}

    def describe(self) -> dict:
        """JSON-able: the configuration, what fit chose, and every whitening candidate's val GAP."""
        clf = self._fitted()
        return {"config": self.config.to_json(), "k": self.k, "tau": self.tau, "n_classes": clf.n_classes,
                "database_images": clf.size, "projection": self.projection.describe(),
                "candidates": [asdict(c) for c in self.candidates]}

    # --- persistence -----------------------------------------------------------------------------
    def save(self, folder: str | Path, with_database: bool = True) -> Path:
        """Write the fitted pipeline to a folder (JSON + ``.npy`` / ``.npz``; no pickle).

        Args:
            folder: created if needed.
            with_database: also write the projected database and its labels (what :meth:`load`
                needs); without, only the choices and the whitening (a record of the run).
        """
        clf = self._fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.projection.save(folder)
        if with_database:
            np.save(folder / "database.npy", clf.db)
            np.save(folder / "labels.npy", clf.labels)
        tmp = folder / "pipeline.json.tmp"
        tmp.write_text(json.dumps({"format": FORMAT, **self.describe()}, indent=1), encoding="utf-8")
        os.replace(tmp, folder / "pipeline.json")
        return folder

    @classmethod
    def load(cls, folder: str | Path, use_gpu: bool | None = None, mmap: bool = False) -> "KNNPipeline":
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
        pipe = cls(config)
        pipe.projection = Projection.load(folder)
        try:
            db = np.load(folder / "database.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
            labels = np.load(folder / "labels.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ArtidError(f"{folder}: database of the pipeline cannot be read ({exc})") from None
        pipe.classifier = KNNClassifier(db, labels, n_classes=n_classes, use_gpu=use_gpu)
        pipe.k, pipe.tau = k, tau
        pipe.candidates = [Candidate(**c) for c in meta.get("candidates", [])]
        return pipe
