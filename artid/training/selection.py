"""Model selection: the epoch with the best validation figure, kept as ``best.pt`` (+ its head).

The untrained model (epoch 0, validated before training) is a candidate like any epoch and
wins ties, so a run whose training did not help hands back the model it started from and
says so, never a worse one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from artid.files import atomic_path, copy_file


@dataclass
class Selection:
    """One rule: the epoch with the highest ``metric`` is kept as ``model_file`` (+ ``head_file``).

    Attributes:
        metric: key of the epoch record (e.g. ``gap``, ``param_gap``); records without it
            fall back to the negated training loss when ``loss_fallback`` (no validation).
        model_file: file name of the best checkpoint in the run folder.
        head_file: file name of the best epoch's head state, or None.
        loss_fallback: use ``-loss`` when the record has no ``metric``.
    """

    metric: str
    model_file: str
    head_file: str | None
    loss_fallback: bool = False
    best_value: float = -float("inf")
    best_epoch: int | None = None

    def value(self, record: dict[str, Any]) -> float | None:
        v = record.get(self.metric)
        if v is None and self.loss_fallback and "loss" in record:
            v = -record["loss"]
        return None if v is None else float(v)

    def offer(self, out_dir: Path, epoch: int, record: dict[str, Any], checkpoint: Path,
              head: nn.Module | None) -> bool:
        """Keep ``checkpoint`` (and ``head``) when the record beats the best so far (atomically);
        return whether it did."""
        v = self.value(record)
        if v is None or not v > self.best_value:
            return False
        self.best_value, self.best_epoch = v, epoch
        copy_file(checkpoint, out_dir / self.model_file)
        if self.head_file is not None and head is not None:
            with atomic_path(out_dir / self.head_file) as tmp:
                torch.save(head.state_dict(), tmp)
        return True

    def state(self) -> dict[str, Any]:
        return {"metric": self.metric, "best_value": self.best_value, "best_epoch": self.best_epoch}

    def load(self, state: dict[str, Any]) -> None:
        self.best_value = float(state["best_value"])
        self.best_epoch = None if state["best_epoch"] is None else int(state["best_epoch"])
