"""Model selection on validation GAP with the untrained model as a candidate; mixed precision as an option."""

from __future__ import annotations

import logging

import pytest
import torch
from training_helpers import CPU, TinyEmbedder, embed, tiny_images, write_plain

from artid.errors import ArtidError
from artid.training.augment import train_transform
from artid.training.methods import Contrastive
from artid.training.positives import STRATEGIES
from artid.training.trainer import BEST_FILE, TrainConfig, Trainer
from artid.training.validation import EmbeddingCache


class ScriptedValidator:
    """Returns the given validation GAP per call (epoch 0 first)."""

    def __init__(self, gaps):
        self.gaps = list(gaps)

    def __call__(self, model):
        return {"gap": self.gaps.pop(0), "acc": 0.5}


def _fit(tmp_path, gaps, **config):
    source, labels = tiny_images()
    cache = EmbeddingCache(source, embed)
    method = Contrastive(source, labels, STRATEGIES["con-syn"](), train_transform(size=12), cache, pairs_per_batch=6)
    torch.manual_seed(0)
    cfg = TrainConfig(out_dir=tmp_path, epochs=len(gaps) - 1, lr=1e-2, **config)
    trainer = Trainer(TinyEmbedder(), method, cfg, CPU, validator=ScriptedValidator(gaps) if gaps else None,
                      checkpoint_writer=write_plain, invalidate=cache.invalidate)
    return trainer, trainer.fit()


def test_the_untrained_model_is_kept_when_no_epoch_beats_it(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        _, result = _fit(tmp_path, [0.30, 0.20, 0.30])           # epoch 2 only ties the untrained model
    assert result.best_epoch == 0
    assert (tmp_path / BEST_FILE).read_bytes() == (tmp_path / "epoch_000.pt").read_bytes()
    assert "untrained model" in caplog.text


def test_the_epoch_with_the_best_validation_gap_is_kept(tmp_path):
    _, result = _fit(tmp_path, [0.10, 0.30, 0.20])
    assert result.best_epoch == 1 and [r["best_epoch"] for r in result.history] == [0, 1, 1]
    assert (tmp_path / BEST_FILE).read_bytes() == (tmp_path / "epoch_001.pt").read_bytes()


def test_bf16_autocast_trains_on_cpu(tmp_path):
    trainer, result = _fit(tmp_path, [0.1, 0.2], amp="bf16")
    assert trainer.amp_dtype is torch.bfloat16 and result.history[-1]["loss"] == result.history[-1]["loss"]


@pytest.mark.parametrize("amp, message", [("fp16", "CUDA"), ("yes", "--amp")])
def test_bad_mixed_precision_settings_are_refused(tmp_path, amp, message):
    with pytest.raises(ArtidError, match=message):
        _fit(tmp_path, [0.1, 0.2], amp=amp)
