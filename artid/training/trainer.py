"""The one training loop shared by every method.

A method (see :mod:`artid.training.methods`) plugs into the loop through
:class:`~artid.training.config.Method`: its head (extra parameters with their own learning
rate), what happens at the start of an epoch (e.g. mining), the batches of an epoch, and the
loss of a batch. The loop owns everything else: optimiser (Adam) and learning-rate schedule
(:mod:`.schedule`, stepped per optimiser step), gradient accumulation, optional mixed
precision, frozen BatchNorm statistics, progress bar, validation of the untrained model and
after every epoch, a checkpoint per epoch (loadable by ``artid extract --model``), the best
epoch (:mod:`.selection`), and an exact resume.

Exact resume: the random generators (torch, NumPy, Python) are re-seeded from
``(seed, epoch)`` at the start of every epoch, and re-seeded again once the epoch is prepared
(mining, which embeds the database), so the batches' randomness depends on neither what ran
before the epoch nor whether the descriptors were cached. The trainer-state file stores the
model, head, optimiser, scheduler, grad-scaler and selection states after every epoch (and
after the validation of the untrained model); an epoch interrupted in the middle is redone
from that start state, and ``log.jsonl`` is rewritten from the saved history, so a resumed
run reproduces the uninterrupted one bit for bit (on the same machine and device).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from artid.errors import ArtidError
from artid.training.config import EpochContext, Method, TrainConfig, TrainResult
from artid.training.schedule import build_scheduler, steps_per_epoch
from artid.training.selection import Selection

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"
LOG_FILE = "log.jsonl"
BEST_FILE = "best.pt"
BEST_HEAD_FILE = "best_head.pt"

__all__ = ["BEST_FILE", "BEST_HEAD_FILE", "LOG_FILE", "STATE_FILE", "EpochContext", "Method", "TrainConfig",
           "TrainResult", "Trainer", "default_checkpoint_writer"]


def _seed_all(seed: int, epoch: int, phase: int = 0) -> tuple[np.random.Generator, torch.Generator]:
    s = (seed * 1_000_003 + epoch * 7919 + phase) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    return np.random.default_rng([seed, epoch, phase]), torch.Generator().manual_seed(s)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def default_checkpoint_writer(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """:func:`artid.models.save_checkpoint` (what ``artid extract --model`` loads)."""
    from artid.models import Embedder, save_checkpoint
    save_checkpoint(path, cast(Embedder, model), meta)  # the trainer's model is an Embedder (or duck-typed like one)


class Trainer:
    """Runs a :class:`Method` on an embedder.

    Args:
        model: the embedder (``forward``, ``freeze_batchnorm``; see :mod:`artid.models`), on ``device``.
        method: the method.
        config: loop settings.
        device: decided once by the caller.
        validator: model -> metrics dict (containing ``config.select_metric``), or None.
        checkpoint_writer: (path, model, meta) -> None; default :func:`default_checkpoint_writer`.
        invalidate: called whenever the weights changed (clears cached descriptors).
    """

    def __init__(self, model: nn.Module, method: Method, config: TrainConfig, device: torch.device,
                 validator: Callable[[nn.Module], dict[str, Any]] | None = None,
                 checkpoint_writer: Callable[[Path, nn.Module, dict[str, Any]], None] | None = None,
                 invalidate: Callable[[], None] | None = None) -> None:
        config.check()
        if config.amp == "fp16" and device.type != "cuda":
            raise ArtidError(f"--amp fp16 needs a CUDA device (got {device}); use --amp bf16 or off")
        self.model, self.method, self.config, self.device = model, method, config, device
        self.validator = validator
        self.write_checkpoint = checkpoint_writer or default_checkpoint_writer
        self.invalidate = invalidate or (lambda: None)
        self.out_dir = Path(config.out_dir)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp)
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
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None  # sized by the first epoch
        self._scheduler_state: dict[str, Any] | None = None
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp == "fp16")
        self.selections = [Selection(config.select_metric, BEST_FILE, BEST_HEAD_FILE, loss_fallback=True)]
        for prefix in getattr(method, "select_prefixes", ()):
            name = "best_" + prefix.rstrip("_")
            self.selections.append(Selection(prefix + config.select_metric, name + ".pt", name + "_head.pt"))
        self.result = TrainResult()
        self.start_epoch = 1

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
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "scaler": self.scaler.state_dict(),
            "selections": json.dumps([s.state() for s in self.selections]),
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
        if "selections" not in st:
            raise ArtidError(f"{self.state_path} was written by an older artid; delete it to start over")
        self.model.load_state_dict(st["model"])
        if self.method.head is not None:
            self.method.head.load_state_dict(st["head"])
        self.optimizer.load_state_dict(st["optimizer"])
        self._scheduler_state = st["scheduler"] or None
        self.scaler.load_state_dict(st["scaler"])
        saved = {s["metric"]: s for s in json.loads(st["selections"])}
        for sel in self.selections:
            if sel.metric in saved:
                sel.load(saved[sel.metric])
        self.result.history = json.loads(st["history"])
        self.result.best_epoch = self.selections[0].best_epoch
        self.start_epoch = int(st["epoch"]) + 1
        # an epoch logged but not saved is redone: the log holds exactly the saved history
        tmp = self.out_dir / (LOG_FILE + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in self.result.history), encoding="utf-8")
        os.replace(tmp, self.out_dir / LOG_FILE)
        log.info("resuming %s from %s after epoch %d", self.method.name, self.state_path, st["epoch"])
        return True

    # ------------------------------------------------------------------ loop
    def fit(self, resume: bool = True) -> TrainResult:
        """Train (or continue training) up to ``config.epochs`` epochs."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        resumed = resume and self.resume()
        if not resumed:
            (self.out_dir / LOG_FILE).unlink(missing_ok=True)
            if self.validator is not None:  # the untrained model is a candidate like any epoch
                self._finish_epoch(0, {"epoch": 0, **self._validate()})
        for epoch in range(self.start_epoch, self.config.epochs + 1):
            self._run_epoch(epoch)
        main = self.selections[0]
        self.result.best_epoch = main.best_epoch
        if main.best_epoch is not None:
            self.result.best_checkpoint = self.out_dir / BEST_FILE
        if main.best_epoch == 0:
            log.warning("%s: no epoch beat the untrained model on validation %s (%.4g); %s is the untrained model",
                        self.method.name, main.metric, main.best_value, BEST_FILE)
        return self.result

    def _validate(self) -> dict[str, Any]:
        assert self.validator is not None
        v = self.validator(self.model)
        v.update(self.method.validate(self.model, getattr(self.validator, "last_query_descriptors", None)))
        return v

    def _log(self, record: dict[str, Any]) -> None:
        self.result.history.append(record)
        with open(self.out_dir / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        figures = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
        log.info("%s %s", self.method.name, figures)

    def _ensure_scheduler(self, n_batches: int | None) -> torch.optim.lr_scheduler.LRScheduler:
        if self.scheduler is None:
            if n_batches is None:
                raise ArtidError(f"{self.method.name}: the batches of an epoch must have a length")
            self.scheduler = build_scheduler(self.optimizer, self.config.schedule, self.config.epochs,
                                             steps_per_epoch(n_batches, self.config.accum_steps))
            if self._scheduler_state is not None:
                self.scheduler.load_state_dict(self._scheduler_state)
        return self.scheduler

    def _optimiser_step(self) -> float:
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        assert self.scheduler is not None
        self.scheduler.step()
        return lr

    def _run_epoch(self, epoch: int) -> None:
        cfg, model, method = self.config, self.model, self.method
        rng, gen = _seed_all(cfg.seed, epoch)
        ctx = EpochContext(epoch=epoch, model=model, device=self.device, rng=rng, generator=gen)
        t0 = time.perf_counter()
        method.begin_epoch(ctx)
        t_prep = time.perf_counter() - t0
        _seed_all(cfg.seed, epoch, phase=1)  # the batches' randomness does not depend on the preparation
        model.train()
        cast(Any, model).freeze_batchnorm()  # an Embedder's method (nn.Module types it as a tensor or module)
        if method.head is not None:
            method.head.train()
        batches = method.batches(ctx)
        total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
        self._ensure_scheduler(total)
        bar = tqdm(batches, total=total, desc=f"{method.name} epoch {epoch}/{cfg.epochs}", unit="batch")
        sum_loss, n_batches, n_images, n_steps, lr = 0.0, 0, 0, 0, float("nan")
        t1 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        for step, batch in enumerate(bar, start=1):
            with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                enabled=self.amp_dtype is not None):
                loss, n = method.loss(model, batch, self.device)
            if not torch.isfinite(loss):
                raise ArtidError(f"{method.name}: the loss became {loss.item()} at epoch {epoch}, batch {step}; "
                                 "lower --lr (or --head-lr)")
            self.scaler.scale(loss / cfg.accum_steps).backward()
            if step % cfg.accum_steps == 0 or step == total:
                lr = self._optimiser_step()
                n_steps += 1
            sum_loss += float(loss.detach())
            n_batches += 1
            n_images += n
            rate = n_images / max(time.perf_counter() - t1, 1e-9)
            bar.set_postfix(loss=f"{sum_loss / n_batches:.4f}", img_s=f"{rate:.1f}")
        bar.close()
        t_train = time.perf_counter() - t1
        self.invalidate()
        record: dict[str, Any] = {"epoch": epoch, "loss": sum_loss / max(n_batches, 1), "lr": lr,
                                  "steps": n_steps, "images": n_images,
                                  "images_per_s": n_images / max(t_train, 1e-9), "prepare_s": t_prep,
                                  "train_s": t_train}
        if self.validator is not None:
            t2 = time.perf_counter()
            record.update(self._validate())
            record["validate_s"] = time.perf_counter() - t2
        self._finish_epoch(epoch, record)

    def _finish_epoch(self, epoch: int, record: dict[str, Any]) -> None:
        """Checkpoint, selection, log line, then the trainer state (last: a crash before it redoes the epoch)."""
        meta = {"method": self.method.name, "epoch": epoch, "config": self.config.to_json(),
                "validation": {k: v for k, v in record.items() if isinstance(v, (int, float, str))}}
        path = self.checkpoint_path(epoch)
        self.write_checkpoint(path, self.model, meta)
        for sel in self.selections:
            sel.offer(self.out_dir, epoch, record, path, self.method.head)
        record["best_epoch"] = self.selections[0].best_epoch
        self._log(record)
        _atomic_torch_save(self._state(epoch), self.state_path)
