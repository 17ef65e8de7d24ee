"""Fine-tuning a backbone for multi-label attributes: sigmoid outputs, BCE or focal loss, seed 004's
step schedule, on the one training loop of :mod:`artid.training`.

The network is an artid backbone's trunk and GeM pooling (:class:`artid.models.Embedder`) followed
by one linear layer with an output per label. Training follows seed 004 (VGG16 on iMet 2019): SGD
with momentum, learning rate 0.01 multiplied by 0.1 every ``step_size`` epochs. The loss is BCE,
optionally with a per-label ``pos_weight`` against label imbalance (negatives / positives,
capped), or the focal loss of Lin et al. (``torchvision.ops.sigmoid_focal_loss``, ``gamma`` and
``alpha`` configurable), which the iMet 2019 winners used.

It runs as a method (:class:`Finetune`) of :class:`artid.training.trainer.Trainer`, so it has the
trainer's device (``auto``: CUDA when present), checkpoints, log and exact resume: after every
epoch ``<folder>/trainer_state.pt`` holds the network, optimiser, schedule and history
(``log.jsonl`` too) and ``last.pt`` the network; running the same training again continues from
there (with a larger ``epochs``: trains further, the schedule does not depend on it). Other
settings are refused, each change named, unless ``resume_changed``. The epoch with the best
validation AUC-PR (micro) is kept in ``best.pt`` (without validation: the lowest training loss).
Files are read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.ops import sigmoid_focal_loss

from artid.attributes.head import balanced_pos_weight
from artid.attributes.network import AttributeNet, ImageSet, predict_logits
from artid.devices import resolve_device
from artid.errors import ArtidError
from artid.metrics.multilabel import ranking_metrics
from artid.training.config import EpochContext, TrainConfig
from artid.training.methods.base import MethodBase
from artid.training.sections import OptimSettings
from artid.training.trainer import BEST_FILE, STATE_FILE, Trainer

#: Validation figure that picks the best epoch.
SELECT = "auc_pr_micro"
#: Settings a resume may change: more epochs train further; the device changes no result.
RESUME_FREE = ("epochs", "device")
#: Files of fine-tuning runs written before it ran on the training loop.
OLD_LAST, OLD_BEST = "finetune_last.pt", "finetune_best.pt"


@dataclass(frozen=True)
class FinetuneSettings:
    """Fine-tuning settings (defaults: seed 004's schedule, sized for a CPU).

    Attributes:
        model, weights: the backbone (:func:`artid.models.build_embedder`).
        size: square input size in pixels.
        epochs, batch_size, lr, momentum, weight_decay: SGD.
        step_size, step_gamma: the rate is multiplied by ``step_gamma`` every ``step_size``
            epochs (seed 004: x0.1 every 15 epochs).
        loss: ``bce`` or ``focal``.
        gamma, alpha: focal loss parameters (alpha < 0: no class weighting).
        pos_weight: ``none`` or ``balanced`` (BCE only).
        max_pos_weight: cap of ``balanced``.
        freeze_bn: keep BatchNorm statistics frozen (small CPU batches).
        seed: initialisation, augmentation and batch order.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
    """

    model: str = "efficientnet_lite0"
    weights: str | None = None
    size: int = 224
    epochs: int = 20
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    step_size: int = 15
    step_gamma: float = 0.1
    loss: str = "bce"
    gamma: float = 2.0
    alpha: float = 0.25
    pos_weight: str = "none"
    max_pos_weight: float = 10.0
    freeze_bn: bool = True
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.loss not in ("bce", "focal"):
            raise ArtidError(f"--loss must be bce or focal, got {self.loss!r}")
        if self.pos_weight not in ("none", "balanced"):
            raise ArtidError(f"--pos-weight must be none or balanced, got {self.pos_weight!r}")
        if self.loss == "focal" and self.pos_weight != "none":
            raise ArtidError(
                "--pos-weight applies to --loss bce; the focal loss weighs positives with --alpha"
            )
        numbers = (
            "lr",
            "momentum",
            "weight_decay",
            "step_gamma",
            "gamma",
            "alpha",
            "max_pos_weight",
        )
        bad = [
            f"{n}={getattr(self, n)!r}"
            for n in numbers
            if not math.isfinite(float(getattr(self, n)))
        ]
        if bad:
            raise ArtidError(f"fine-tuning settings must be finite numbers, got {', '.join(bad)}")
        if min(self.size, self.epochs, self.batch_size, self.step_size) < 1 or self.lr <= 0:
            raise ArtidError(
                f"fine-tuning: size, epochs, batch size, step size >= 1 and lr > 0; got {self}"
            )

    def to_json(self) -> dict:
        return asdict(self)

    def optim(self) -> OptimSettings:
        """The loop's optimisation section: SGD with momentum, the step schedule, AUC-PR."""
        drops = tuple(float(e) for e in range(self.step_size, self.epochs, self.step_size))
        return OptimSettings(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            optimizer="sgd",
            momentum=self.momentum,
            lr_schedule="step" if drops else "constant",
            lr_milestones=drops or None,
            lr_gamma=self.step_gamma,
            seed=self.seed,
            select=SELECT,
        )


def _loss_fn(settings: FinetuneSettings, y: np.ndarray) -> Any:
    if settings.loss == "focal":
        return lambda logits, t: sigmoid_focal_loss(
            logits, t, alpha=settings.alpha, gamma=settings.gamma, reduction="mean"
        )
    pw = None
    if settings.pos_weight == "balanced":
        pw = torch.as_tensor(balanced_pos_weight(y, settings.max_pos_weight))
    return nn.BCEWithLogitsLoss(pos_weight=pw)


class Finetune(MethodBase):
    """The training method: augmented image batches, BCE or focal loss on every label.

    The whole network trains at one rate (no head of its own); its output layer starts random,
    so the untrained network is no candidate for the best epoch.
    """

    name = "finetune"
    candidate_untrained = False

    def __init__(
        self,
        paths: list[Path],
        targets: np.ndarray,
        settings: FinetuneSettings,
        num_workers: int = 0,
    ) -> None:
        self.data = ImageSet(paths, targets, settings.size, train=True)
        self.batch_size, self.num_workers = settings.batch_size, num_workers
        self.loss_fn = _loss_fn(settings, targets)

    def batches(self, ctx: EpochContext) -> DataLoader:
        return DataLoader(
            self.data,
            batch_size=self.batch_size,
            shuffle=True,
            generator=ctx.generator,
            num_workers=self.num_workers,
        )

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        x, t = batch
        if isinstance(self.loss_fn, nn.Module):
            self.loss_fn.to(device)
        logits = model(x.to(device, non_blocking=True)).float()
        return self.loss_fn(logits, t.to(device)), x.shape[0]


class _Validator:
    """Validation AUC-PR (micro) of the network's scores."""

    def __init__(self, paths: list[Path], targets: np.ndarray, settings: FinetuneSettings) -> None:
        self.paths, self.targets, self.settings = paths, targets, settings

    def __call__(self, net: nn.Module) -> dict[str, Any]:
        s = self.settings
        scores = predict_logits(net, self.paths, s.size, s.batch_size)  # type: ignore[arg-type]
        return {SELECT: ranking_metrics(self.targets, scores).auc_pr_micro}


def _write(path: Path, net: nn.Module, meta: dict[str, Any]) -> None:
    torch.save({"model": net.state_dict(), "epoch": meta["epoch"]}, path)


def _load(file: Path) -> dict[str, Any]:
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise ArtidError(
            f"{file}: not a readable fine-tuning checkpoint ({exc}); delete it to start over"
        ) from None


def finetune(
    settings: FinetuneSettings,
    folder: Path,
    train: tuple[list[Path], np.ndarray],
    val: tuple[list[Path], np.ndarray] | None = None,
    progress: bool = True,
    resume_changed: bool = False,
) -> AttributeNet:
    """Train (or resume training) and return the network of the best epoch, on its device.

    Args:
        settings: fine-tuning settings.
        folder: where the checkpoints, trainer state and ``log.jsonl`` go.
        train: training image files and their (N, L) 0/1 targets.
        val: validation image files and targets, scored after every epoch.
        progress: progress bars.
        resume_changed: resume a run made with other settings under these (recorded in the
            trainer state) instead of refusing.
    """
    paths, y = train
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / OLD_LAST).is_file() and not (folder / STATE_FILE).is_file():
        raise ArtidError(
            f"{folder / OLD_LAST} was written by an older artid (before fine-tuning "
            "ran on the training loop); delete it or choose another --out"
        )
    device = resolve_device(settings.device)
    torch.manual_seed(settings.seed)
    net = AttributeNet(settings.model, settings.weights, y.shape[1], settings.freeze_bn).to(device)
    compared = {
        ("backbone" if k == "model" else k): v
        for k, v in settings.to_json().items()
        if k not in RESUME_FREE
    }
    trainer = Trainer(
        net,
        Finetune(paths, y, settings),
        TrainConfig(folder, settings.optim(), keep_epochs=False),
        device,
        validator=None if val is None else _Validator(val[0], val[1], settings),
        checkpoint_writer=_write,
        settings=compared,
        resume_changed=resume_changed,
        progress=progress,
    )
    trainer.fit()
    if (folder / BEST_FILE).is_file():
        net.load_state_dict(_load(folder / BEST_FILE)["model"])
    return net.eval()


def load_finetuned(settings: FinetuneSettings, folder: Path, n_labels: int) -> AttributeNet:
    """The best network saved by :func:`finetune` in ``folder``, on the settings' device."""
    file = folder / BEST_FILE
    if not file.is_file() and (folder / OLD_BEST).is_file():
        file = folder / OLD_BEST  # a run of an older artid: the same network format
    if not file.is_file():
        raise ArtidError(
            f"{file}: no fine-tuned network here; run `artid attributes train "
            "--model finetune` first"
        )
    net = AttributeNet(settings.model, settings.weights, n_labels, settings.freeze_bn)
    net.load_state_dict(_load(file)["model"])
    return net.to(resolve_device(settings.device)).eval()
