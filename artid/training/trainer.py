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

In a data-parallel run (``torchrun``, :mod:`.distributed`) every process runs this loop on its
share of each batch (:mod:`.sharding`: the batches of one process, augmented alike), the loss
over the gathered global batch; rank 0 alone writes the run folder.

A resume under other settings than the run's is refused, naming each change
(:mod:`.runstate`); allowed (``resume_changed``), the run continues under the new ones: the
optimiser takes the new rates, the schedule is rebuilt for the new settings and moved to the
optimiser steps already done, and the change is recorded (:attr:`TrainResult.changes`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from tqdm import tqdm

from artid.errors import ArtidError
from artid.files import atomic_path
from artid.training import runstate
from artid.training.config import EpochContext, Method, TrainConfig, TrainResult, optim_json
from artid.training.distributed import Distributed
from artid.training.optimisation import Optimisation
from artid.training.resume import restore, snapshot
from artid.training.runstate import LOG_FILE, STATE_FILE
from artid.training.selection import Selection
from artid.training.sharding import epoch_loader, seed_epoch

log = logging.getLogger(__name__)

BEST_FILE = "best.pt"
BEST_HEAD_FILE = "best_head.pt"
LAST_FILE = "last.pt"

__all__ = ["BEST_FILE", "BEST_HEAD_FILE", "LAST_FILE", "LOG_FILE", "STATE_FILE", "EpochContext",
           "Method", "TrainConfig", "TrainResult", "Trainer", "default_checkpoint_writer"]


def default_checkpoint_writer(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """:func:`artid.models.save_checkpoint` (what ``artid extract --model`` loads)."""
    from artid.models import Embedder, save_checkpoint
    save_checkpoint(path, cast(Embedder, model), meta)  # the trainer's model is an Embedder


class Trainer:
    """Runs a :class:`Method` on an embedder.

    Args:
        model: the embedder (``forward``, ``freeze_batchnorm``; see :mod:`artid.models`).
        method: the method.
        config: loop settings.
        device: decided once by the caller; the model is on it.
        validator: model -> metrics dict (containing ``config.optim.select``), or None.
        checkpoint_writer: (path, model, meta) -> None; default :func:`default_checkpoint_writer`
            (whatever it writes lands atomically).
        invalidate: called whenever the weights changed (clears cached descriptors).
        settings: the run's settings by option name, stored with the state and compared on a
            resume (default: the optimisation section's).
        resume_changed: resume under changed settings (recorded) instead of refusing.
        progress: show progress bars.
        dist: this process's place in a data-parallel run (None: one process).
    """

    def __init__(self, model: nn.Module, method: Method, config: TrainConfig, device: torch.device,
                 validator: Callable[[nn.Module], dict[str, Any]] | None = None,
                 checkpoint_writer: Callable[[Path, nn.Module, dict[str, Any]], None] | None = None,
                 invalidate: Callable[[], None] | None = None,
                 settings: Mapping[str, Any] | None = None, resume_changed: bool = False,
                 progress: bool = True, dist: Distributed | None = None) -> None:
        config.check()
        optim = config.optim
        if optim.amp == "fp16" and device.type != "cuda":
            raise ArtidError(f"--amp fp16 needs a CUDA device (got {device}); "
                             "use --amp bf16 or off")
        self.model, self.method, self.config, self.device = model, method, config, device
        self.validator = validator
        self.write_checkpoint = checkpoint_writer or default_checkpoint_writer
        self.invalidate = invalidate or (lambda: None)
        self.settings = runstate.as_json(settings if settings is not None else optim_json(optim))
        self.resume_changed, self.dist = resume_changed, dist
        self.main = dist is None or dist.is_main  # the one process that writes the run folder
        self.progress = progress and self.main
        self.train_model = model  # in DistributedDataParallel once the weights are final
        self.place = (0, 1) if dist is None else (dist.rank, dist.world)
        if dist is not None:
            dist.check(method)
        self.out_dir = Path(config.out_dir)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(optim.amp)
        if method.head is not None:
            method.head.to(device)
        if not method.train_backbone:
            for p in model.parameters():
                p.requires_grad_(False)
        self.opt = Optimisation(model, method.head, optim, config.epochs)
        select = optim.select or ""
        self.selections = [Selection(select, BEST_FILE, BEST_HEAD_FILE, loss_fallback=True)]
        for prefix in getattr(method, "select_prefixes", ()):
            name = "best_" + prefix.rstrip("_")
            self.selections.append(Selection(prefix + select, name + ".pt", name + "_head.pt"))
        self.result = TrainResult()
        self.start_epoch = 1

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.opt.optimizer

    # ----------------------------------------------------------------- state
    @property
    def state_path(self) -> Path:
        return self.out_dir / STATE_FILE

    def checkpoint_path(self, epoch: int) -> Path:
        if not self.config.keep_epochs:
            return self.out_dir / LAST_FILE
        return self.out_dir / f"epoch_{epoch:03d}.pt"

    @staticmethod
    def saved_state(out_dir: Path) -> dict[str, Any] | None:
        """The trainer state stored in ``out_dir`` (None when there is none)."""
        return runstate.read_state(out_dir)

    def resume(self) -> bool:
        """Load the trainer state of ``out_dir`` if any; whether it did (see :mod:`.resume`)."""
        return restore(self)

    # ------------------------------------------------------------------ loop
    def fit(self, resume: bool = True) -> TrainResult:
        """Train (or continue training) up to ``config.epochs`` epochs."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        resumed = resume and self.resume()
        if self.dist is not None:
            self.dist.barrier()  # every process has read the state before rank 0 writes one
            self.train_model = self.dist.wrap(self.model)
        if not resumed:
            if self.main:
                (self.out_dir / LOG_FILE).unlink(missing_ok=True)
            if self.validator is not None and getattr(self.method, "candidate_untrained", True):
                self._finish_epoch(0, {"epoch": 0, **self._validate()})  # a candidate like any
        for epoch in range(self.start_epoch, self.config.epochs + 1):
            self._run_epoch(epoch)
        main = self.selections[0]
        self.result.best_epoch = main.best_epoch
        if main.best_epoch is not None:
            self.result.best_checkpoint = self.out_dir / BEST_FILE
        if main.best_epoch == 0:
            log.warning("%s: no epoch beat the untrained model on validation %s (%.4g); %s is "
                        "the untrained model", self.method.name, main.metric, main.best_value,
                        BEST_FILE)
        return self.result

    def _validate(self) -> dict[str, Any]:
        assert self.validator is not None
        v = self.validator(self.model)
        queries = getattr(self.validator, "last_query_descriptors", None)
        v.update(self.method.validate(self.model, queries))
        return v

    def _run_epoch(self, epoch: int) -> None:
        cfg, model, method, opt = self.config, self.model, self.method, self.opt
        rng, gen = seed_epoch(cfg.optim.seed, epoch)
        ctx = EpochContext(epoch=epoch, model=model, device=self.device, rng=rng, generator=gen)
        t0 = time.perf_counter()
        method.begin_epoch(ctx)
        t_prep = time.perf_counter() - t0
        seed_epoch(cfg.optim.seed, epoch, phase=1)  # batches' randomness: not the preparation's
        model.train()
        cast(Any, model).freeze_batchnorm()  # an Embedder's method (nn.Module types it otherwise)
        if method.head is not None:
            method.head.train()
        batches = epoch_loader(method.batches(ctx), cfg.optim.seed, epoch, *self.place)
        gather = {} if self.dist is None else {"gather": self.dist.gather}
        total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
        opt.ensure_scheduler(total, method.name)
        bar = tqdm(batches, total=total, desc=f"{method.name} epoch {epoch}/{cfg.epochs}",
                   unit="batch", disable=not self.progress)
        sum_loss, n_batches, n_images, n_steps, lr = 0.0, 0, 0, 0, float("nan")
        t1 = time.perf_counter()
        opt.optimizer.zero_grad(set_to_none=True)
        for step, batch in enumerate(bar, start=1):
            with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                enabled=self.amp_dtype is not None):
                loss, n = method.loss(self.train_model, batch, self.device, **gather)
            if not torch.isfinite(loss):
                raise ArtidError(f"{method.name}: the loss became {loss.item()} at epoch {epoch}, "
                                 f"batch {step}; lower --lr (or --head-lr)")
            opt.backward(loss)
            if step % cfg.optim.accum_steps == 0 or step == total:
                if self.dist is not None:
                    self.dist.average_grads(method.head)
                lr = opt.step()
                n_steps += 1
            sum_loss += float(loss.detach())
            n_batches += 1
            n_images += n
            rate = n_images / max(time.perf_counter() - t1, 1e-9)
            bar.set_postfix(loss=f"{sum_loss / n_batches:.4f}", img_s=f"{rate:.1f}")
        bar.close()
        t_train = time.perf_counter() - t1
        if self.dist is not None:
            n_images = int(self.dist.total(n_images))
        self.invalidate()
        record: dict[str, Any] = {"epoch": epoch, "loss": sum_loss / max(n_batches, 1), "lr": lr,
                                  "steps": n_steps, "images": n_images,
                                  "images_per_s": n_images / max(t_train, 1e-9),
                                  "prepare_s": t_prep, "train_s": t_train}
        if self.validator is not None:
            t2 = time.perf_counter()
            record.update(self._validate())
            record["validate_s"] = time.perf_counter() - t2
        self._finish_epoch(epoch, record)

    def _finish_epoch(self, epoch: int, record: dict[str, Any]) -> None:
        """Checkpoint, selection, log line, then the trainer state (last: a crash before it
        redoes the epoch). The other processes of a data-parallel run only keep the record."""
        if not self.main:
            record["best_epoch"] = None
            self.result.history.append(record)
            return
        meta = {"method": self.method.name, "epoch": epoch, "config": self.config.to_json(),
                "validation": {k: v for k, v in record.items()
                               if isinstance(v, (int, float, str))}}
        path = self.checkpoint_path(epoch)
        with atomic_path(path) as tmp:
            self.write_checkpoint(tmp, self.model, meta)
        for sel in self.selections:
            sel.offer(self.out_dir, epoch, record, path, self.method.head)
        record["best_epoch"] = self.selections[0].best_epoch
        self.result.history.append(record)
        runstate.append_log(self.out_dir, record, self.method.name)
        runstate.save_state(snapshot(self, epoch), self.out_dir)
