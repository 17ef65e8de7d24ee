"""The learning-rate schedule does what it says: one drop halfway (or at the milestones),
warm-up, cosine."""

from __future__ import annotations

import pytest
import torch
from training_helpers import CPU, TinyEmbedder, embed, tiny_images, write_plain

from artid.errors import ArtidError
from artid.training.augment import train_transform
from artid.training.methods import Contrastive
from artid.training.positives import STRATEGIES
from artid.training.schedule import LRSchedule, lr_trace, parse_milestones
from artid.training.trainer import TrainConfig, Trainer
from artid.training.validation import EmbeddingCache


class RecordingLR(Contrastive):
    """Contrastive that records the backbone's learning rate at every batch, per epoch."""

    def begin_epoch(self, ctx):
        self.lrs.append([])
        super().begin_epoch(ctx)

    def loss(self, model, batch, device):
        self.lrs[-1].append(self.optimizer.param_groups[0]["lr"])
        return super().loss(model, batch, device)


@pytest.mark.parametrize("epochs", [3, 4])
def test_the_trainer_drops_the_lr_exactly_once(tmp_path, epochs):
    source, labels = tiny_images()
    cache = EmbeddingCache(source, embed)
    method = RecordingLR(
        source, labels, STRATEGIES["con-syn"](), train_transform(size=12), cache, pairs_per_batch=6
    )
    method.lrs = []
    torch.manual_seed(0)
    trainer = Trainer(
        TinyEmbedder(),
        method,
        TrainConfig(out_dir=tmp_path, epochs=epochs, lr=1e-2),
        CPU,
        checkpoint_writer=write_plain,
        invalidate=cache.invalidate,
    )
    method.optimizer = trainer.optimizer
    trainer.fit()
    flat = [lr for epoch in method.lrs for lr in epoch]
    drops = [i for i in range(1, len(flat)) if flat[i] != flat[i - 1]]
    assert len(drops) == 1 and flat[0] == 1e-2 and flat[-1] == pytest.approx(1e-3)
    assert drops[0] == pytest.approx(len(flat) / 2, abs=1)  # halfway through the optimiser steps


def test_milestones_warmup_and_cosine():
    trace = lr_trace(LRSchedule(milestones=(1, 2)), epochs=3, steps=4)
    assert [e[0] for e in trace] == pytest.approx([1, 0.1, 0.01])
    warm = [lr for e in lr_trace(LRSchedule(warmup_steps=3), epochs=2, steps=4) for lr in e]
    assert warm[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0]) and warm[-1] == pytest.approx(0.1)
    cos = [lr for e in lr_trace(LRSchedule(kind="cosine"), epochs=2, steps=5) for lr in e]
    assert cos[0] == 1 and all(a > b for a, b in zip(cos, cos[1:])) and cos[-1] < 0.05


def test_bad_schedule_settings_name_the_option():
    with pytest.raises(ArtidError, match="--lr-milestones"):
        LRSchedule(milestones=(5,)).check(epochs=3)
    with pytest.raises(ArtidError, match="--lr-milestones"):
        parse_milestones("5,x")
    with pytest.raises(ArtidError, match="--lr-schedule"):
        LRSchedule(kind="linear").check(epochs=3)
    assert parse_milestones("8,5") == (5.0, 8.0)
