"""The training loop on tiny in-memory data with a stand-in embedder that has the Embedder API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from training_helpers import CPU, TinyEmbedder, tiny_images, write_plain
from training_helpers import embed as _embed
from training_helpers import weights as _weights

from artid.errors import ArtidError
from artid.training.augment import train_transform
from artid.training.data import ClassBalancedSampler
from artid.training.methods import Contrastive, DNet, SimSiam
from artid.training.positives import STRATEGIES
from artid.training.trainer import BEST_FILE, LOG_FILE, TrainConfig, Trainer
from artid.training.validation import EmbeddingCache, KNNValidator, init_projector_from_whitening


def make_contrastive(strategy="con-syn+real-closest"):
    source, labels = tiny_images()
    cache = EmbeddingCache(source, _embed)
    method = Contrastive(
        source, labels, STRATEGIES[strategy](), train_transform(size=12), cache, pairs_per_batch=4
    )
    return method, cache


def run(
    tmp: Path,
    method,
    cache,
    epochs: int,
    model=None,
    seed_model: int = 0,
    lr: float = 1e-2,
    accum: int = 1,
    validator=None,
    **config,
) -> tuple[Trainer, torch.nn.Module]:
    torch.manual_seed(seed_model)
    model = model or TinyEmbedder()
    cfg = TrainConfig(
        out_dir=tmp, epochs=epochs, lr=lr, head_lr=1e-2, accum_steps=accum, seed=3, **config
    )
    trainer = Trainer(
        model,
        method,
        cfg,
        CPU,
        checkpoint_writer=write_plain,
        validator=validator,
        invalidate=cache.invalidate if cache else None,
    )
    trainer.fit()
    return trainer, model


def _all_pairs_loss(model, source, labels) -> float:
    """Contrastive loss over every pair of images (no augmentation): what training should lower."""
    from artid.training.losses import contrastive_loss

    d = torch.from_numpy(_embed(model, source))
    a, b = torch.triu_indices(len(labels), len(labels), offset=1)
    y = torch.from_numpy(labels[a.numpy()] == labels[b.numpy()]).long()
    return float(contrastive_loss(d[a], d[b], y, 1.8))


def test_contrastive_training_lowers_the_loss(tmp_path):
    method, cache = make_contrastive()
    torch.manual_seed(0)
    model = TinyEmbedder()
    before = _all_pairs_loss(model, method.source, method.labels)
    trainer, _ = run(tmp_path, method, cache, epochs=4, model=model)
    assert _all_pairs_loss(model, method.source, method.labels) < 0.9 * before
    assert (tmp_path / "epoch_004.pt").is_file() and (tmp_path / BEST_FILE).is_file()
    logged = [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    assert [r["epoch"] for r in logged] == [1, 2, 3, 4]


def test_every_anchor_gets_one_positive_and_one_negative(tmp_path):
    method, cache = make_contrastive("con-syn+real")
    source, labels = tiny_images()
    pairs = method.make_pairs(_embed(TinyEmbedder(), source), np.random.default_rng(0))
    n = len(labels)
    assert pairs.shape == (2 * n, 3)
    assert sorted(pairs[:n, 0]) == list(range(n)) and sorted(pairs[n:, 0]) == list(range(n))
    assert (pairs[:n, 2] == 1).all() and (pairs[n:, 2] == 0).all()
    assert (labels[pairs[n:, 1]] != labels[pairs[n:, 0]]).all()
    real = pairs[:n][pairs[:n, 1] >= 0]
    assert (labels[real[:, 1]] == labels[real[:, 0]]).all() and (real[:, 1] != real[:, 0]).all()


def test_resume_refuses_another_method(tmp_path):
    m1, c1 = make_contrastive()
    run(tmp_path, m1, c1, epochs=1)
    source, _ = tiny_images()
    with pytest.raises(ArtidError, match="contrastive"):
        run(
            tmp_path,
            SimSiam(source, train_transform(size=12), dim=8, images_per_batch=4),
            None,
            epochs=2,
        )


def test_batchnorm_statistics_stay_frozen(tmp_path):
    method, cache = make_contrastive()
    torch.manual_seed(0)
    model = TinyEmbedder()
    before = model.trunk[1].running_mean.clone()
    run(tmp_path, method, cache, epochs=1, model=model)
    assert torch.equal(model.trunk[1].running_mean, before)


def test_simsiam_moves_the_weights_and_keeps_its_head(tmp_path):
    # on 12 tiny images SimSiam's loss is noise around 0 (seed-dependent): the test checks it trains
    source, _ = tiny_images()
    method = SimSiam(source, train_transform(size=12), dim=8, images_per_batch=4)
    torch.manual_seed(0)
    model = TinyEmbedder()
    before, head_before = _weights(model), _weights(method.head)
    trainer, _ = run(tmp_path, method, None, epochs=2, model=model)
    assert np.isfinite([r["loss"] for r in trainer.result.history]).all()
    assert not torch.equal(before["trunk.0.weight"], model.trunk[0].weight)
    assert not torch.equal(head_before["projector.0.weight"], method.head["projector"][0].weight)
    assert (tmp_path / "best_head.pt").is_file()


@pytest.mark.parametrize("loss", ["ce", "arcface"])
def test_dnet_selects_its_parametric_classifier_on_validation_gap(tmp_path, loss):
    source, labels = tiny_images()
    queries, query_labels = tiny_images(seed=1)  # validation photos of the same classes
    method = DNet(
        source,
        labels,
        6,
        train_transform(size=12),
        dim=8,
        loss=loss,
        batch_size=6,
        class_weights=True,
        sampling="balanced",
        val_labels=query_labels,
    )
    cache = EmbeddingCache(source, _embed)
    validator = KNNValidator(cache, labels, queries, query_labels, _embed)
    trainer, model = run(tmp_path, method, cache, epochs=3, validator=validator)
    history = trainer.result.history
    assert [r["epoch"] for r in history] == [0, 1, 2, 3]
    assert np.isfinite([r["loss"] for r in history[1:]]).all()
    fig = method.validate(model, _embed(model, queries))
    assert set(fig) >= {"param_acc", "param_gap", "param_gap_minus", "param_temperature"}
    assert all("param_gap" in r for r in history)
    best_param = max(range(len(history)), key=lambda e: (history[e]["param_gap"], -e))
    assert trainer.selections[1].best_epoch == best_param
    assert (tmp_path / "best_param.pt").read_bytes() == (
        tmp_path / f"epoch_{best_param:03d}.pt"
    ).read_bytes()
    assert (tmp_path / "best_param_head.pt").is_file()


def test_classifier_retraining_keeps_the_backbone_frozen(tmp_path):
    source, labels = tiny_images()
    torch.manual_seed(0)
    model = TinyEmbedder()
    before = _weights(model)
    method = DNet(
        source, labels, 6, train_transform(size=12), dim=8, batch_size=6, retrain_classifier=True
    )
    trainer, _ = run(tmp_path, method, None, epochs=2, model=model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert trainer.result.history[-1]["loss"] < trainer.result.history[0]["loss"]


def test_projector_initialised_from_whitening_whitens_the_database():
    source, _ = tiny_images(n_classes=20, per_class=2)
    torch.manual_seed(0)
    model = TinyEmbedder()
    r = init_projector_from_whitening(model, source, _embed)
    assert r == 8
    # whitened (before the final L2): the pre-normalisation outputs have identity covariance
    model.eval()
    with torch.no_grad():
        x = torch.stack([source.load(i) for i in range(len(source))])
        v = F.normalize(model.pool(model.trunk(x - 0.5)).flatten(1), dim=1)
        w = model.projector(v).numpy().astype(np.float64)
    assert np.allclose(w.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(np.cov(w.T, bias=True), np.eye(8), atol=1e-3)


def test_class_balanced_sampler_draws_classes_uniformly():
    labels = np.array([0] * 8 + [1] + [2] * 3)
    s = ClassBalancedSampler(labels, num_samples=30000, generator=torch.Generator().manual_seed(0))
    drawn = labels[list(s)]
    freq = np.bincount(drawn) / drawn.size
    assert np.allclose(freq, 1 / 3, atol=0.015)
    assert len(s) == 30000


def test_the_parametric_temperature_is_the_grid_point_with_the_best_gap():
    from artid.metrics.ilr import gap
    from artid.training.validation import parametric_predict, tune_parametric_temperature

    rng = np.random.default_rng(0)
    cos = rng.uniform(-1, 1, (40, 5))
    labels = np.where(rng.random(40) < 0.7, cos.argmax(axis=1), -1)
    labels[:6] = (labels[:6] + 1) % 5  # a few wrong answers, so the ranking matters
    grid = (0.5, 2.0, 8.0, 32.0)
    t, fig = tune_parametric_temperature(cos, labels, grid=grid)
    gaps = [gap(*parametric_predict(cos, g), labels) for g in grid]
    assert t == grid[gaps.index(max(gaps))] and fig["gap"] == max(gaps)
    t, _ = tune_parametric_temperature(np.zeros((4, 3)), np.array([0, 1, -1, 2]), grid=grid)
    assert t == 0.5  # equal figures: the first temperature
