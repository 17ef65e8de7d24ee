"""SIFT bag-of-words + RBF SVM (seed 003's baseline) end to end on tiny generated textures."""

import json
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from artid.attributes.bow import BowSvm, Vocabulary
from artid.attributes.rbf_ovr import RbfOvr
from artid.attributes.sift import sift_descriptors
from artid.errors import ArtidError
from artid.metrics.multilabel import ranking_metrics

BLANK = np.full((64, 64), 128, np.uint8)


@pytest.fixture(autouse=True)
def one_thread():
    """One BLAS / OpenMP thread: on these tiny problems threads cost more than they save."""
    with threadpool_limits(1):
        yield


def _texture(kind: int, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Kind 0: line segments (edges, corners); kind 1: filled discs (blobs); random places and polarity."""
    img = BLANK.copy() if size == 64 else np.full((size, size), 128, np.uint8)
    for _ in range(12):
        x, y = (int(v) for v in rng.integers(4, size - 4, 2))
        r, c = int(rng.integers(2, 5)), int(rng.choice([0, 255]))
        if kind == 0:
            dx, dy = (int(v) for v in rng.integers(-12, 13, 2))
            cv2.line(img, (x, y), (x + dx, y + dy), c, 2)
        else:
            cv2.circle(img, (x, y), r, c, -1)
    return img


def _multilabel_images(n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Label k present: the k-th half of the image holds texture k; otherwise that half is flat grey."""
    y = rng.random((n, 2)) < 0.5
    images = [np.hstack([_texture(k, rng) if row[k] else BLANK for k in (0, 1)]) for row in y]
    return images, y.astype(int)


def test_sift_on_arrays_files_and_blank_images(tmp_path) -> None:
    rng = np.random.default_rng(0)
    img = _texture(0, rng)
    desc = sift_descriptors(img)
    assert desc.dtype == np.float32 and desc.ndim == 2 and desc.shape[1] == 128 and len(desc) > 0
    assert sift_descriptors(BLANK).shape == (0, 128)  # no keypoint: empty, not a crash
    path = tmp_path / "t.png"
    Image.fromarray(np.dstack([img] * 3)).save(path)
    np.testing.assert_allclose(sift_descriptors(path), sift_descriptors(np.dstack([img] * 3)))
    with pytest.raises(ArtidError, match="uint8"):
        sift_descriptors(np.zeros((8, 8), np.float32))
    with pytest.raises(ArtidError, match="not found"):
        sift_descriptors(tmp_path / "missing.png")


def test_vocabulary_histograms_are_l1_normalised_and_empty_for_no_keypoint() -> None:
    rng = np.random.default_rng(1)
    desc = [sift_descriptors(_texture(k % 2, rng)) for k in range(6)]
    voc = Vocabulary.fit(desc, size=8)
    hist = voc.histograms(desc + [np.zeros((0, 128), np.float32)])
    assert hist.shape == (7, 8)
    np.testing.assert_allclose(hist[:6].sum(1), 1.0)
    assert not hist[6].any()
    with pytest.raises(ArtidError, match="at least 10000 descriptors"):
        Vocabulary.fit(desc, size=10000)
    with pytest.raises(ArtidError, match="no SIFT keypoint"):
        Vocabulary.fit([np.zeros((0, 128), np.float32)], size=2)


@pytest.mark.parametrize("gamma", ["scale", "auto", 0.7])
def test_rbf_ovr_reproduces_sklearn_decision_function(gamma) -> None:
    rng = np.random.default_rng(2)
    x = rng.random((30, 5))
    y = (x[:, :3] + 0.3 * rng.random((30, 3)) > 0.6).astype(int)
    y[:, 2] = 0  # a label constant in training
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ovr = OneVsRestClassifier(SVC(kernel="rbf", C=3.0, gamma=gamma)).fit(x, y)
    ours = RbfOvr.from_sklearn(ovr, x)
    x_new = rng.random((7, 5))
    np.testing.assert_allclose(ours.decision_function(x_new), ovr.decision_function(x_new), atol=1e-9)
    again = RbfOvr.from_arrays(ours.arrays())
    np.testing.assert_allclose(again.decision_function(x_new), ours.decision_function(x_new))


def test_bow_svm_multilabel_learns_above_chance_and_round_trips(tmp_path) -> None:
    rng = np.random.default_rng(3)
    train_x, train_y = _multilabel_images(40, rng)
    test_x, test_y = _multilabel_images(30, rng)
    model = BowSvm(vocabulary_size=16, grid={"C": [1.0, 10.0], "gamma": ["scale", "auto"]}, cv=2)
    model.fit(train_x, train_y)
    scores = model.decision_scores(test_x + [BLANK])  # an image without keypoints is scored too
    assert scores.shape == (31, 2)
    metrics = ranking_metrics(test_y, scores[:30])
    assert metrics.auc_roc_macro > 0.75  # chance is 0.5
    assert set(model.search["best_params"]) == {"C", "gamma"} and len(model.search["results"]) == 4

    loaded = BowSvm.load(model.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.decision_scores(test_x[:5]), scores[:5])
    assert loaded.multilabel and loaded.classes == [0, 1]
    assert "bow_svm.npz" in {p.name for p in (tmp_path / "m").iterdir()}


def test_bow_svm_multiclass_top1_above_chance() -> None:
    rng = np.random.default_rng(4)
    kinds = np.array(["lines", "discs"])
    train_k, test_k = rng.integers(0, 2, 30), rng.integers(0, 2, 30)
    model = BowSvm(vocabulary_size=16, grid={"C": [1.0, 10.0], "gamma": ["scale"]}, cv=2)
    model.fit([_texture(int(k), rng) for k in train_k], kinds[train_k])
    assert model.classes == ["discs", "lines"] and not model.multilabel
    scores = model.decision_scores([_texture(int(k), rng) for k in test_k])
    predicted = np.array(model.classes)[scores.argmax(1)]
    assert np.mean(predicted == kinds[test_k]) > 0.75


def test_bow_svm_bad_input_and_bad_files_raise_artid_error(tmp_path) -> None:
    model = BowSvm(vocabulary_size=4)
    with pytest.raises(ArtidError, match="fit"):
        model.decision_scores([BLANK])
    with pytest.raises(ArtidError, match="label rows"):
        model.fit([BLANK, BLANK], np.zeros((3, 2)))
    with pytest.raises(ArtidError, match="0/1"):
        model.fit_histograms(np.zeros((4, 4)), np.full((4, 2), 3))
    with pytest.raises(ArtidError, match="not a saved BowSvm"):
        BowSvm.load(tmp_path)
    (tmp_path / "bow_svm.json").write_text(json.dumps({"format": "other"}))
    np.savez(tmp_path / "bow_svm.npz", x=np.zeros(1))
    with pytest.raises(ArtidError, match="format version"):
        BowSvm.load(tmp_path)
