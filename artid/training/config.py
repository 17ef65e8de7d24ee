"""What the loop and a method agree on: the loop's settings, a method's interface, the result.

:class:`~artid.training.trainer.Trainer` runs a :class:`Method` under a :class:`TrainConfig`;
:class:`EpochContext` is what a method sees at the start of an epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from artid.training.sections import AMP_MODES, PRESETS, SELECT_METRICS, OptimSettings

__all__ = ["AMP_MODES", "SELECT_METRICS", "EpochContext", "Gather", "Method", "OptimSettings",
           "TrainConfig", "TrainResult", "local_rows", "optim_json"]

#: rows of one process -> the rows of the global batch (all processes', in rank order), with
#: their gradient (:meth:`artid.training.distributed.Distributed.gather`).
Gather = Callable[[torch.Tensor], torch.Tensor]


def local_rows(t: torch.Tensor) -> torch.Tensor:
    """The :data:`Gather` of one process: its rows are the global batch."""
    return t


class TrainConfig:
    """Settings of the loop: the run folder, the optimisation section as it is, what is kept.

    ``TrainConfig(out, optim)`` takes an :class:`~artid.training.sections.OptimSettings`;
    ``TrainConfig(out, epochs=3, lr=1e-2)`` is a shorthand that builds one from its fields.
    Settings a preset governs and left None (``lr``, ``select``) get the ``artid`` preset's.

    Attributes:
        out_dir: run folder (checkpoints, trainer state, log).
        optim: optimisation and schedule (epochs, learning rates, optimiser, schedule,
            accumulation, mixed precision, seed, selection metric).
        keep_epochs: keep every epoch's checkpoint (``epoch_NNN.pt``); False keeps only the
            last one (``last.pt``) besides the best.
    """

    def __init__(self, out_dir: Path, optim: OptimSettings | None = None, *,
                 keep_epochs: bool = True, **optim_values: Any) -> None:
        if optim is not None and optim_values:
            raise TypeError("TrainConfig: give the optimisation section or its fields, not both")
        optim = optim if optim is not None else OptimSettings(**optim_values)
        self.out_dir = Path(out_dir)
        self.optim = optim.resolved(PRESETS["artid"])
        self.keep_epochs = keep_epochs

    @property
    def epochs(self) -> int:
        """Epochs of training."""
        assert self.optim.epochs is not None  # check() refuses None
        return self.optim.epochs

    def check(self) -> None:
        """Raise :class:`ArtidError` naming the option on a setting the loop cannot run."""
        self.optim.check()

    def to_json(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "optim": optim_json(self.optim),
                "keep_epochs": self.keep_epochs}

    def __repr__(self) -> str:
        return f"TrainConfig({self.out_dir!s}, {self.optim!r}, keep_epochs={self.keep_epochs})"


def optim_json(optim: OptimSettings) -> dict[str, Any]:
    """The optimisation section as JSON values (milestones as a list)."""
    d = asdict(optim)
    if d["lr_milestones"] is not None:
        d["lr_milestones"] = list(d["lr_milestones"])
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
        candidate_untrained: the untrained model is validated and is a candidate for the best
            epoch (False where it is meaningless, e.g. a randomly initialised output layer).
    """

    name: str
    train_backbone: bool
    select_prefixes: tuple[str, ...]
    candidate_untrained: bool

    @property
    def head(self) -> nn.Module | None:
        """Extra trainable module, or None (read-only here: a method may narrow its type)."""

    def begin_epoch(self, ctx: EpochContext) -> None:
        """Prepare the epoch (mining, pair lists) with the current weights."""

    def batches(self, ctx: EpochContext) -> Iterable[Any]:
        """The epoch's batches, with a ``len`` (a DataLoader): it sizes the schedule and the bar."""

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        """Scalar loss of one batch and the number of images it forwarded.

        A method that trains data-parallel (:mod:`artid.training.distributed`) takes a keyword
        ``gather`` (:data:`Gather`, default :func:`local_rows`): its batch is then this process's
        share of the global batch, and its loss is over the global one: ``gather`` (with
        gradient) of every per-row tensor the loss combines (embeddings, labels).
        """

    def validate(self, model: nn.Module, query_descriptors: np.ndarray | None) -> dict[str, Any]:
        """Extra validation figures (e.g. the parametric classifier's); may be empty."""


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`.

    Attributes:
        history: one record per epoch (0: the untrained model's validation).
        best_epoch: the epoch of ``best.pt`` (0: the untrained model).
        best_checkpoint: path of ``best.pt``.
        changes: settings changed on a resume that was allowed to continue with them
            (``--resume-changed``): ``{"after_epoch": e, "changed": {option: [old, new]}}``.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_checkpoint: Path | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
