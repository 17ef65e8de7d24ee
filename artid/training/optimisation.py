"""The loop's optimiser, learning-rate schedule and grad scaler, from the optimisation section.

:class:`Optimisation` owns the three torch objects of a run: the optimiser (Adam or SGD with
momentum) over the backbone's and the head's parameter groups (each with its own rate), the
schedule (:mod:`.schedule`, stepped per optimiser step, sized by the first epoch) and the
float16 grad scaler. It saves and restores them for an exact resume; resumed under a changed
section, it takes the new rates and rebuilds the schedule, moved past the steps already done.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from artid.errors import ArtidError
from artid.training.config import optim_json
from artid.training.schedule import build_scheduler, steps_per_epoch
from artid.training.sections import OptimSettings

Scheduler = torch.optim.lr_scheduler.LRScheduler


def parameter_groups(
    model: nn.Module, head: nn.Module | None, optim: OptimSettings
) -> list[dict[str, Any]]:
    """The trainable parameters: the backbone's (at ``lr``) and the head's (at ``head_lr``)."""
    groups = []
    backbone = [p for p in model.parameters() if p.requires_grad]
    if backbone:
        groups.append({"params": backbone, "lr": optim.lr, "name": "backbone"})
    if head is not None:
        groups.append({"params": list(head.parameters()), "lr": optim.head_lr, "name": "head"})
    if not groups:
        raise ArtidError("nothing to train: the backbone is frozen and the method has no head")
    return groups


def build_optimizer(groups: list[dict[str, Any]], optim: OptimSettings) -> torch.optim.Optimizer:
    """Adam, or SGD with momentum, over the parameter groups (each with its own ``lr``)."""
    if optim.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=optim.momentum, weight_decay=optim.weight_decay)
    return torch.optim.Adam(groups, weight_decay=optim.weight_decay)


class Optimisation:
    """Optimiser, schedule and grad scaler of one run.

    Args:
        model: the embedder (its parameters that require a gradient are trained).
        head: the method's head, or None.
        optim: the optimisation section.
        epochs: epochs of the run (sizes the schedule with the first epoch's length).
    """

    def __init__(
        self, model: nn.Module, head: nn.Module | None, optim: OptimSettings, epochs: int
    ) -> None:
        self.optim, self.epochs = optim, epochs
        self.lrs = {g["name"]: g["lr"] for g in parameter_groups(model, head, optim)}
        self.optimizer = build_optimizer(parameter_groups(model, head, optim), optim)
        self.scheduler: Scheduler | None = None
        self.scaler = torch.amp.GradScaler("cuda", enabled=optim.amp == "fp16")
        self._scheduler_state: dict[str, Any] | None = None
        self._steps_done = 0  # optimiser steps a rebuilt schedule is moved past

    def ensure_scheduler(self, n_batches: int | None, what: str) -> Scheduler:
        """The schedule, built on the first epoch from its ``n_batches`` (restored on a resume)."""
        if self.scheduler is None:
            if n_batches is None:
                raise ArtidError(f"{what}: the batches of an epoch must have a length")
            self.scheduler = build_scheduler(
                self.optimizer,
                self.optim.schedule,
                self.epochs,
                steps_per_epoch(n_batches, self.optim.accum_steps),
            )
            if self._scheduler_state is not None:
                self.scheduler.load_state_dict(self._scheduler_state)
            with warnings.catch_warnings():  # stepping without optimiser steps is the point here
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(self._steps_done):
                    self.scheduler.step()
        return self.scheduler

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the gradient of ``loss`` (one of ``accum_steps`` batches)."""
        self.scaler.scale(loss / self.optim.accum_steps).backward()

    def step(self) -> float:
        """One optimiser step and schedule step; returns the rate the step used."""
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        assert self.scheduler is not None
        self.scheduler.step()
        return lr

    def state(self) -> dict[str, Any]:
        """What :meth:`load` restores."""
        return {
            "optim": optim_json(self.optim),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "scaler": self.scaler.state_dict(),
        }

    def load(self, st: dict[str, Any], steps_done: int) -> None:
        """Restore a saved state; under another optimisation section, take the new settings.

        Args:
            st: a state :meth:`state` wrote (``optim`` absent: written by an older artid).
            steps_done: optimiser steps of the saved epochs (where a rebuilt schedule resumes).
        """
        saved, now = st.get("optim"), optim_json(self.optim)
        if saved is None or saved.get("optimizer") == now["optimizer"]:
            self.optimizer.load_state_dict(st["optimizer"])  # else: a fresh optimiser's state
        self.scaler.load_state_dict(st["scaler"])
        if saved == now:
            self._scheduler_state = st["scheduler"] or None
            return
        for group in self.optimizer.param_groups:
            group["lr"] = self.lrs.get(group.get("name"), group["lr"])
            group["weight_decay"] = self.optim.weight_decay
            group.pop("initial_lr", None)
            if "momentum" in group:
                group["momentum"] = self.optim.momentum
        self._steps_done = steps_done
