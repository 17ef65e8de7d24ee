"""Defaults every training method shares (the :class:`~artid.training.config.Method` protocol)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from artid.training.config import EpochContext


class MethodBase:
    """Defaults for the :class:`~artid.training.config.Method` protocol."""

    name = "method"
    head: nn.Module | None = None
    train_backbone = True
    select_prefixes: tuple[str, ...] = ()
    candidate_untrained = True

    def begin_epoch(self, ctx: EpochContext) -> None:
        pass

    def validate(self, model: nn.Module, query_descriptors: np.ndarray | None) -> dict[str, Any]:
        return {}
