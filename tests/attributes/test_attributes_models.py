"""The attribute models' parts on tiny arrays: kNN label transfer, heads, class weights,
multi-class metrics, fine-tuning on the training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from artid.attributes.finetune import FinetuneSettings
from artid.attributes.head import (
    HeadSettings,
    balanced_pos_weight,
    class_weights,
    head_logits,
    train_head,
)
from artid.attributes.knn_transfer import transfer_scores, tune_transfer_temperature
from artid.attributes.multiclass import multiclass_metrics
from artid.errors import ArtidError
from artid.metrics.multilabel import ranking_metrics


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_transfer_scores_equal_a_brute_force_vote():
    rng = np.random.default_rng(0)
    db, q = _unit(rng.normal(size=(30, 8))), _unit(rng.normal(size=(7, 8)))
    labels = (rng.random((30, 5)) < 0.3).astype(np.uint8)
    got = transfer_scores(q, db, labels, k=4, tau=0.1)
    for i in range(len(q)):
        sims = db @ q[i]
        top = np.argsort(-sims)[:4]
        w = np.exp(sims[top] / 0.1)
        w /= w.sum()
        np.testing.assert_allclose(got[i], w @ labels[top], rtol=1e-5, atol=1e-6)
    assert got.min() >= 0 and got.max() <= 1 + 1e-6


def _matrix_product_vote(q, db, labels, k, tau):
    """Label transfer as it was before it used the project's exact search."""
    sims = q @ db.T
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(sims, top, axis=1) / tau
    w = np.exp(s - s.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return np.einsum("qk,qkl->ql", w, labels[top].astype(np.float32))


@pytest.mark.parametrize("k, tau", [(1, 0.05), (10, 0.01), (10, 0.5), (25, 1.0)])
def test_transfer_through_faiss_equals_the_matrix_product_vote(k, tau):
    rng = np.random.default_rng(k)
    db = _unit(rng.normal(size=(500, 32))).astype(np.float32)
    q = _unit(rng.normal(size=(300, 32))).astype(np.float32)
    labels = (rng.random((500, 12)) < 0.2).astype(np.uint8)
    got = transfer_scores(q, db, labels, k=k, tau=tau)
    np.testing.assert_allclose(got, _matrix_product_vote(q, db, labels, k, tau), atol=1e-5)


def test_small_temperature_copies_the_nearest_neighbour_and_k_is_capped():
    rng = np.random.default_rng(1)
    db = _unit(rng.normal(size=(6, 4)))
    labels = np.eye(6, dtype=np.uint8)
    q = _unit(db + 0.01 * rng.normal(size=db.shape))
    np.testing.assert_allclose(transfer_scores(q, db, labels, k=50, tau=1e-4), labels, atol=1e-4)


def test_tune_transfer_temperature_prefers_the_sharp_vote_when_neighbours_disagree():
    rng = np.random.default_rng(2)
    db = _unit(rng.normal(size=(40, 16)))
    labels = (rng.random((40, 6)) < 0.3).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    q = _unit(db[:20] + 0.05 * rng.normal(size=(20, 16)))  # each query near one database image
    tau, grid = tune_transfer_temperature(q, labels[:20], db, labels, k=10, taus=(10.0, 0.001))
    assert tau == 0.001 and [g["tau"] for g in grid] == [0.001, 10.0]
    assert grid[0]["f2"] > grid[1]["f2"]


def test_tune_transfer_temperature_ties_go_to_the_smaller_tau():
    rng = np.random.default_rng(4)
    db = _unit(rng.normal(size=(30, 8)))
    labels = (rng.random((30, 4)) < 0.4).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    q = _unit(db[:10] + 0.1 * rng.normal(size=(10, 8)))
    tau, grid = tune_transfer_temperature(q, labels[:10], db, labels, k=1, taus=(0.5, 0.2, 1.0))
    assert len({g["f2"] for g in grid}) == 1  # one neighbour: every tau gives the same scores
    assert tau == 0.2


def test_transfer_scores_refuses_mismatched_shapes():
    with pytest.raises(ArtidError):
        transfer_scores(np.ones((2, 3)), np.ones((4, 5)), np.ones((4, 2)))
    with pytest.raises(ArtidError):
        transfer_scores(np.ones((2, 3)), np.ones((4, 3)), np.ones((4, 2)), tau=0)


def test_linear_and_mlp_heads_learn_a_separable_multilabel_problem():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0, x[:, 3] < -0.5], 1).astype(np.uint8)
    for hidden in (0, 16):
        head = train_head(x, y, HeadSettings(hidden=hidden, epochs=60, batch_size=32))
        assert ranking_metrics(y, head_logits(head, x)).auc_roc_macro > 0.95


