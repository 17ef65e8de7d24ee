"""Model selection on validation GAP with the untrained model as a candidate; mixed precision as an
option."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn
from training_helpers import CPU, TinyEmbedder, embed, tiny_images, write_plain

from artid.errors import ArtidError
from artid.training.augment import train_transform
from artid.training.methods import Contrastive
from artid.training.positives import STRATEGIES
from artid.training.selection import Selection
from artid.training.trainer import BEST_FILE, TrainConfig, Trainer
from artid.training.validation import EmbeddingCache


class ScriptedValidator:
    """Returns the given validation GAP per call (epoch 0 first)."""

    def __init__(self, gaps):
        self.gaps = list(gaps)

    def __call__(self, model):
        return {"gap": self.gaps.pop(0), "acc": 0.5}


def _fit(tmp_path, gaps, model=None, spy=None, **config):
    """Train TinyEmbedder with the contrastive method; ``spy(loss)`` sees every batch's loss."""
    source, labels = tiny_images()
    cache = EmbeddingCache(source, embed)
    method = Contrastive(
        source, labels, STRATEGIES["con-syn"](), train_transform(size=12), cache, pairs_per_batch=6
    )
    if spy is not None:
        loss = method.loss

        def spied(*args):
            value, n = loss(*args)
            spy(value)
            return value, n

        method.loss = spied  # type: ignore[method-assign]
    torch.manual_seed(0)
    cfg = TrainConfig(out_dir=tmp_path, epochs=len(gaps) - 1, lr=1e-2, **config)
    trainer = Trainer(
        model or TinyEmbedder(),
        method,
        cfg,
        CPU,
        validator=ScriptedValidator(gaps) if gaps else None,
        checkpoint_writer=write_plain,
        invalidate=cache.invalidate,
        progress=False,
    )
    return trainer, trainer.fit()


def test_the_untrained_model_is_kept_when_no_epoch_beats_it(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        _, result = _fit(tmp_path, [0.30, 0.20, 0.30])  # epoch 2 only ties the untrained model
    assert result.best_epoch == 0
    assert (tmp_path / BEST_FILE).read_bytes() == (tmp_path / "epoch_000.pt").read_bytes()
    assert "untrained model" in caplog.text


def test_the_epoch_with_the_best_validation_gap_is_kept(tmp_path):
    _, result = _fit(tmp_path, [0.10, 0.30, 0.20])
    assert result.best_epoch == 1 and [r["best_epoch"] for r in result.history] == [0, 1, 1]
    assert (tmp_path / BEST_FILE).read_bytes() == (tmp_path / "epoch_001.pt").read_bytes()


def _checkpoint(folder, epoch):
    path = folder / f"epoch_{epoch:03d}.pt"
    path.write_bytes(f"weights of epoch {epoch}".encode())
    return path


def test_selection_keeps_the_highest_metric_ties_to_the_earliest(tmp_path):
    sel = Selection("gap", "best.pt", "best_head.pt")
    head = nn.Linear(2, 1)
    gaps = [0.2, 0.5, 0.5, None, 0.4, 0.7, 0.1]  # None: an epoch without the figure
    kept, best = [], []
    for epoch, g in enumerate(gaps):
        with torch.no_grad():
            head.bias.fill_(float(epoch))
        record = {"loss": 1.0} if g is None else {"gap": g, "loss": 1.0}
        kept.append(sel.offer(tmp_path, epoch, record, _checkpoint(tmp_path, epoch), head))
        best.append(sel.best_epoch)
    assert kept == [True, True, False, False, False, True, False]
    assert best == [0, 1, 1, 1, 1, 5, 5] and sel.best_value == 0.7
    assert (tmp_path / "best.pt").read_bytes() == b"weights of epoch 5"
    assert torch.load(tmp_path / "best_head.pt")["bias"].item() == 5.0
    # a resumed run continues from the saved state: 0.6 does not beat 0.7, 0.8 does
    again = Selection("gap", "best.pt", None)
    again.load(sel.state())
    assert not again.offer(tmp_path, 7, {"gap": 0.6}, _checkpoint(tmp_path, 7), None)
    assert again.offer(tmp_path, 8, {"gap": 0.8}, _checkpoint(tmp_path, 8), None)
    assert again.best_epoch == 8 and (tmp_path / "best.pt").read_bytes() == b"weights of epoch 8"


def test_without_validation_the_lowest_training_loss_is_kept(tmp_path):
    sel = Selection("gap", "best.pt", None, loss_fallback=True)
    for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.0, 1.5, 1.75]):
        sel.offer(tmp_path, epoch, {"loss": loss}, _checkpoint(tmp_path, epoch), None)
    assert sel.best_epoch == 4 and sel.best_value == -1.5
    assert (tmp_path / "best.pt").read_bytes() == b"weights of epoch 4"
    strict = Selection(
        "gap", "strict.pt", None
    )  # no fallback: a record without gap is no candidate
    assert not strict.offer(tmp_path, 0, {"loss": 1.0}, _checkpoint(tmp_path, 0), None)
    assert strict.best_epoch is None and not (tmp_path / "strict.pt").exists()


def test_the_logged_loss_is_the_mean_of_the_epochs_batch_losses(tmp_path):
    losses: list[float] = []
    _, result = _fit(tmp_path, [0.1, 0.2, 0.3], spy=lambda v: losses.append(float(v.detach())))
    per_epoch = len(losses) // 2
    assert per_epoch == result.history[1]["steps"] == 4 and len(losses) == 2 * per_epoch
    for record, batch in zip(result.history[1:], (losses[:per_epoch], losses[per_epoch:])):
        assert record["loss"] == pytest.approx(sum(batch) / len(batch), rel=1e-12)
    assert result.history[2]["loss"] < result.history[1]["loss"]  # lr 1e-2 on 12 images: it learns


def test_bf16_autocast_runs_the_forward_in_bf16_on_cpu(tmp_path):
    def run(amp, folder):
        torch.manual_seed(0)
        model, dtypes = TinyEmbedder(), set()

        def hook(module, args, output):
            if module.training:
                dtypes.add(output.dtype)

        model.trunk[0].register_forward_hook(hook)
        trainer, result = _fit(folder, [0.1, 0.2], model=model, amp=amp)
        return trainer, result.history[-1]["loss"], dtypes

    trainer, bf16_loss, bf16_types = run("bf16", tmp_path / "bf16")
    _, fp32_loss, fp32_types = run("off", tmp_path / "fp32")
    assert trainer.amp_dtype is torch.bfloat16
    assert bf16_types == {torch.bfloat16} and fp32_types == {torch.float32}
    # the same batches from the same weights: bf16 rounding moves the epoch's loss a little
    # (measured 0.677222 against 0.677180), never to something else
    assert bf16_loss != fp32_loss and bf16_loss == pytest.approx(fp32_loss, rel=1e-2)


@pytest.mark.parametrize("amp, message", [("fp16", "CUDA"), ("yes", "--amp")])
def test_bad_mixed_precision_settings_are_refused(tmp_path, amp, message):
    with pytest.raises(ArtidError, match=message):
        _fit(tmp_path, [0.1, 0.2], amp=amp)
