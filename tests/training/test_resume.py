"""An interrupted training run, resumed, reproduces the uninterrupted run bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from training_helpers import CPU, TinyEmbedder, embed, tiny_images, weights, write_plain

from artid.errors import ArtidError
from artid.training.augment import train_transform
from artid.training.methods import Contrastive
from artid.training.positives import STRATEGIES
from artid.training.trainer import LOG_FILE, TrainConfig, Trainer
from artid.training.validation import EmbeddingCache, KNNValidator


class Interrupted(Exception):
    pass


class Killable(Contrastive):
    """Contrastive that dies at the given (epoch, batch), like a process killed mid-epoch."""

    kill_at: tuple[int, int] | None = None

    def begin_epoch(self, ctx):
        self.epoch, self.step = ctx.epoch, 0
        super().begin_epoch(ctx)

    def loss(self, model, batch, device):
        self.step += 1
        if self.kill_at == (self.epoch, self.step):
            raise Interrupted
        return super().loss(model, batch, device)


def _trainer(out, kill_at=None, seed_model=0):
    source, labels = tiny_images()
    queries, query_labels = tiny_images(seed=1)  # same classes, other noise: validation photos
    cache = EmbeddingCache(source, embed)
    method = Killable(
        source,
        labels,
        STRATEGIES["con-syn+real"](),
        train_transform(size=12),
        cache,
        pairs_per_batch=4,
    )
    method.kill_at = kill_at
    validator = KNNValidator(cache, labels, queries, query_labels, embed)
    torch.manual_seed(seed_model)
    model = TinyEmbedder()
    cfg = TrainConfig(out_dir=out, epochs=3, lr=1e-2, head_lr=1e-2, seed=3)
    return Trainer(
        model,
        method,
        cfg,
        CPU,
        validator=validator,
        checkpoint_writer=write_plain,
        invalidate=cache.invalidate,
    ), model


def _logged(out):
    return [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]


@pytest.mark.parametrize("kill_at", [(2, 3), (1, 2), (3, 1)])  # mid-epoch, and at an epoch boundary
def test_a_run_killed_mid_epoch_and_resumed_equals_an_uninterrupted_one(tmp_path, kill_at):
    full, full_model = _trainer(tmp_path / "full")
    full.fit()
    killed, _ = _trainer(tmp_path / "split", kill_at=kill_at)
    with pytest.raises(Interrupted):
        killed.fit()
    resumed, resumed_model = _trainer(
        tmp_path / "split", seed_model=99
    )  # a new process, another init
    resumed.fit()
    a, b = weights(full_model), weights(resumed_model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    la, lb = _logged(tmp_path / "full"), _logged(tmp_path / "split")
    assert [r["epoch"] for r in lb] == [r["epoch"] for r in la]
    for ra, rb in zip(la, lb):
        assert ra.get("loss") == rb.get("loss") and ra["gap"] == rb["gap"], (ra, rb)
    assert np.isfinite([r["loss"] for r in la[1:]]).all()


def _lr_trainer(out, epochs=2, **kw):
    source, labels = tiny_images()
    cache = EmbeddingCache(source, embed)
    method = Contrastive(
        source, labels, STRATEGIES["con-syn"](), train_transform(size=12), cache, pairs_per_batch=6
    )
    torch.manual_seed(0)
    cfg = TrainConfig(out_dir=out, epochs=epochs, lr=kw.pop("lr", 1e-2), seed=3, **kw)
    return Trainer(
        TinyEmbedder(), method, cfg, CPU, checkpoint_writer=write_plain, invalidate=cache.invalidate
    )


def test_resuming_with_a_changed_setting_is_refused_naming_each_change(tmp_path):
    first = _lr_trainer(tmp_path, epochs=2)
    first.fit()
    saved = (tmp_path / LOG_FILE).read_text()
    again = _lr_trainer(tmp_path, epochs=3, lr=1e-3, weight_decay=0.0)
    with pytest.raises(ArtidError) as err:
        again.fit()
    message = str(err.value)
    assert "--lr 0.01 -> 0.001" in message and "--weight-decay 1e-06 -> 0.0" in message
    assert "--epochs 2 -> 3" in message and "--head-lr" not in message
    assert (tmp_path / LOG_FILE).read_text() == saved  # nothing of the run was touched


def test_resume_changed_continues_under_the_new_settings_and_records_the_change(tmp_path):
    _lr_trainer(tmp_path, epochs=2).fit()
    changed = _lr_trainer(tmp_path, epochs=3, lr=1e-3)
    changed.resume_changed = True
    result = changed.fit()
    assert result.changes == [
        {"after_epoch": 2, "changed": {"epochs": [2, 3], "lr": [0.01, 0.001]}}
    ]
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    # the new rate, on the schedule of 3 epochs moved past the 2 epochs done: dropped at 1.5 epochs
    assert result.history[-1]["lr"] == pytest.approx(1e-4)
    again = _lr_trainer(tmp_path, epochs=3, lr=1e-3)  # the run's settings are now the new ones
    assert again.fit().changes == result.changes and len(again.result.history) == 3
