"""Seed 003's classical baseline: SIFT -> k-means vocabulary -> bag-of-words -> RBF SVM one-vs-rest.

- :class:`Vocabulary`: visual words by scikit-learn's ``MiniBatchKMeans`` on a sample of training
  descriptors (seed 003: 500, 1,000 or 2,500 words); an image becomes the L1-normalised histogram
  of its descriptors' nearest words (all zeros when SIFT finds no keypoint).
- :class:`BowSvm`: vocabulary + one RBF ``SVC`` per label (``OneVsRestClassifier``), C and gamma
  chosen by ``GridSearchCV`` (seed 003's grid: C in {0.1, 1, 10}, gamma in {scale, auto}) by
  k-fold cross-validation on the training images. Multi-label (``y`` an (N, L) 0/1 matrix): the
  folds are scored by micro average precision, and :meth:`BowSvm.decision_scores` gives (N, L)
  decision values for the threshold search (:mod:`artid.metrics.thresholds`). Multi-class (``y``
  (N,) class ids): folds are scored by top-1 accuracy; columns follow ``classes``.

Saved as ``bow_svm.npz`` (vocabulary and SVM arrays, read with ``allow_pickle=False``) plus
``bow_svm.json`` (settings, classes, the grid's results): no pickle (see :mod:`.rbf_ovr`).
Kernel SVMs cost O(N^2) in training images: this is a baseline for thousands of images, not iMet's
100k.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import average_precision_score
from sklearn.metrics.pairwise import pairwise_distances_argmin
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import SVC

from artid.attributes.arrays import load_npz
from artid.attributes.rbf_ovr import RbfOvr
from artid.attributes.sift import (
    DEFAULT_KEYPOINTS,
    DEFAULT_SIZE,
    SIFT_DIM,
    ImageLike,
    sift_of_images,
)
from artid.errors import ArtidError
from artid.files import atomic_path, write_text

FORMAT_VERSION = 1
#: Seed 003's grid.
DEFAULT_GRID: dict[str, list] = {"C": [0.1, 1.0, 10.0], "gamma": ["scale", "auto"]}


class Vocabulary:
    """Visual words: (V, 128) k-means centres of SIFT descriptors."""

    def __init__(self, centers: np.ndarray) -> None:
        self.centers = np.asarray(centers, dtype=np.float32)
        if self.centers.ndim != 2 or self.centers.shape[1] != SIFT_DIM or len(self.centers) == 0:
            raise ArtidError(
                f"vocabulary centres must be (V, {SIFT_DIM}); got {self.centers.shape}"
            )

    @property
    def size(self) -> int:
        return len(self.centers)

    @classmethod
    def fit(
        cls,
        descriptor_sets: Sequence[np.ndarray],
        size: int = 500,
        max_descriptors: int = 100_000,
        seed: int = 0,
    ) -> Vocabulary:
        """k-means (MiniBatchKMeans) on at most ``max_descriptors`` descriptors drawn at random."""
        pool = [d for d in descriptor_sets if len(d)]
        if not pool:
            raise ArtidError("no SIFT keypoint in any training image: cannot build a vocabulary")
        desc = np.concatenate(pool).astype(np.float32)
        rng = np.random.default_rng(seed)
        if len(desc) > max_descriptors:
            desc = desc[rng.choice(len(desc), max_descriptors, replace=False)]
        if len(desc) < size:
            raise ArtidError(
                f"a vocabulary of {size} words needs at least {size} descriptors; "
                "the training images "
                f"have {len(desc)}: use a smaller vocabulary or more images"
            )
        km = MiniBatchKMeans(
            n_clusters=size, batch_size=max(1024, 2 * size), n_init=3, random_state=seed
        )
        km.fit(desc)
        return cls(km.cluster_centers_)

    def histograms(self, descriptor_sets: Sequence[np.ndarray]) -> np.ndarray:
        """(N, V) float64 L1-normalised word counts; a row of zeros for an image
        without descriptors."""
        n, size = len(descriptor_sets), self.size
        lengths = np.array([len(d) for d in descriptor_sets], dtype=np.int64)
        if lengths.sum() == 0:
            return np.zeros((n, size), dtype=np.float64)
        # One nearest-word search for all images (per-image calls cost more in overhead than in
        # work).
        desc = np.concatenate(
            [np.asarray(d, dtype=np.float32).reshape(-1, SIFT_DIM) for d in descriptor_sets]
        )
        words = pairwise_distances_argmin(desc, self.centers)
        owner = np.repeat(np.arange(n), lengths)
        counts = np.bincount(owner * size + words, minlength=n * size).reshape(n, size)
        return counts / np.maximum(lengths, 1)[:, None]


def _micro_ap(estimator: OneVsRestClassifier, x: np.ndarray, y: np.ndarray) -> float:
    """Grid-search score of multi-label folds: average precision of all (image, label) pairs."""
    y = np.asarray(y)
    return (
        float(average_precision_score(y.ravel(), estimator.decision_function(x).ravel()))
        if y.any()
        else 0.0
    )


def _top1(estimator: OneVsRestClassifier, x: np.ndarray, y: np.ndarray) -> float:
    """Grid-search score of multi-class folds (one-hot ``y``): accuracy of the highest
    decision value."""
    return float(np.mean(np.argmax(estimator.decision_function(x), axis=1) == np.argmax(y, axis=1)))


class BowSvm:
    """SIFT bag-of-words + RBF SVM one-vs-rest, C and gamma by grid search (module docstring).

    Args:
        vocabulary_size: number of visual words.
        grid: ``{"C": [...], "gamma": [...]}`` searched by ``GridSearchCV``.
        cv: folds of the grid search (shuffled, seeded).
        max_keypoints / max_size: SIFT settings (:func:`artid.attributes.sift.sift_descriptors`).
        seed: seeds k-means and the folds.
        n_jobs: parallel fits of the grid search (None: one).
    """

    def __init__(
        self,
        vocabulary_size: int = 500,
        grid: dict[str, list] | None = None,
        cv: int = 3,
        max_keypoints: int = DEFAULT_KEYPOINTS,
        max_size: int | None = DEFAULT_SIZE,
        seed: int = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.settings: dict[str, Any] = {
            "vocabulary_size": int(vocabulary_size),
            "grid": dict(grid or DEFAULT_GRID),
            "cv": int(cv),
            "max_keypoints": int(max_keypoints),
            "max_size": max_size,
            "seed": int(seed),
        }
        self.n_jobs = n_jobs
        self.vocabulary: Vocabulary | None = None
        self.svm: RbfOvr | None = None
        self.multilabel = True
        self.classes: list = []
        self.search: dict = {}

    def descriptors(self, images: Sequence[ImageLike], progress: bool = False) -> list[np.ndarray]:
        """SIFT descriptors of each image, with this model's settings."""
        return sift_of_images(
            images, self.settings["max_keypoints"], self.settings["max_size"], progress
        )

    def histograms(self, images: Sequence[ImageLike], progress: bool = False) -> np.ndarray:
        """(N, V) bag-of-words histograms of images (needs a fitted vocabulary)."""
        if self.vocabulary is None:
            raise ArtidError("BowSvm: fit the model (or load one) first")
        return self.vocabulary.histograms(self.descriptors(images, progress))

    def fit(self, images: Sequence[ImageLike], y: np.ndarray, progress: bool = False) -> BowSvm:
        """Vocabulary on the images' SIFT descriptors, then :meth:`fit_histograms`."""
        if len(images) != len(y):
            raise ArtidError(f"{len(images)} images but {len(y)} label rows")
        desc = self.descriptors(images, progress)
        self.vocabulary = Vocabulary.fit(
            desc, self.settings["vocabulary_size"], seed=self.settings["seed"]
        )
        return self.fit_histograms(self.vocabulary.histograms(desc), y)

    def fit_histograms(self, x: np.ndarray, y: np.ndarray) -> BowSvm:
        """Grid search and fit of the one-vs-rest SVM on (N, V) histograms and labels ``y``."""
        y = np.asarray(y)
        if y.ndim == 1:
            self.multilabel = False
            classes, codes = np.unique(y, return_inverse=True)
            self.classes = classes.tolist()
            target = np.eye(len(self.classes), dtype=np.int64)[codes]
        elif y.ndim == 2 and np.isin(y, (0, 1)).all():
            self.multilabel, self.classes, target = (
                True,
                list(range(y.shape[1])),
                y.astype(np.int64),
            )
        else:
            raise ArtidError(
                f"labels must be (N,) class ids or an (N, L) 0/1 matrix; got shape {y.shape}"
            )
        if len(x) != len(target) or len(x) < self.settings["cv"]:
            raise ArtidError(
                f"{len(x)} histograms for {len(target)} label rows; "
                f"need at least {self.settings['cv']}"
            )
        grid = {f"estimator__{k}": list(v) for k, v in self.settings["grid"].items()}
        search = GridSearchCV(
            OneVsRestClassifier(SVC(kernel="rbf")),
            grid,
            scoring=_micro_ap if self.multilabel else _top1,
            cv=KFold(self.settings["cv"], shuffle=True, random_state=self.settings["seed"]),
            n_jobs=self.n_jobs,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="Label .* is present in all training examples"
            )
            search.fit(x, target)
        self.svm = RbfOvr.from_sklearn(search.best_estimator_, x)
        self.search = {
            "best_params": {
                k.removeprefix("estimator__"): v for k, v in search.best_params_.items()
            },
            "best_score": float(search.best_score_),
            "scoring": "micro average precision" if self.multilabel else "top-1 accuracy",
            "results": [
                {**{k.removeprefix("estimator__"): v for k, v in p.items()}, "score": float(s)}
                for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])
            ],
        }
        return self

    def decision_scores(self, images: Sequence[ImageLike], progress: bool = False) -> np.ndarray:
        """(N, L) SVM decision values (columns: labels, or ``classes`` for multi-class)."""
        return self.scores_from_histograms(self.histograms(images, progress))

    def scores_from_histograms(self, x: np.ndarray) -> np.ndarray:
        """(N, L) decision values of precomputed histograms."""
        if self.svm is None:
            raise ArtidError("BowSvm: fit the model (or load one) first")
        return self.svm.decision_function(x)

    def save(self, folder: str | Path) -> Path:
        """Write ``bow_svm.npz`` and ``bow_svm.json`` into ``folder``; returns the folder."""
        if self.svm is None or self.vocabulary is None:
            raise ArtidError("BowSvm: nothing to save before fit")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = self.svm.arrays()
        with atomic_path(folder / "bow_svm.npz") as tmp:
            np.savez(tmp, vocabulary=self.vocabulary.centers, **arrays)
        meta = {
            "format": "artid-bow-svm",
            "version": FORMAT_VERSION,
            "settings": self.settings,
            "multilabel": self.multilabel,
            "classes": self.classes,
            "search": self.search,
        }
        write_text(folder / "bow_svm.json", json.dumps(meta, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> BowSvm:
        """Read a model written by :meth:`save` (no pickle: plain arrays and JSON)."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "bow_svm.json").read_text())
        except (OSError, ValueError) as exc:
            raise ArtidError(f"{folder}: not a saved BowSvm model ({exc})") from None
        kind = (meta.get("format"), meta.get("version")) if isinstance(meta, dict) else None
        if kind != ("artid-bow-svm", FORMAT_VERSION):
            raise ArtidError(
                f"{folder / 'bow_svm.json'}: not a BowSvm model of format version {FORMAT_VERSION}"
            )
        try:
            s = meta["settings"]
            model = cls(
                s["vocabulary_size"],
                s["grid"],
                s["cv"],
                s["max_keypoints"],
                s["max_size"],
                s["seed"],
            )
            model.multilabel, model.classes = bool(meta["multilabel"]), list(meta["classes"])
            model.search = meta["search"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtidError(f"{folder / 'bow_svm.json'}: missing or bad field ({exc})") from None
        arrays = load_npz(folder / "bow_svm.npz")
        if "vocabulary" not in arrays:
            raise ArtidError(f"{folder / 'bow_svm.npz'}: no vocabulary")
        model.vocabulary = Vocabulary(arrays["vocabulary"])
        model.svm = RbfOvr.from_arrays(arrays, source=folder / "bow_svm.npz")
        if len(model.classes) != len(model.svm.intercept):
            raise ArtidError(
                f"{folder}: {len(model.classes)} classes but {len(model.svm.intercept)} SVMs"
            )
        return model
