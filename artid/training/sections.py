"""The typed sections of a training run's settings: data, model, optimisation and schedule.

Each section is a frozen dataclass whose field names are the command-line options of ``artid
train`` (``batch_size`` is ``--batch-size``); each checks its own fields and names the option of a
bad one. A run (:class:`artid.training.settings.RunSpec`) is these sections plus its method's
own section (:mod:`artid.training.methods`); the loop (:class:`artid.training.config.TrainConfig`)
takes :class:`OptimSettings` as it is. Settings left None are governed by a :class:`Preset`.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from artid.errors import ArtidError
from artid.training.schedule import LRSchedule

#: Mixed-precision modes: off, bfloat16 autocast (CPU or CUDA), float16 autocast + grad scaler.
AMP_MODES = ("off", "bf16", "fp16")
#: Validation metrics of the kNN validator that can pick the best epoch (higher is better).
SELECT_METRICS = ("gap", "acc", "gap_minus")
#: Optimisers of the loop: Adam (the paper's) or SGD with momentum.
OPTIMIZERS = ("adam", "sgd")


def option(name: str) -> str:
    """The command-line option of a setting: ``negative_pool`` -> ``--negative-pool``."""
    return "--" + name.replace("_", "-")


def one_of(name: str, value: object, choices: Any, what: str) -> None:
    """Refuse ``value`` unless it is one of ``choices``, naming the option ``name``."""
    if value not in choices:
        raise ArtidError(
            f"{option(name)}: unknown {what} {value!r}; expected one of {', '.join(choices)}"
        )


def positive(obj: object, *names: str) -> None:
    """Refuse a field of ``obj`` below 1 (None passes), naming its option."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and value < 1:
            raise ArtidError(f"{option(name)} must be positive, got {value}")


def non_negative(obj: object, *names: str) -> None:
    """Refuse a negative field of ``obj`` (None passes), naming its option."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and value < 0:
            raise ArtidError(f"{option(name)} must be non-negative, got {value}")


def finite(obj: object) -> None:
    """Refuse a float field of a section (or a float inside a tuple field) that is NaN or
    infinite, naming its option: no such number reaches a run's JSON or the loop."""
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        for x in value if isinstance(value, tuple) else (value,):
            if isinstance(x, float) and not math.isfinite(x):
                raise ArtidError(f"{option(f.name)} must be a finite number, got {value!r}")


