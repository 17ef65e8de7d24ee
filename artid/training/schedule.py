"""Learning-rate schedules of the training loop: torch's schedulers, stepped per optimiser step.

- ``step`` (default): the rate is multiplied by ``gamma`` (0.1) once at each milestone, given in
  epochs (fractions allowed); without milestones, once at the middle of training (thesis 5.1:
  "decreased by a factor of 10 in the middle of the training") —
  :class:`~torch.optim.lr_scheduler.MultiStepLR`.
- ``cosine``: cosine annealing from the base rate to 0 over the training —
  :class:`~torch.optim.lr_scheduler.CosineAnnealingLR`.
- ``constant``: no change.

Any of them can start with a linear warm-up of ``warmup_steps`` optimiser steps
(:class:`~torch.optim.lr_scheduler.LinearLR` chained by
:class:`~torch.optim.lr_scheduler.SequentialLR`).
Milestones and the cosine period count optimiser steps, so gradient accumulation and the
epoch length only change how epochs map to steps, never the shape of the schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    SequentialLR,
)

from artid.errors import ArtidError

SCHEDULES = ("step", "cosine", "constant")


@dataclass(frozen=True)
class LRSchedule:
    """Shape of the learning-rate schedule.

    Attributes:
        kind: ``step``, ``cosine`` or ``constant``.
        milestones: epochs (fractions allowed) after which ``step`` multiplies the rate by
            ``gamma``; None = one drop at half of the epochs.
        gamma: factor of each drop (0.1 in the paper).
        warmup_steps: optimiser steps of linear warm-up from ``1 / (warmup_steps + 1)`` of the rate.
    """

    kind: str = "step"
    milestones: tuple[float, ...] | None = None
    gamma: float = 0.1
    warmup_steps: int = 0

    def check(self, epochs: int) -> None:
        """Raise :class:`ArtidError` naming the option when the schedule cannot apply to
        ``epochs``."""
        if self.kind not in SCHEDULES:
            raise ArtidError(
                f"--lr-schedule: unknown schedule {self.kind!r}; "
                f"expected one of {', '.join(SCHEDULES)}"
            )
        if self.warmup_steps < 0:
            raise ArtidError(f"--warmup-steps must be non-negative, got {self.warmup_steps}")
        if not 0 < self.gamma <= 1:
            raise ArtidError(f"--lr-gamma: the lr drop factor must be in (0, 1], got {self.gamma}")
        for m in self.milestones or ():
            if not 0 < m < epochs:
                raise ArtidError(
                    f"--lr-milestones: {m:g} is not inside the {epochs} epochs of training"
                )


def parse_milestones(text: str | None) -> tuple[float, ...] | None:
    """``"5,8"`` -> (5.0, 8.0); None or ``""`` -> None (one drop halfway)."""
    if not text:
        return None
    try:
        values = tuple(sorted(float(v) for v in text.split(",") if v.strip()))
    except ValueError:
        raise ArtidError(
            f"--lr-milestones: expected comma-separated epochs such as 5,8, got {text!r}"
        ) from None
    return values or None


def milestone_steps(schedule: LRSchedule, epochs: int, steps_per_epoch: int) -> list[int]:
    """Optimiser steps after which ``step`` drops the rate (counted from the start of training)."""
    epochs_at = schedule.milestones if schedule.milestones is not None else (epochs / 2,)
    return sorted({max(1, round(m * steps_per_epoch)) for m in epochs_at})


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: LRSchedule, epochs: int, steps_per_epoch: int
) -> LRScheduler:
    """The scheduler of a run; call its ``step()`` after every optimiser step.

    Args:
        optimizer: the optimiser (every parameter group follows the same factor).
        schedule: the schedule's shape.
        epochs: epochs of the run.
        steps_per_epoch: optimiser steps per epoch (batches / accumulation steps, rounded up).

    Returns:
        A torch scheduler whose ``state_dict`` makes a resumed run continue exactly.
    """
    schedule.check(epochs)
    if steps_per_epoch < 1:
        raise ArtidError("an epoch has no optimiser step: the training set is empty")
    total = epochs * steps_per_epoch
    warm = min(schedule.warmup_steps, total - 1)
    main: LRScheduler
    if schedule.kind == "step":
        main = MultiStepLR(
            optimizer,
            [max(1, s - warm) for s in milestone_steps(schedule, epochs, steps_per_epoch)],
            gamma=schedule.gamma,
        )
    elif schedule.kind == "cosine":
        main = CosineAnnealingLR(optimizer, T_max=max(1, total - warm))
    else:
        main = ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warm <= 0:
        return main
    warmup = LinearLR(optimizer, start_factor=1.0 / (warm + 1), end_factor=1.0, total_iters=warm)
    return SequentialLR(optimizer, [warmup, main], milestones=[warm])


def steps_per_epoch(batches: int, accum_steps: int) -> int:
    """Optimiser steps of an epoch of ``batches`` batches (a trailing partial accumulation
    steps too)."""
    return max(1, math.ceil(batches / accum_steps))


def lr_trace(
    schedule: LRSchedule, epochs: int, steps: int, base_lr: float = 1.0
) -> list[list[float]]:
    """The rate used at every optimiser step, per epoch (for tests and ``--help`` figures)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = build_scheduler(opt, schedule, epochs, steps)
    out: list[list[float]] = []
    for _ in range(epochs):
        epoch: list[float] = []
        for _ in range(steps):
            epoch.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out.append(epoch)
    return out
