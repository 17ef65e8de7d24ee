"""SimSiam (thesis 4.4.2): two augmented views, projector and predictor MLPs, stop-gradient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from artid.training.config import EpochContext, Gather, local_rows
from artid.training.data import ImageSource, Transform, TwoViewDataset
from artid.training.heads import simsiam_predictor, simsiam_projector
from artid.training.losses import simsiam_loss
from artid.training.methods.base import MethodBase
from artid.training.registry import MethodEntry, RunParts, register


@dataclass(frozen=True)
class SimSiamSettings:
    """SimSiam has no settings of its own."""

    def check(self) -> None:
        pass


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

    def __init__(
        self,
        source: ImageSource,
        transform: Transform,
        dim: int,
        images_per_batch: int = 64,
        num_workers: int = 0,
        other_transform: Transform | None = None,
    ) -> None:
        self.source, self.transform, self.other_transform = source, transform, other_transform
        self.images_per_batch, self.num_workers = images_per_batch, num_workers
        self.head = nn.ModuleDict(
            {"projector": simsiam_projector(dim), "predictor": simsiam_predictor(dim)}
        )

    def batches(self, ctx: EpochContext) -> DataLoader:
        # the MLPs' BatchNorm needs 2+ samples: drop a trailing batch of one image
        drop_last = len(self.source) % self.images_per_batch == 1
        return DataLoader(
            TwoViewDataset(self.source, self.transform, self.other_transform),
            batch_size=self.images_per_batch,
            shuffle=True,
            generator=ctx.generator,
            num_workers=self.num_workers,
            drop_last=drop_last,
        )

    def loss(self, model: nn.Module, batch: Any, device: torch.device,
             gather: Gather = local_rows) -> tuple[torch.Tensor, int]:
        x1, x2 = batch
        f1, f2 = model(torch.cat([x1, x2]).to(device, non_blocking=True)).split(x1.shape[0])
        f1, f2 = gather(f1), gather(f2)  # the MLPs (their BatchNorm) see the global batch
        z = self.head["projector"](torch.cat([f1, f2]))
        p = self.head["predictor"](z)
        z1, z2 = z.float().split(f1.shape[0])
        p1, p2 = p.float().split(f1.shape[0])
        return simsiam_loss(p1, p2, z1, z2), 2 * x1.shape[0]


def build(parts: RunParts, s: SimSiamSettings) -> SimSiam:
    """The method of a run (``--batch-size`` images per batch, two views each)."""
    return SimSiam(
        parts.source,
        parts.augment.anchor,
        parts.dim,
        images_per_batch=parts.batch_size,
        num_workers=parts.workers,
        other_transform=parts.augment.other,
    )


ENTRY = register(
    MethodEntry(
        "simsiam",
        SimSiamSettings,
        build,
        default_batch=64,
        help="SimSiam: two views, projector/predictor MLPs",
    )
)