def finite_number(text: str) -> float:
    """An option's type: a finite number (``nan`` and ``inf`` refused by the parser)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def setting(
    default: Any, help: str, choices: tuple[str, ...] | None = None, type: type | None = None
) -> Any:
    """A method setting with what its command-line option needs: help, choices, value type.

    ``artid train`` builds a method's options from these (:func:`setting_option`): a bool
    defaulting to False is a flag; ``type`` is needed only where the default is None.
    """
    return field(default=default, metadata={"help": help, "choices": choices, "type": type})


def setting_option(f: Field) -> tuple[str, dict[str, Any]]:
    """The option of a :func:`setting` field and the ``argparse.add_argument`` keywords."""
    meta = f.metadata
    kw: dict[str, Any] = {"dest": f.name, "default": f.default, "help": meta.get("help")}
    if f.default is False:
        kw["action"] = "store_true"
    else:
        kw["type"] = meta.get("type") or type(f.default)
        if kw["type"] is float:
            kw["type"] = finite_number
        if meta.get("choices"):
            kw["choices"] = meta["choices"]
    return option(f.name), kw


@dataclass(frozen=True)
class Preset:
    """Defaults of the settings a preset governs (an explicit setting always wins).

    Attributes:
        lr: backbone (and projector) learning rate.
        epochs: epochs per method.
        augment: ``paper`` or ``insitu`` (:mod:`artid.training.augment`).
        select: validation metric that picks the best epoch.
        projector_share: cap of the projector's output size as a share of the database images
            (None: the paper's D -> D, clamped only to the covariance rank).
    """

    lr: float
    epochs: dict[str, int]
    augment: str
    select: str
    projector_share: float | None


#: ``artid``: chosen by measurement on a synthetic benchmark of a few hundred classes (README,
#: "Training on the collection"); ``paper``: the thesis' exact values (section 5.1).
PRESETS: dict[str, Preset] = {
    "artid": Preset(
        lr=1e-4,
        epochs={"contrastive": 3, "simsiam": 5, "dnet": 10},
        augment="insitu",
        select="gap",
        projector_share=0.5,
    ),
    "paper": Preset(
        lr=1e-7,
        epochs={"contrastive": 10, "simsiam": 15, "dnet": 25},
        augment="paper",
        select="acc",
        projector_share=None,
    ),
}


def preset(name: str) -> Preset:
    """The preset called ``name`` (refused by ``--preset`` when there is none)."""
    one_of("preset", name, PRESETS, "preset")
    return PRESETS[name]


@dataclass(frozen=True)
class DataSettings:
    """What the run trains and validates on, and how images are loaded.

    Attributes:
        root: Met-format dataset root (database + val ground truth and images).
        split: training images: ``database`` or ``mini``.
        augment: ``paper`` or ``insitu``; None = the preset's.
        image_size: side of the square training crops (500 in the paper).
        max_size: longer side images are loaded at (training and validation).
        eval_batch: images per batch when embedding the database / queries.
        workers: data-loader worker processes.
        validate: kNN validation of the untrained model and after every epoch.
    """

    root: Path
    split: str = "database"
    augment: str | None = None
    image_size: int = 500
    max_size: int = 500
    eval_batch: int = 32
    workers: int = 0
    validate: bool = True

    def check(self) -> None:
        """Refuse a bad setting, naming its option (call on resolved settings)."""
        from artid.training.augment import AUGMENTS

        one_of("split", self.split, ("database", "mini"), "split")
        positive(self, "image_size", "max_size", "eval_batch")
        non_negative(self, "workers")
        one_of("augment", self.augment, AUGMENTS, "augmentation")


@dataclass(frozen=True)
class ModelSettings:
    """The network trained and where it runs.

    Attributes:
        model: backbone name or artid checkpoint to start from.
        projector: add the FC projector, initialised from PCA-whitening.
        projector_dim: its output size; None = D capped at the preset's share of the database
            images (full whitening to nearly as many dimensions as there are images makes the
            database descriptors equidistant).
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
    """

    model: str = "efficientnet_lite0"
    projector: bool = True
    projector_dim: int | None = None
    device: str = "auto"

    def check(self) -> None:
        """Refuse a bad setting, naming its option."""
        positive(self, "projector_dim")


@dataclass(frozen=True)
class OptimSettings:
    """Optimisation and schedule: what :class:`~artid.training.trainer.Trainer` runs under.

    Attributes:
        epochs: epochs of training; None = the preset's for the method.
        batch_size: pairs (contrastive) or images per batch; None = the method's default.
        lr: backbone (and projector) learning rate; None = the preset's.
        head_lr: learning rate of the method's head (classifier, SimSiam MLPs).
        weight_decay: weight decay (1e-6 in the paper).
        optimizer: ``adam`` (the paper's) or ``sgd`` (with ``momentum``).
        momentum: SGD momentum.
        lr_schedule, lr_milestones, lr_gamma, warmup_steps: the schedule
            (:class:`~artid.training.schedule.LRSchedule`: kind, milestones, gamma, warm-up).
        accum_steps: batches whose gradients are summed before one optimiser step.
        amp: mixed precision, one of :data:`AMP_MODES` (``fp16`` needs CUDA).
        seed: base seed of every random choice.
        select: validation figure that picks the best epoch (for ``artid train`` one of
            :data:`SELECT_METRICS`); None = the preset's. A method's extra classifiers (DNet's
            parametric one) are picked by their prefix + it.
    """

    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    head_lr: float = 1e-3
    weight_decay: float = 1e-6
    optimizer: str = "adam"
    momentum: float = 0.9
    lr_schedule: str = "step"
    lr_milestones: tuple[float, ...] | None = None
    lr_gamma: float = 0.1
    warmup_steps: int = 0
    accum_steps: int = 1
    amp: str = "off"
    seed: int = 0
    select: str | None = None

    @property
    def schedule(self) -> LRSchedule:
        """The learning-rate schedule these settings describe."""
        return LRSchedule(
            kind=self.lr_schedule,
            milestones=self.lr_milestones,
            gamma=self.lr_gamma,
            warmup_steps=self.warmup_steps,
        )

    def resolved(self, p: Preset, method: str | None = None) -> OptimSettings:
        """A copy with the settings ``p`` governs filled in (``epochs`` only for a ``method``)."""
        epochs = self.epochs
        if epochs is None and method is not None:
            epochs = p.epochs.get(method)
        return replace(
            self,
            lr=p.lr if self.lr is None else self.lr,
            epochs=epochs,
            select=self.select or p.select,
        )

    def check(self) -> None:
        """Refuse a setting the loop cannot run, naming its option (call on resolved settings)."""
        if self.epochs is None or self.epochs < 1:
            raise ArtidError(f"--epochs must be at least 1, got {self.epochs}")
        positive(self, "batch_size", "accum_steps")
        if self.lr is None or self.lr < 0 or self.head_lr < 0:
            raise ArtidError("--lr and --head-lr must be non-negative")
        non_negative(self, "weight_decay", "momentum")
        one_of("optimizer", self.optimizer, OPTIMIZERS, "optimizer")
        one_of("amp", self.amp, AMP_MODES, "mode")
        if not self.select:
            raise ArtidError("--select: no validation metric to pick the best epoch")
        self.schedule.check(self.epochs)
