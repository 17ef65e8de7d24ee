"""Fine-tuning a backbone for multi-label attributes: sigmoid outputs, BCE or focal loss, seed 004's step schedule.

The network is an artid backbone's trunk and GeM pooling (:class:`artid.models.Embedder`) followed by
one linear layer with an output per label. Training follows seed 004 (VGG16 on iMet 2019): SGD with
momentum, learning rate 0.01 multiplied by 0.1 every ``step_size`` epochs (``StepLR``). The loss is
BCE, optionally with a per-label ``pos_weight`` against label imbalance (negatives / positives,
capped), or the focal loss of Lin et al. (``torchvision.ops.sigmoid_focal_loss``, ``gamma`` and
``alpha`` configurable), which the iMet 2019 winners used.

Resumable: after every epoch ``<folder>/finetune_last.pt`` holds the model, optimiser, scheduler and
log (``log.jsonl`` too); running the same training again continues from there
(with a larger ``epochs``: trains further). The epoch with the
best validation AUC-PR (micro) is kept in ``finetune_best.pt``. Files are read back with
``torch.load(weights_only=True)`` (tensors and plain containers only).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.ops import sigmoid_focal_loss
from torchvision.transforms import v2
from tqdm import tqdm

from artid.attributes.head import balanced_pos_weight
from artid.data.images import load_image, to_tensor
from artid.errors import ArtidError
from artid.metrics.multilabel import ranking_metrics
from artid.models import build_embedder


@dataclass(frozen=True)
class FinetuneSettings:
    """Fine-tuning settings (defaults: seed 004's schedule, sized for a CPU).

    Attributes:
        model, weights: the backbone (:func:`artid.models.build_embedder`).
        size: square input size in pixels.
        epochs, batch_size, lr, momentum, weight_decay: SGD.
        step_size, step_gamma: ``StepLR`` (seed 004: x0.1 every 15 epochs).
        loss: ``bce`` or ``focal``.
        gamma, alpha: focal loss parameters (alpha < 0: no class weighting).
        pos_weight: ``none`` or ``balanced`` (BCE only).
        max_pos_weight: cap of ``balanced``.
        freeze_bn: keep BatchNorm statistics frozen (small CPU batches).
        seed: initialisation, augmentation and batch order.
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

    def __post_init__(self) -> None:
        if self.loss not in ("bce", "focal"):
            raise ArtidError(f"--loss must be bce or focal, got {self.loss!r}")
        if self.pos_weight not in ("none", "balanced"):
            raise ArtidError(f"--pos-weight must be none or balanced, got {self.pos_weight!r}")
        if self.loss == "focal" and self.pos_weight != "none":
            raise ArtidError("--pos-weight applies to --loss bce; the focal loss weighs positives with --alpha")
        if min(self.size, self.epochs, self.batch_size, self.step_size) < 1 or self.lr <= 0:
            raise ArtidError(f"fine-tuning: size, epochs, batch size, step size >= 1 and lr > 0; got {self}")

    def to_json(self) -> dict:
        return asdict(self)


class AttributeNet(nn.Module):
    """Backbone trunk -> GeM -> linear layer with one logit per label."""

    def __init__(self, model: str, weights: str | None, n_labels: int) -> None:
        super().__init__()
        self.embedder = build_embedder(model, weights=weights)
        self.fc = nn.Linear(self.embedder.num_features, n_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] -> (B, L) logits."""
        e = self.embedder
        return self.fc(e.pool(e.trunk(e.normalize(x))).flatten(1))


class ImageSet(Dataset):
    """Image files (and optional targets) as (3, size, size) tensors, augmented for training."""

    def __init__(self, paths: list[Path], targets: np.ndarray | None, size: int, train: bool) -> None:
        self.paths, self.targets = paths, targets
        aug = [v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True), v2.RandomHorizontalFlip()]
        self.transform = v2.Compose(aug if train else [v2.Resize((size, size), antialias=True)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.transform(to_tensor(load_image(self.paths[i], max_size=None)))
        y = torch.zeros(0) if self.targets is None else torch.as_tensor(self.targets[i], dtype=torch.float32)
        return x, y


def _loss_fn(settings: FinetuneSettings, y: np.ndarray):
    if settings.loss == "focal":
        return lambda logits, t: sigmoid_focal_loss(logits, t, alpha=settings.alpha, gamma=settings.gamma,
                                                    reduction="mean")
    pw = torch.as_tensor(balanced_pos_weight(y, settings.max_pos_weight)) if settings.pos_weight == "balanced" else None
    return nn.BCEWithLogitsLoss(pos_weight=pw)


def _save(payload: dict[str, Any], file: Path) -> None:
    tmp = file.with_name(f".{file.name}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, file)


def _load(file: Path) -> dict[str, Any]:
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise ArtidError(f"{file}: not a readable fine-tuning checkpoint ({exc}); delete it to start over") from None


@torch.inference_mode()
def predict_logits(net: AttributeNet, paths: list[Path], size: int, batch_size: int = 32,
                   progress: bool = False, desc: str = "predict") -> np.ndarray:
    """(N, L) float32 logits of image files (resized to ``size`` x ``size``, no augmentation)."""
    net.eval()
    loader = DataLoader(ImageSet(paths, None, size, train=False), batch_size=batch_size)
    out = [net(x) for x, _ in tqdm(loader, desc=desc, unit="batch", disable=not progress)]
    return torch.cat(out).numpy() if out else np.zeros((0, net.fc.out_features), np.float32)


def finetune(settings: FinetuneSettings, folder: Path, train: tuple[list[Path], np.ndarray],
             val: tuple[list[Path], np.ndarray] | None = None, progress: bool = True) -> AttributeNet:
    """Train (or resume training) and return the network of the best validation epoch (the last without val).

    Args:
        settings: fine-tuning settings.
        folder: where the checkpoints and ``log.jsonl`` go.
        train: training image files and their (N, L) 0/1 targets.
        val: validation image files and targets, scored after every epoch.
        progress: progress bars.
    """
    paths, y = train
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    net = AttributeNet(settings.model, settings.weights, y.shape[1])
    if settings.freeze_bn:
        net.embedder.freeze_batchnorm()
    opt = torch.optim.SGD(net.parameters(), lr=settings.lr, momentum=settings.momentum,
                          weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, settings.step_size, settings.step_gamma)
    last, best_file = folder / "finetune_last.pt", folder / "finetune_best.pt"
    start, log, best = 0, [], -1.0
    if last.is_file():
        state = _load(last)
        saved, now = dict(state.get("settings") or {}), json.loads(json.dumps(settings.to_json()))
        saved.pop("epochs", None), now.pop("epochs")  # more epochs continue a run; other changes do not
        if saved != now:
            diff = sorted(k for k in now if saved.get(k) != now[k])
            raise ArtidError(f"{last} was made with other settings ({', '.join(diff)}); "
                             "choose another --out or delete it")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, log, best = int(state["epoch"]), list(state["log"]), float(state["best"])
    loss_fn = _loss_fn(settings, y)
    gen = torch.Generator().manual_seed(settings.seed + start)
    loader = DataLoader(ImageSet(paths, y, settings.size, train=True), batch_size=settings.batch_size,
                        shuffle=True, generator=gen)
    for epoch in range(start, settings.epochs):
        net.train()
        total, count = 0.0, 0
        for x, t in tqdm(loader, desc=f"epoch {epoch + 1}/{settings.epochs}", unit="batch", disable=not progress):
            opt.zero_grad()
            loss = loss_fn(net(x), t)
            loss.backward()
            opt.step()
            total, count = total + loss.item() * len(x), count + len(x)
        entry = {"epoch": epoch + 1, "loss": total / max(count, 1), "lr": opt.param_groups[0]["lr"]}
        sched.step()
        if val is not None:
            scores = predict_logits(net, val[0], settings.size, settings.batch_size)
            entry["val_auc_pr_micro"] = ranking_metrics(val[1], scores).auc_pr_micro
        metric = entry.get("val_auc_pr_micro", float(epoch))
        if not np.isnan(metric) and metric > best:
            best = float(metric)
            _save({"model": net.state_dict(), "epoch": epoch + 1}, best_file)
        log.append(entry)
        with open(folder / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        _save({"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
               "epoch": epoch + 1, "log": log, "best": best, "settings": settings.to_json()}, last)
    if best_file.is_file():
        net.load_state_dict(_load(best_file)["model"])
    return net.eval()


def load_finetuned(settings: FinetuneSettings, folder: Path, n_labels: int) -> AttributeNet:
    """The best (or last) network saved by :func:`finetune` in ``folder``."""
    file = folder / "finetune_best.pt"
    if not file.is_file():
        raise ArtidError(f"{file}: no fine-tuned network here; run `artid attributes train --model finetune` first")
    net = AttributeNet(settings.model, settings.weights, n_labels)
    net.load_state_dict(_load(file)["model"])
    return net.eval()
