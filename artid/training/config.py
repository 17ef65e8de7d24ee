"""What the training loop and a method agree on: the loop's settings, a method's interface, the result.

:class:`~artid.training.trainer.Trainer` runs a :class:`Method` under a :class:`TrainConfig`;
:class:`EpochContext` is what a method sees at the start of an epoch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from artid.errors import ArtidError
from artid.training.schedule import LRSchedule

#: Mixed-precision modes: off, bfloat16 autocast (CPU or CUDA), float16 autocast + grad scaler (CUDA).
AMP_MODES = ("off", "bf16", "fp16")
#: Validation metrics that can pick the best epoch (higher is better).
SELECT_METRICS = ("gap", "acc", "gap_minus")


@dataclass
class TrainConfig:
    """Settings of the loop.

    Attributes:
        out_dir: run folder (checkpoints, trainer state, log).
        epochs: number of epochs.
        lr: backbone (and FC projector) learning rate.
        head_lr: learning rate of the method's head (classifier, SimSiam MLPs).
        weight_decay: Adam weight decay (1e-6 in the paper).
        schedule: shape of the learning-rate schedule (default: x0.1 once, halfway).
        accum_steps: batches whose gradients are summed before one optimiser step.
        amp: mixed precision, one of :data:`AMP_MODES` (``fp16`` needs CUDA).
        seed: base seed of every random choice.
        select_metric: validation metric (of :data:`SELECT_METRICS`) that picks the best epoch;
            a method's extra classifiers (DNet's parametric one) are picked by ``param_`` + it.
    """

    out_dir: Path
    epochs: int
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 1e-6
    schedule: LRSchedule = field(default_factory=LRSchedule)
    accum_steps: int = 1
    amp: str = "off"
    seed: int = 0
    select_metric: str = "gap"

    def check(self) -> None:
        """Raise :class:`ArtidError` naming the option on a setting the loop cannot run."""
        if self.epochs < 1:
            raise ArtidError(f"--epochs must be at least 1, got {self.epochs}")
        if self.accum_steps < 1:
            raise ArtidError(f"--accum-steps must be at least 1, got {self.accum_steps}")
        if self.amp not in AMP_MODES:
            raise ArtidError(f"--amp: unknown mode {self.amp!r}; expected one of {', '.join(AMP_MODES)}")
        if self.select_metric not in SELECT_METRICS:
            raise ArtidError(f"--select: unknown metric {self.select_metric!r}; "
                             f"expected one of {', '.join(SELECT_METRICS)}")
        self.schedule.check(self.epochs)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        return d


@dataclass
class EpochContext:
    """What a method sees at the start of an epoch."""

    epoch: int                       # 1-based
    model: nn.Module
    device: torch.device
    rng: np.random.Generator         # seeded from (seed, epoch)
    generator: torch.Generator       # seeded from (seed, epoch), for samplers


class Method(Protocol):
    """A training method: a small object the loop drives.

    Attributes:
        name: e.g. ``contrastive``, ``simsiam``, ``dnet``.
        head: extra trainable module (trained with ``head_lr``), or None.
        train_backbone: False freezes the embedder (classifier re-training).
        select_prefixes: prefixes of the validation figures of the method's own classifiers
            (``param_`` for DNet): each gets its own best epoch, ``best_<prefix>.pt`` and
            ``best_<prefix>_head.pt``.
    """

    name: str
    train_backbone: bool
    select_prefixes: tuple[str, ...]

    @property
    def head(self) -> nn.Module | None:
        """Extra trainable module, or None (read-only here: a method may narrow its type)."""

    def begin_epoch(self, ctx: EpochContext) -> None:
        """Prepare the epoch (mining, pair lists) with the current weights."""

    def batches(self, ctx: EpochContext) -> Iterable[Any]:
        """The epoch's batches, with a ``len`` (a DataLoader): it sizes the schedule and the progress bar."""

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        """Scalar loss of one batch and the number of images it forwarded."""

    def validate(self, model: nn.Module, query_descriptors: np.ndarray | None) -> dict[str, Any]:
        """Extra validation figures (e.g. the parametric classifier's); may be empty."""


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`: the history of epochs and the best one (0: the untrained model)."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_checkpoint: Path | None = None
