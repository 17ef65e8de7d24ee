"""Contrastive training (thesis 4.4.2): Siamese contrastive loss on mined pairs.

Every epoch each database image is the anchor of one positive pair (from a
:mod:`positive strategy <artid.training.positives>`) and one hard-negative pair (mined with the
current model, :mod:`artid.training.mining`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from artid.errors import ArtidError
from artid.training.config import EpochContext, Gather, local_rows
from artid.training.data import ImageSource, PairDataset, Transform
from artid.training.losses import contrastive_loss
from artid.training.methods.base import MethodBase
from artid.training.mining import class_members, closest_positives, hard_negatives
from artid.training.positives import STRATEGIES, SYNTHETIC, PositiveStrategy
from artid.training.registry import MethodEntry, RunParts, register
from artid.training.sections import one_of, positive, setting
from artid.training.validation import EmbeddingCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContrastiveSettings:
    """Contrastive loss on mined pairs.

    Attributes:
        positives: positive strategy (:data:`~artid.training.positives.STRATEGIES`).
        margin: contrastive margin on the descriptor distance.
        negative_pool: hard negatives are drawn from this many nearest other-class images.
    """

    positives: str = setting("con-syn", "how positives are chosen", choices=tuple(STRATEGIES))
    margin: float = setting(1.8, "contrastive margin on the descriptor distance")
    negative_pool: int = setting(10, "negatives drawn from this many nearest")

    def check(self) -> None:
        one_of("positives", self.positives, STRATEGIES, "positive strategy")
        if self.margin < 0:
            raise ArtidError(f"--margin must be non-negative, got {self.margin}")
        positive(self, "negative_pool")


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

    def __init__(
        self,
        source: ImageSource,
        labels: np.ndarray,
        strategy: PositiveStrategy,
        transform: Transform,
        database: EmbeddingCache,
        pairs_per_batch: int = 64,
        margin: float = 1.8,
        negative_pool: int = 10,
        num_workers: int = 0,
        other_transform: Transform | None = None,
    ) -> None:
        self.source, self.labels = source, np.asarray(labels, dtype=np.int64)
        self.strategy, self.transform, self.database = strategy, transform, database
        self.other_transform = other_transform
        self.pairs_per_batch, self.margin, self.negative_pool = (
            pairs_per_batch,
            margin,
            negative_pool,
        )
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
        return np.concatenate(
            [
                np.stack([anchors, pos, np.ones(n, np.int64)], axis=1),
                np.stack([anchors, neg, np.zeros(n, np.int64)], axis=1),
            ]
        )

    def begin_epoch(self, ctx: EpochContext) -> None:
        t0 = time.perf_counter()
        desc = self.database.get(ctx.model)
        self.pairs = self.make_pairs(desc, ctx.rng)
        self.last_mining_s = time.perf_counter() - t0
        n_syn = int((self.pairs[: self.labels.size, 1] == SYNTHETIC).sum())
        log.info(
            "epoch %d: %d pairs (%d synthetic positives), mined in %.1fs",
            ctx.epoch,
            len(self.pairs),
            n_syn,
            self.last_mining_s,
        )

    def batches(self, ctx: EpochContext) -> DataLoader:
        return DataLoader(
            PairDataset(self.source, self.pairs, self.transform, self.other_transform),
            batch_size=self.pairs_per_batch,
            shuffle=True,
            generator=ctx.generator,
            num_workers=self.num_workers,
        )

    def loss(self, model: nn.Module, batch: Any, device: torch.device,
             gather: Gather = local_rows) -> tuple[torch.Tensor, int]:
        xa, xb, y = batch
        emb = model(torch.cat([xa, xb]).to(device, non_blocking=True)).float()
        a, b = emb.split(xa.shape[0])
        loss = contrastive_loss(gather(a), gather(b), gather(y.to(device)), self.margin)
        return loss, 2 * xa.shape[0]


def build(parts: RunParts, s: ContrastiveSettings) -> Contrastive:
    """The method of a run (``--batch-size`` pairs per batch)."""
    return Contrastive(
        parts.source,
        parts.labels,
        STRATEGIES[s.positives](),
        parts.augment.anchor,
        parts.database,
        pairs_per_batch=parts.batch_size,
        margin=s.margin,
        negative_pool=s.negative_pool,
        num_workers=parts.workers,
        other_transform=parts.augment.other,
    )


ENTRY = register(
    MethodEntry(
        "contrastive",
        ContrastiveSettings,
        build,
        default_batch=64,
        help="Siamese contrastive loss, hard negatives mined every epoch, a positive strategy",
    )
)