def test_multiclass_head_with_class_weights():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(90, 4)).astype(np.float32)
    codes = np.argmax(x[:, :3], axis=1)
    w = class_weights(codes, 4)  # class 3 absent
    head = train_head(x, codes, HeadSettings(epochs=80), multiclass=True, n_classes=4, weights=w)
    assert head_logits(head, x).shape == (90, 4)
    assert np.mean(np.argmax(head_logits(head, x), 1) == codes) > 0.9


def test_class_weights_equal_scikit_learns_balanced_weights():
    codes = np.array([0, 0, 0, 1, 2, 2])
    w = class_weights(codes, 4)
    np.testing.assert_allclose(
        w[:3], compute_class_weight("balanced", classes=np.arange(3), y=codes), rtol=1e-6
    )
    assert w[3] == 0


def test_balanced_pos_weight_is_negatives_over_positives_capped():
    y = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]])
    np.testing.assert_allclose(balanced_pos_weight(y, cap=10), [3.0, 10.0, 1.0])


def test_multiclass_metrics_on_a_hand_checked_case():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.5, 0.4, 0.1]])
    codes = np.array([0, 1, 1, 1])
    m = multiclass_metrics(codes, probs)
    assert m["top1"] == pytest.approx(0.5)
    assert m["top5"] == 1.0  # three classes: every class is in the top 5
    # predictions 0, 2, 1, 0: class 0 precision 1/2 recall 1; class 1 precision 1 recall 1/3
    assert m["precision_macro"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["recall_macro"] == pytest.approx((1.0 + 1 / 3) / 2)
    # class 0: its one positive (0.7) above all three negatives;
    # class 1: 0.3, 0.5, 0.4 vs 0.2 -> 1.0
    assert m["roc_auc_macro"] == pytest.approx(1.0)


def test_settings_refuse_nonsense():
    with pytest.raises(ArtidError, match="alpha"):
        FinetuneSettings(loss="focal", pos_weight="balanced")
    with pytest.raises(ArtidError):
        FinetuneSettings(loss="hinge")
    with pytest.raises(ArtidError):
        HeadSettings(pos_weight="sometimes")


def test_finetuning_runs_on_the_training_loop_resumes_and_refuses_changed_settings(tmp_path):
    import json
    from dataclasses import replace

    from PIL import Image

    from artid.attributes.finetune import finetune, load_finetuned
    from artid.attributes.network import predict_logits

    rng = np.random.default_rng(0)
    paths = []
    for i in range(8):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(paths[-1])
    y = np.array([[1, 0, 1], [0, 1, 0]] * 4)
    run = tmp_path / "ft"
    s = FinetuneSettings(
        model="random:resnet18", size=32, epochs=1, batch_size=4, step_size=1, device="cpu"
    )
    finetune(s, run, (paths, y), (paths, y), progress=False)
    assert {"best.pt", "last.pt", "trainer_state.pt"} <= {p.name for p in run.iterdir()}
    assert not (run / "epoch_001.pt").exists()  # only the last and the best network are kept
    more = replace(s, epochs=2)  # more epochs train further, on the schedule of 2 epochs
    net = finetune(more, run, (paths, y), (paths, y), progress=False)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and all("auc_pr_micro" in r for r in log)
    assert [r["lr"] for r in log] == pytest.approx([0.01, 0.001])  # x0.1 every epoch
    with pytest.raises(ArtidError, match=r"--lr 0\.01 -> 0\.5"):
        finetune(replace(more, lr=0.5), run, (paths, y), (paths, y), progress=False)
    best = load_finetuned(more, run, 3)
    x = predict_logits(best, paths, 32)
    assert x.shape == (8, 3) and np.allclose(x, predict_logits(net, paths, 32), atol=1e-5)
