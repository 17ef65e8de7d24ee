"""The training methods of the thesis (section 4.4) as small objects the one loop drives.

- :class:`Contrastive`: Siamese contrastive loss; every epoch each database image is the
  anchor of one positive pair (from a :mod:`positive strategy <artid.training.positives>`)
  and one hard-negative pair (mined with the current model).
- :class:`SimSiam`: two augmentations, projector and predictor MLPs, stop-gradient.
- :class:`DNet`: cosine classifier over all classes with CE (scale 30) or ArcFace
  (scale 64, margin 0.5); the long-tail variants of appendix B.3 (inverse-frequency
  weights, class-balanced sampling, classifier re-training on a frozen backbone).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from artid.training.config import EpochContext
from artid.training.data import ClassBalancedSampler, ImageDataset, ImageSource, PairDataset, Transform, TwoViewDataset
from artid.training.heads import CosineClassifier, simsiam_predictor, simsiam_projector
from artid.training.losses import (
    arcface_logits,
    classification_loss,
    contrastive_loss,
    inverse_frequency_weights,
    scaled_logits,
    simsiam_loss,
)
from artid.training.mining import class_members, closest_positives, hard_negatives
from artid.training.positives import SYNTHETIC, PositiveStrategy
from artid.training.validation import EmbeddingCache, tune_temperature

log = logging.getLogger(__name__)


class MethodBase:
    """Defaults for the :class:`~artid.training.trainer.Method` protocol."""

    name = "method"
    head: nn.Module | None = None
    train_backbone = True
    select_prefixes: tuple[str, ...] = ()

    def begin_epoch(self, ctx: EpochContext) -> None:
        pass

    def validate(self, model: nn.Module, query_descriptors: np.ndarray | None) -> dict[str, Any]:
        return {}


class Contrastive(MethodBase):
    """Contrastive loss with mined hard negatives and a positive strategy.

    Args:
        source: database images.
        labels: (N,) class indices.
        strategy: how positives are chosen.
        transform: training augmentation of the anchors.
        database: cache of the database descriptors under the current weights (for mining).
        pairs_per_batch: 64 in the paper (128 images).
        margin: 1.8 in the paper.
        negative_pool: hard negatives come from this many nearest images of other classes (10).
        num_workers: loader workers.
        other_transform: augmentation of the other image of every pair (default ``transform``;
            in-situ positives put it in a synthetic gallery).
    """

    name = "contrastive"

    def __init__(self, source: ImageSource, labels: np.ndarray, strategy: PositiveStrategy, transform: Transform,
                 database: EmbeddingCache, pairs_per_batch: int = 64, margin: float = 1.8,
                 negative_pool: int = 10, num_workers: int = 0, other_transform: Transform | None = None) -> None:
        self.source, self.labels = source, np.asarray(labels, dtype=np.int64)
        self.strategy, self.transform, self.database = strategy, transform, database
        self.other_transform = other_transform
        self.pairs_per_batch, self.margin, self.negative_pool = pairs_per_batch, margin, negative_pool
        self.num_workers = num_workers
        self.members = class_members(self.labels)
        self.pairs = np.zeros((0, 3), dtype=np.int64)
        self.last_mining_s = 0.0

    def make_pairs(self, desc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(2N, 3) rows (anchor, other, same): one positive and one hard negative per anchor.

        Args:
            desc: (N, D) current database descriptors.
            rng: the epoch's generator.
        """
        n = self.labels.size
        neg = hard_negatives(desc, self.labels, rng, k=self.negative_pool)
        closest = closest_positives(desc, self.labels) if self.strategy.needs_closest else None
        pos = self.strategy.pick(self.members, rng, closest)
        anchors = np.arange(n, dtype=np.int64)
        return np.concatenate([np.stack([anchors, pos, np.ones(n, np.int64)], axis=1),
                               np.stack([anchors, neg, np.zeros(n, np.int64)], axis=1)])

    def begin_epoch(self, ctx: EpochContext) -> None:
        import time
        t0 = time.perf_counter()
        desc = self.database.get(ctx.model)
        self.pairs = self.make_pairs(desc, ctx.rng)
        self.last_mining_s = time.perf_counter() - t0
        n_syn = int((self.pairs[: self.labels.size, 1] == SYNTHETIC).sum())
        log.info("epoch %d: %d pairs (%d synthetic positives), mined in %.1fs",
                 ctx.epoch, len(self.pairs), n_syn, self.last_mining_s)

    def batches(self, ctx: EpochContext) -> DataLoader:
        return DataLoader(PairDataset(self.source, self.pairs, self.transform, self.other_transform),
                          batch_size=self.pairs_per_batch,
                          shuffle=True, generator=ctx.generator, num_workers=self.num_workers)

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        xa, xb, y = batch
        emb = model(torch.cat([xa, xb]).to(device, non_blocking=True)).float()
        a, b = emb.split(xa.shape[0])
        return contrastive_loss(a, b, y.to(device), self.margin), 2 * xa.shape[0]


