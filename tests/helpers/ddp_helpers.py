"""Helpers of the data-parallel tests: one tiny run per method, in this process or in N gloo
processes started as torchrun would start them (its environment variables)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
from pathlib import Path

import torch
from training_helpers import CPU, TinyEmbedder, embed, tiny_images, weights, write_plain

from artid.training.augment import train_transform
from artid.training.methods import DNet, SimSiam
from artid.training.methods.contrastive import Contrastive
from artid.training.positives import STRATEGIES
from artid.training.trainer import LOG_FILE, TrainConfig, Trainer
from artid.training.validation import EmbeddingCache, KNNValidator


class Interrupted(Exception):
    pass


def _killable(cls: type, kill_at: tuple[int, int] | None) -> type:
    class Killable(cls):  # type: ignore[misc, valid-type]
        def begin_epoch(self, ctx):
            self.epoch, self.step = ctx.epoch, 0
            super().begin_epoch(ctx)

        def loss(self, *args, **kwargs):
            self.step += 1
            if kill_at == (self.epoch, self.step):
                raise Interrupted
            return super().loss(*args, **kwargs)

    return Killable


def build(method: str, out: Path, dist=None, kill_at=None) -> Trainer:
    """A 2-epoch run of ``method`` on 12 tiny images (6 classes), global batch 6 (5 for DNet,
    which does not divide among 2 processes), random augmentation, kNN validation."""
    torch.manual_seed(0)  # the heads' and the model's initial weights: alike in every process
    source, labels = tiny_images()
    queries, query_labels = tiny_images(seed=1)
    emb = embed if dist is None else dist.sharded(embed)
    cache = EmbeddingCache(source, emb)
    aug = train_transform(size=12)
    if method == "contrastive":
        m = _killable(Contrastive, kill_at)(source, labels, STRATEGIES["con-syn+real"](), aug,
                                            cache, pairs_per_batch=6)
    elif method == "simsiam":
        m = _killable(SimSiam, kill_at)(source, aug, dim=8, images_per_batch=6)
    else:
        m = _killable(DNet, kill_at)(source, labels, 6, aug, dim=8, batch_size=5,
                                     sampling="balanced", class_weights=True)
    model = TinyEmbedder()
    validator = KNNValidator(cache, labels, queries, query_labels, emb)
    cfg = TrainConfig(out_dir=out, epochs=2, lr=1e-2, head_lr=1e-2, seed=3)
    return Trainer(model, m, cfg, CPU, validator=validator, checkpoint_writer=write_plain,
                   invalidate=cache.invalidate, progress=False, dist=dist)


def save_weights(trainer: Trainer, path: Path) -> None:
    head = trainer.method.head
    torch.save({"model": weights(trainer.model),
                "head": weights(head) if head is not None else {}}, path)


def _worker(rank: int, world: int, port: int, jobs: list) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    from artid.training.distributed import from_env

    dist = from_env("cpu")
    assert dist is not None
    try:
        for method, out, kill_at in jobs:  # one process group for all: torch loads once
            trainer = build(method, Path(out), dist, kill_at)
            try:
                trainer.fit()
            except Interrupted:  # every process stops at the same batch, as if killed
                continue
            save_weights(trainer, Path(out) / f"weights_rank{rank}.pt")
    finally:
        dist.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_processes(jobs: list[tuple[str, Path, tuple[int, int] | None]], world: int = 2,
                  timeout: float = 300) -> list[int | None]:
    """Run the jobs ``(method, run folder, kill_at)`` one after the other in ``world`` gloo
    processes; their exit codes (a job killed at ``(epoch, batch)`` stops there and the next
    one starts)."""
    ctx = mp.get_context("spawn")
    port = free_port()
    jobs = [(m, str(out), k) for m, out, k in jobs]
    procs = [ctx.Process(target=_worker, args=(r, world, port, jobs)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    for p in procs:
        if p.is_alive():  # a hung collective: end it, the test fails on its exit code
            p.kill()
            p.join()
    return [p.exitcode for p in procs]


def logged(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
