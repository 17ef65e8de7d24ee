"""Embedding image sets with the current model, per-epoch validation, the DNet parametric
classifier.

Validation follows the paper (thesis 5.1): single-scale descriptors without whitening,
the kNN classifier of the database against the validation queries, (k, tau) tuned on
their GAP; the best epoch is the one with the best validation GAP, the untrained model included
(see :mod:`artid.training.selection`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from artid.extraction.embedding import embed_arrays
from artid.training.augment import eval_transform
from artid.training.data import ImageDataset, ImageSource, collate_list

log = logging.getLogger(__name__)

#: Temperatures tried for the parametric classifier's softmax (tuned on validation GAP).
TEMPERATURE_GRID: tuple[float, ...] = (1, 2, 5, 10, 15, 20, 30, 50, 64, 100, 200, 500)


def embed_images(
    model: nn.Module,
    source: ImageSource,
    device: torch.device,
    batch_size: int = 32,
    num_workers: int = 0,
    desc: str = "embedding",
    multiscale: bool = False,
) -> np.ndarray:
    """Descriptors of every image of a source with the model in eval mode (its mode restored).

    Images keep their own size (aspect ratio kept): a data loader reads them (``eval_transform``:
    the pixels extraction decodes, in [0, 1]) and :func:`artid.extraction.embedding.embed_arrays`
    batches images of equal size for the forward pass. The model's weights and statistics are not
    changed.

    Args:
        model: an embedder, ``model(x)`` -> (B, D) L2-normalised (and ``embed_multiscale``
            when ``multiscale``).
        source: the images.
        device: where the model lives.
        batch_size: images per loader batch and per forward pass.
        num_workers: loader worker processes.
        desc: progress-bar label.
        multiscale: use ``model.embed_multiscale`` (its own scales: 1, 2^-1/2, 1/2).

    Returns:
        (N, D) float32 with L2-normalised rows, in source order.
    """
    was_training = model.training
    model.eval()
    ds = ImageDataset(source, np.zeros(len(source), dtype=np.int64), eval_transform())
    # its own generator: embedding never draws from the global RNG the training batches use
    loader = DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_list,
        generator=torch.Generator().manual_seed(0),
    )
    images = (x for batch in loader for x, _ in batch)
    try:
        with tqdm(
            total=len(ds), desc=desc, unit="img", leave=False, disable=len(loader) < 2
        ) as bar:
            return embed_arrays(
                model,
                images,
                scales=None if multiscale else (1.0,),
                batch_size=batch_size,
                device=device,
                dtype=torch.float32,
                on_batch=bar.update,
            )
    finally:
        model.train(was_training)


class EmbeddingCache:
    """Descriptors of one image set under the current weights, computed once until invalidated.

    The trainer invalidates it after every optimiser step of an epoch, so the validation at
    the end of epoch e and the mining at the start of epoch e+1 share one pass.
    """

    def __init__(
        self, source: ImageSource, embed: Callable[[nn.Module, ImageSource], np.ndarray]
    ) -> None:
        self.source, self._embed = source, embed
        self._desc: np.ndarray | None = None

    def get(self, model: nn.Module) -> np.ndarray:
        if self._desc is None:
            self._desc = self._embed(model, self.source)
        return self._desc

    def invalidate(self) -> None:
        self._desc = None


class KNNValidator:
    """kNN accuracy and GAP of validation queries against the database (single scale, no whitening).

    Args:
        database: cache of the database descriptors.
        db_labels: (N,) int64 class index of each database image.
        queries: the validation query images.
        query_labels: (Q,) int64 class indices, -1 for distractors.
        embed: (model, source) -> (Q, D) descriptors.
        n_classes: classes of the softmax (all database classes).
        query_keys: (Q,) tie-break keys of the GAP ranking (the query paths); None = input order.
    """

    def __init__(
        self,
        database: EmbeddingCache,
        db_labels: np.ndarray,
        queries: ImageSource,
        query_labels: np.ndarray,
        embed: Callable[[nn.Module, ImageSource], np.ndarray],
        n_classes: int | None = None,
        query_keys: np.ndarray | None = None,
    ) -> None:
        self.database, self.db_labels = database, np.asarray(db_labels, dtype=np.int64)
        self.queries, self.query_labels = queries, np.asarray(query_labels, dtype=np.int64)
        self.query_keys = None if query_keys is None else np.asarray(query_keys)
        self._embed, self.n_classes = embed, n_classes
        self.last_query_descriptors: np.ndarray | None = None

    def __call__(self, model: nn.Module) -> dict[str, Any]:
        from artid.retrieval.pipeline import KNNPipeline, PipelineConfig

        db = self.database.get(model)
        q = self._embed(model, self.queries)
        self.last_query_descriptors = q
        config = PipelineConfig(whiten="none", n_classes=self.n_classes, use_gpu=False)
        res = (
            KNNPipeline(config).fit(db, self.db_labels, q, self.query_labels, self.query_keys).tuned
        )
        assert res is not None  # k and tau are left to tune: fit always tunes them
        i, j = res.ks.index(res.best_k), res.taus.index(res.best_tau)
        return {
            "acc": res.acc,
            "gap": res.best_gap,
            "gap_minus": float(res.gap_minus[i, j]),
            "k": res.best_k,
            "tau": res.best_tau,
        }


def parametric_predict(cos: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """DNet inference: argmax class and the log-odds of its softmax probability of
    ``temperature * cos``.

    The log-odds ``z_top - logsumexp(z_others)`` rank queries as the probability does, without
    saturating at 1.0 (see :mod:`artid.retrieval.knn`); ``sigmoid`` of it is the probability.

    Args:
        cos: (Q, C) cosine-classifier outputs.
        temperature: softmax scale.

    Returns:
        pred (Q,) int64 class indices, score (Q,) float64 log-odds.
    """
    z = temperature * np.asarray(cos, dtype=np.float64)
    pred = z.argmax(axis=1)
    rows = np.arange(len(z))
    top = z[rows, pred]
    others = z.copy()
    others[rows, pred] = -np.inf
    with np.errstate(divide="ignore"):
        rest = np.logaddexp.reduce(others, axis=1) if z.shape[1] > 1 else np.full(len(z), -np.inf)
    return pred.astype(np.int64), top - rest


def tune_parametric_temperature(
    cos: np.ndarray,
    labels: np.ndarray,
    class_ids: np.ndarray | None = None,
    grid: tuple[float, ...] = TEMPERATURE_GRID,
) -> tuple[float, dict[str, float]]:
    """The softmax temperature of the DNet parametric classifier with the best validation GAP.

    A grid search (:func:`artid.tuning.grid_search`: the first best temperature wins ties).

    Args:
        cos: (Q, C) cosine-classifier outputs of the validation queries.
        labels: (Q,) class ids, -1 for distractors.
        class_ids: (C,) class id of each column of ``cos`` (default: the column index).
        grid: temperatures tried.

    Returns:
        (best temperature, {"gap", "gap_minus", "acc"} at it).
    """
    from artid.metrics.ilr import accuracy, gap, gap_minus
    from artid.tuning import grid_search

    def answers(t: float) -> tuple[np.ndarray, np.ndarray]:
        pred, conf = parametric_predict(cos, t)
        return (pred if class_ids is None else class_ids[pred]), conf

    best = grid_search(grid, lambda t: gap(*answers(t), labels)).best
    pred, conf = answers(best)
    return best, {
        "gap": gap(pred, conf, labels),
        "gap_minus": gap_minus(pred, conf, labels),
        "acc": accuracy(pred, conf, labels),
    }


@torch.no_grad()
def init_projector_from_whitening(
    model: nn.Module,
    database: ImageSource,
    embed: Callable[[nn.Module, ImageSource], np.ndarray],
    dim: int | None = None,
) -> int:
    """Initialise the embedder's FC projector with PCA-whitening of the starting descriptors.

    The projector is first set to the identity (so the model outputs the plain pooled
    descriptor), the database is embedded, whitening is fitted and the projector set to
    ``weight = P^T, bias = -m P`` (thesis 4.4.1). The projector is D -> D as in the paper
    unless the database is too small for D whitened dimensions (covariance rank r < D):
    then it is D -> r (``PCAWhitening`` clamps and says so).

    Args:
        model: an embedder (a projector is created when it has none).
        database: the training images.
        embed: (model, source) -> (N, D) descriptors.
        dim: output dimension (default D).

    Returns:
        The projector's output dimension.
    """
    from artid.models.embedder import Embedder
    from artid.retrieval.whitening import PCAWhitening

    emb = cast(Embedder, model)
    d = int(getattr(emb, "num_features", emb.dim))
    emb.set_projector_from_whitening(np.zeros(d, np.float32), np.eye(d, dtype=np.float32))
    desc = embed(model, database)
    w = PCAWhitening(dim=dim or d, shrinkage=1.0).fit(desc)
    assert w.mean is not None and w.projection is not None
    emb.set_projector_from_whitening(w.mean, w.projection)
    out = int(w.projection.shape[1])
    log.info(
        "projector initialised from PCA-whitening of %d database descriptors (%d -> %d)",
        desc.shape[0],
        d,
        out,
    )
    return out