class SimSiam(MethodBase):
    """SimSiam on the embedder (thesis 4.4.2): 64 images x 2 augmentations per batch in the paper.

    Args:
        source: database images (labels unused).
        transform: training augmentation.
        dim: embedding size D (the MLPs are D -> D).
        images_per_batch: 64 in the paper.
        num_workers: loader workers.
        other_transform: augmentation of the second view (default ``transform``).
    """

    name = "simsiam"
    head: nn.ModuleDict

    def __init__(self, source: ImageSource, transform: Transform, dim: int, images_per_batch: int = 64,
                 num_workers: int = 0, other_transform: Transform | None = None) -> None:
        self.source, self.transform, self.other_transform = source, transform, other_transform
        self.images_per_batch, self.num_workers = images_per_batch, num_workers
        self.head = nn.ModuleDict({"projector": simsiam_projector(dim), "predictor": simsiam_predictor(dim)})

    def batches(self, ctx: EpochContext) -> DataLoader:
        # the MLPs' BatchNorm needs 2+ samples: drop a trailing batch of one image
        drop_last = len(self.source) % self.images_per_batch == 1
        return DataLoader(TwoViewDataset(self.source, self.transform, self.other_transform),
                          batch_size=self.images_per_batch,
                          shuffle=True, generator=ctx.generator, num_workers=self.num_workers, drop_last=drop_last)

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        x1, x2 = batch
        f = model(torch.cat([x1, x2]).to(device, non_blocking=True))
        z = self.head["projector"](f)
        p = self.head["predictor"](z)
        z1, z2 = z.float().split(x1.shape[0])
        p1, p2 = p.float().split(x1.shape[0])
        return simsiam_loss(p1, p2, z1, z2), 2 * x1.shape[0]


class DNet(MethodBase):
    """Deep-network classifier: embedder -> cosine classifier over all N classes.

    Args:
        source: database images.
        labels: (N,) class indices in [0, n_classes).
        n_classes: C.
        transform: training augmentation.
        dim: embedding size D.
        loss: ``ce`` (logits x scale, 30) or ``arcface`` (scale 64, margin 0.5).
        scale: gamma; None = 30 for CE, 64 for ArcFace.
        margin: ArcFace margin (radians).
        batch_size: 256 in the paper.
        sampling: ``random`` (shuffle) or ``balanced`` (class-balanced).
        class_weights: weight the loss by inverse class frequency.
        retrain_classifier: freeze the embedder and train a fresh classifier only.
        val_labels: (Q,) class ids of the validation queries (-1 distractors), for the
            parametric figures; None skips them.
        class_ids: (C,) class id of each class index (to compare predictions with ``val_labels``);
            default: the indices themselves.
        num_workers: loader workers.
    """

    name = "dnet"
    head: CosineClassifier
    select_prefixes: tuple[str, ...] = ("param_",)  # the parametric classifier gets its own best epoch (best_param.pt)

    def __init__(self, source: ImageSource, labels: np.ndarray, n_classes: int, transform: Transform, dim: int,
                 loss: str = "ce", scale: float | None = None, margin: float = 0.5, batch_size: int = 256,
                 sampling: str = "random", class_weights: bool = False, retrain_classifier: bool = False,
                 val_labels: np.ndarray | None = None, class_ids: np.ndarray | None = None,
                 num_workers: int = 0) -> None:
        if loss not in ("ce", "arcface"):
            raise ValueError(f"unknown DNet loss {loss!r}")
        if sampling not in ("random", "balanced"):
            raise ValueError(f"unknown sampling {sampling!r}")
        self.source, self.labels = source, np.asarray(labels, dtype=np.int64)
        self.transform, self.loss_name = transform, loss
        self.scale = scale if scale is not None else (64.0 if loss == "arcface" else 30.0)
        self.margin, self.batch_size, self.sampling = margin, batch_size, sampling
        self.train_backbone = not retrain_classifier
        self.val_labels = val_labels
        self.class_ids = np.arange(n_classes) if class_ids is None else np.asarray(class_ids, dtype=np.int64)
        self.num_workers = num_workers
        self.head = CosineClassifier(dim, n_classes)
        self.weights = (inverse_frequency_weights(torch.from_numpy(self.labels), n_classes)
                        if class_weights else None)

    def batches(self, ctx: EpochContext) -> DataLoader:
        ds = ImageDataset(self.source, self.labels, self.transform)
        if self.sampling == "balanced":
            sampler = ClassBalancedSampler(self.labels, generator=ctx.generator)
            return DataLoader(ds, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=True, generator=ctx.generator,
                          num_workers=self.num_workers)

    def logits(self, emb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cos = self.head(emb.float())
        if self.loss_name == "arcface":
            return arcface_logits(cos, y, self.scale, self.margin)
        return scaled_logits(cos, self.scale)

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        x, y = batch
        x, y = x.to(device, non_blocking=True), y.to(device)
        if self.train_backbone:
            emb = model(x)
        else:
            with torch.no_grad():
                emb = model(x)
        w = self.weights.to(device) if self.weights is not None else None
        return classification_loss(self.logits(emb, y), y, w), x.shape[0]

    @torch.no_grad()
    def class_cosines(self, desc: np.ndarray) -> np.ndarray:
        """(Q, D) descriptors -> (Q, C) cosines with the class prototypes."""
        w = self.head.weight
        return self.head(torch.from_numpy(desc).to(w.device, w.dtype)).float().cpu().numpy()

    def validate(self, model: nn.Module, query_descriptors: np.ndarray | None) -> dict[str, Any]:
        if query_descriptors is None or self.val_labels is None:
            return {}
        t, fig = tune_temperature(self.class_cosines(query_descriptors), self.val_labels, self.class_ids)
        return {"param_acc": fig["acc"], "param_gap": fig["gap"], "param_gap_minus": fig["gap_minus"],
                "param_temperature": t}
