"""DNet (thesis 4.4): a cosine classifier over all classes with CE or ArcFace.

CE uses scale 30, ArcFace scale 64 and margin 0.5; the long-tail variants of appendix B.3 are
inverse-frequency weights, class-balanced sampling and classifier re-training on a frozen
backbone. The parametric classifier is validated too and gets its own best epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from artid.errors import ArtidError
from artid.training.config import EpochContext, Gather, local_rows
from artid.training.data import ClassBalancedSampler, ImageDataset, ImageSource, Transform
from artid.training.heads import CosineClassifier
from artid.training.losses import (
    arcface_logits,
    classification_loss,
    inverse_frequency_weights,
    scaled_logits,
)
from artid.training.methods.base import MethodBase
from artid.training.registry import MethodEntry, RunParts, register
from artid.training.sections import one_of, setting
from artid.training.validation import tune_parametric_temperature


@dataclass(frozen=True)
class DNetSettings:
    """DNet: a cosine classifier with CE or ArcFace.

    Attributes:
        loss: ``ce`` or ``arcface``.
        scale: logit scale; None = 30 (CE) / 64 (ArcFace).
        sampling: ``random`` or ``balanced``.
        class_weights: loss weighted by inverse class frequency.
        retrain_classifier: a frozen embedder (classifier re-training).
        margin: ArcFace angular margin.
    """

    loss: str = setting(
        "ce",
        "cross-entropy on scaled cosines, or ArcFace (additive angular margin)",
        choices=("ce", "arcface"),
    )
    scale: float | None = setting(
        None, "logit scale (default 30 for ce, 64 for arcface)", type=float
    )
    sampling: str = setting(
        "random",
        "shuffled images, or class-balanced (a class uniformly, then one of its images)",
        choices=("random", "balanced"),
    )
    class_weights: bool = setting(False, "weight the loss by inverse class frequency")
    retrain_classifier: bool = setting(
        False, "freeze the embedder (--model: a trained checkpoint) and train a fresh classifier"
    )
    margin: float = setting(0.5, "ArcFace angular margin")

    def check(self) -> None:
        one_of("loss", self.loss, ("ce", "arcface"), "DNet loss")
        one_of("sampling", self.sampling, ("random", "balanced"), "sampling")
        if self.scale is not None and self.scale <= 0:
            raise ArtidError(f"--scale must be positive, got {self.scale}")
        if self.margin < 0:
            raise ArtidError(f"--margin must be non-negative, got {self.margin}")


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
    select_prefixes: tuple[str, ...] = (
        "param_",
    )  # the parametric classifier gets its own best epoch (best_param.pt)

    def __init__(
        self,
        source: ImageSource,
        labels: np.ndarray,
        n_classes: int,
        transform: Transform,
        dim: int,
        loss: str = "ce",
        scale: float | None = None,
        margin: float = 0.5,
        batch_size: int = 256,
        sampling: str = "random",
        class_weights: bool = False,
        retrain_classifier: bool = False,
        val_labels: np.ndarray | None = None,
        class_ids: np.ndarray | None = None,
        num_workers: int = 0,
    ) -> None:
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
        self.class_ids = (
            np.arange(n_classes) if class_ids is None else np.asarray(class_ids, dtype=np.int64)
        )
        self.num_workers = num_workers
        self.head = CosineClassifier(dim, n_classes)
        self.weights = (
            inverse_frequency_weights(torch.from_numpy(self.labels), n_classes)
            if class_weights
            else None
        )

    def batches(self, ctx: EpochContext) -> DataLoader:
        ds = ImageDataset(self.source, self.labels, self.transform)
        if self.sampling == "balanced":
            sampler = ClassBalancedSampler(self.labels, generator=ctx.generator)
            return DataLoader(
                ds, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers
            )
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=True,
            generator=ctx.generator,
            num_workers=self.num_workers,
        )

    def logits(self, emb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cos = self.head(emb.float())
        if self.loss_name == "arcface":
            return arcface_logits(cos, y, self.scale, self.margin)
        return scaled_logits(cos, self.scale)

    def loss(self, model: nn.Module, batch: Any, device: torch.device,
             gather: Gather = local_rows) -> tuple[torch.Tensor, int]:
        x, y = batch
        x, y = x.to(device, non_blocking=True), y.to(device)
        if self.train_backbone:
            emb = model(x)
        else:
            with torch.no_grad():
                emb = model(x)
        emb, y = gather(emb), gather(y)  # the (weighted) mean over the global batch
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
        t, fig = tune_parametric_temperature(
            self.class_cosines(query_descriptors), self.val_labels, self.class_ids
        )
        return {
            "param_acc": fig["acc"],
            "param_gap": fig["gap"],
            "param_gap_minus": fig["gap_minus"],
            "param_temperature": t,
        }


def build(parts: RunParts, s: DNetSettings) -> DNet:
    """The method of a run (``--batch-size`` images per batch)."""
    return DNet(
        parts.source,
        parts.labels,
        parts.n_classes,
        parts.augment.single,
        parts.dim,
        loss=s.loss,
        scale=s.scale,
        margin=s.margin,
        batch_size=parts.batch_size,
        sampling=s.sampling,
        class_weights=s.class_weights,
        retrain_classifier=s.retrain_classifier,
        val_labels=parts.val_labels,
        class_ids=parts.class_ids,
        num_workers=parts.workers,
    )


ENTRY = register(
    MethodEntry(
        "dnet",
        DNetSettings,
        build,
        default_batch=256,
        help="cosine classifier with CE or ArcFace (+ long-tail variants)",
    )
)
