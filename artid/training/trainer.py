"""The one training loop shared by every method.

A method (see :mod:`artid.training.methods`) plugs into the loop through :class:`Method`:
its head (extra parameters with their own learning rate), what happens at the start of
an epoch (e.g. mining), the batches of an epoch, and the loss of a batch. The loop owns
everything else: optimiser (Adam) and StepLR schedule, gradient accumulation, mixed
precision on CUDA, frozen BatchNorm statistics, progress bar, per-epoch validation,
a checkpoint per epoch (loadable by ``artid extract --model``), the best epoch, and an
exact resume.

Exact resume: the random generators (torch, NumPy, Python) are re-seeded from
``(seed, epoch)`` at the start of every epoch, so an epoch's randomness does not depend
on what ran before it; the trainer-state file stores the model, head, optimiser,
scheduler and grad-scaler states with the epoch, so a run resumed at an epoch boundary
produces the same weights as an uninterrupted one. An epoch interrupted in the middle
is redone from its start.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from artid.errors import ArtidError

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"
LOG_FILE = "log.jsonl"
BEST_FILE = "best.pt"
BEST_HEAD_FILE = "best_head.pt"


@dataclass
class TrainConfig:
    """Settings of the loop (the paper's values as defaults where it gives them, thesis 5.1).

    Attributes:
        out_dir: run folder (checkpoints, trainer state, log).
        epochs: number of epochs.
        lr: backbone (and FC projector) learning rate; the paper's 1e-7 is tuned for the Met.
        head_lr: learning rate of the method's head (classifier, SimSiam MLPs): 1e-3.
        weight_decay: Adam weight decay, 1e-6.
        lr_drop_epoch: epochs after which the learning rates are divided by 10
            (default: half of ``epochs``, at least 1).
        accum_steps: batches whose gradients are summed before one optimiser step.
        amp: mixed precision (float16 autocast + grad scaler); used only on CUDA.
        seed: base seed of every random choice.
        select_metric: validation metric that picks the best epoch (higher is better).
    """

    out_dir: Path
    epochs: int
    lr: float = 1e-7
    head_lr: float = 1e-3
    weight_decay: float = 1e-6
    lr_drop_epoch: int | None = None
    accum_steps: int = 1
    amp: bool = True
    seed: int = 0
    select_metric: str = "acc"

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
    """

    name: str
    head: nn.Module | None
    train_backbone: bool

    def begin_epoch(self, ctx: EpochContext) -> None:
        """Prepare the epoch (mining, pair lists) with the current weights."""

    def batches(self, ctx: EpochContext) -> Iterable[Any]:
        """The epoch's batches (a DataLoader; its ``len`` drives the progress bar)."""

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        """Scalar loss of one batch and the number of images it forwarded."""

    def validate(self, model: nn.Module, query_descriptors: np.ndarray | None) -> dict[str, Any]:
        """Extra validation figures (e.g. the parametric classifier's); may be empty."""


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`: the history of epochs and the best one."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_checkpoint: Path | None = None


def _seed_all(seed: int, epoch: int) -> tuple[np.random.Generator, torch.Generator]:
    s = (seed * 1_000_003 + epoch) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    return np.random.default_rng([seed, epoch]), torch.Generator().manual_seed(s)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def default_checkpoint_writer(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """:func:`artid.models.save_checkpoint` (what ``artid extract --model`` loads)."""
    from artid.models import save_checkpoint
    save_checkpoint(path, model, meta)


class Trainer:
    """Runs a :class:`Method` on an embedder.

    Args:
        model: the embedder (``forward``, ``freeze_batchnorm``; see :mod:`artid.models`), on ``device``.
        method: the method.
        config: loop settings.
        device: decided once by the caller.
        validator: model -> metrics dict (must contain ``config.select_metric``), or None.
        checkpoint_writer: (path, model, meta) -> None; default :func:`default_checkpoint_writer`.
        invalidate: called whenever the weights changed (clears cached descriptors).
    """

    def __init__(self, model: nn.Module, method: Method, config: TrainConfig, device: torch.device,
                 validator: Callable[[nn.Module], dict[str, Any]] | None = None,
                 checkpoint_writer: Callable[[Path, nn.Module, dict[str, Any]], None] | None = None,
                 invalidate: Callable[[], None] | None = None) -> None:
        if config.epochs < 1:
            raise ArtidError(f"epochs must be at least 1, got {config.epochs}")
        if config.accum_steps < 1:
            raise ArtidError(f"accum-steps must be at least 1, got {config.accum_steps}")
        self.model, self.method, self.config, self.device = model, method, config, device
        self.validator = validator
        self.write_checkpoint = checkpoint_writer or default_checkpoint_writer
        self.invalidate = invalidate or (lambda: None)
        self.out_dir = Path(config.out_dir)
        self.use_amp = bool(config.amp and device.type == "cuda")
        if method.head is not None:
            method.head.to(device)
        if not method.train_backbone:
            for p in model.parameters():
                p.requires_grad_(False)
        groups = []
        backbone = [p for p in model.parameters() if p.requires_grad]
        if backbone:
            groups.append({"params": backbone, "lr": config.lr, "name": "backbone"})
        if method.head is not None:
            groups.append({"params": list(method.head.parameters()), "lr": config.head_lr, "name": "head"})
        if not groups:
            raise ArtidError("nothing to train: the backbone is frozen and the method has no head")
        self.optimizer = torch.optim.Adam(groups, weight_decay=config.weight_decay)
        drop = config.lr_drop_epoch or max(1, config.epochs // 2)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=drop, gamma=0.1)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.result = TrainResult()
        self.start_epoch = 1
        self.best_value = -float("inf")

    # ----------------------------------------------------------------- state
    @property
    def state_path(self) -> Path:
        return self.out_dir / STATE_FILE

    def checkpoint_path(self, epoch: int) -> Path:
        return self.out_dir / f"epoch_{epoch:03d}.pt"

    def _state(self, epoch: int) -> dict[str, Any]:
        return {
            "method": self.method.name,
            "epoch": epoch,
            "seed": self.config.seed,
            "model": self.model.state_dict(),
            "head": self.method.head.state_dict() if self.method.head is not None else {},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best_value": self.best_value,
            "best_epoch": self.result.best_epoch,
            "history": json.dumps(self.result.history),
        }

    @staticmethod
    def saved_state(out_dir: Path) -> dict[str, Any] | None:
        """The trainer state stored in ``out_dir`` (None when there is none)."""
        path = Path(out_dir) / STATE_FILE
        if not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
            raise ArtidError(f"{path}: cannot read the trainer state ({exc}); delete it to start over") from None

    def resume(self) -> bool:
        """Load the trainer state of ``out_dir`` when there is one; return whether it did."""
        st = self.saved_state(self.out_dir)
        if st is None:
            return False
        if st.get("method") != self.method.name:
            raise ArtidError(f"{self.state_path} belongs to a {st.get('method')!r} run, not {self.method.name!r}; "
                             "use another --out folder")
        self.model.load_state_dict(st["model"])
        if self.method.head is not None:
            self.method.head.load_state_dict(st["head"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        self.scaler.load_state_dict(st["scaler"])
        self.best_value = float(st["best_value"])
        self.result.best_epoch = int(st["best_epoch"])
        self.result.history = json.loads(st["history"])
        self.start_epoch = int(st["epoch"]) + 1
        log.info("resuming %s from %s after epoch %d", self.method.name, self.state_path, st["epoch"])
        return True

    # ------------------------------------------------------------------ loop
    def fit(self, resume: bool = True) -> TrainResult:
        """Train (or continue training) up to ``config.epochs`` epochs."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        resumed = resume and self.resume()
        if not resumed:
            if self.validator is not None:
                v = self.validator(self.model)
                v.update(self.method.validate(self.model, getattr(self.validator, "last_query_descriptors", None)))
                self._log({"epoch": 0, **v})
        for epoch in range(self.start_epoch, self.config.epochs + 1):
            self._run_epoch(epoch)
        if self.result.best_epoch:
            self.result.best_checkpoint = self.out_dir / BEST_FILE
        return self.result

    def _log(self, record: dict[str, Any]) -> None:
        self.result.history.append(record)
        with open(self.out_dir / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        figures = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
        log.info("%s %s", self.method.name, figures)

    def _run_epoch(self, epoch: int) -> None:
        cfg, model, method = self.config, self.model, self.method
        rng, gen = _seed_all(cfg.seed, epoch)
        ctx = EpochContext(epoch=epoch, model=model, device=self.device, rng=rng, generator=gen)
        t0 = time.perf_counter()
        method.begin_epoch(ctx)
        t_prep = time.perf_counter() - t0
        model.train()
        model.freeze_batchnorm()
        if method.head is not None:
            method.head.train()
        batches = method.batches(ctx)
        total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
        bar = tqdm(batches, total=total, desc=f"{method.name} epoch {epoch}/{cfg.epochs}", unit="batch")
        sum_loss, n_batches, n_images = 0.0, 0, 0
        t1 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        for step, batch in enumerate(bar, start=1):
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
                loss, n = method.loss(model, batch, self.device)
            if not torch.isfinite(loss):
                raise ArtidError(f"{method.name}: the loss became {loss.item()} at epoch {epoch}, batch {step}; "
                                 "lower --lr (or --head-lr)")
            self.scaler.scale(loss / cfg.accum_steps).backward()
            if step % cfg.accum_steps == 0 or step == total:
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
            sum_loss += float(loss.detach())
            n_batches += 1
            n_images += n
            rate = n_images / max(time.perf_counter() - t1, 1e-9)
            bar.set_postfix(loss=f"{sum_loss / n_batches:.4f}", img_s=f"{rate:.1f}")
        bar.close()
        if total is None and n_batches % cfg.accum_steps:  # trailing partial accumulation, unknown length
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
        t_train = time.perf_counter() - t1
        self.scheduler.step()
        self.invalidate()
        record: dict[str, Any] = {"epoch": epoch, "loss": sum_loss / max(n_batches, 1), "images": n_images,
                                  "images_per_s": n_images / max(t_train, 1e-9), "prepare_s": t_prep,
                                  "train_s": t_train}
        if self.validator is not None:
            t2 = time.perf_counter()
            v = self.validator(model)
            v.update(method.validate(model, getattr(self.validator, "last_query_descriptors", None)))
            record.update(v)
            record["validate_s"] = time.perf_counter() - t2
        self._save(epoch, record)
        self._log(record)
        _atomic_torch_save(self._state(epoch), self.state_path)  # last: a crash before it redoes the epoch

    def _save(self, epoch: int, record: dict[str, Any]) -> None:
        meta = {"method": self.method.name, "epoch": epoch, "config": self.config.to_json(),
                "validation": {k: v for k, v in record.items() if isinstance(v, (int, float, str))}}
        path = self.checkpoint_path(epoch)
        self.write_checkpoint(path, self.model, meta)
        value = record.get(self.config.select_metric)
        if value is None:
            value = -record["loss"]  # no validation: the lowest training loss counts as best
        if value > self.best_value:
            self.best_value = float(value)
            self.result.best_epoch = epoch
            tmp = self.out_dir / (BEST_FILE + ".tmp")
            shutil.copyfile(path, tmp)
            os.replace(tmp, self.out_dir / BEST_FILE)
            if self.method.head is not None:
                _atomic_torch_save(self.method.head.state_dict(), self.out_dir / BEST_HEAD_FILE)
        record["best_epoch"] = self.result.best_epoch
