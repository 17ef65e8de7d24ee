"""Spatial verification re-ranking: homography inliers and the fusion rule."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from artid.extraction.local import FeatureCache, local_features
from artid.retrieval.fusion import fuse, tune_fusion
from artid.retrieval.knn import KNNClassifier
from artid.retrieval.verification import count_inliers


def _scene(seed: int, size: int = 200) -> np.ndarray:
    """A grey image of random rectangles and circles (plenty of corners for SIFT)."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 128, np.uint8)
    for _ in range(40):
        x, y = rng.integers(0, size, 2)
        w, h = rng.integers(8, 40, 2)
        colour = int(rng.integers(0, 256))
        if rng.random() < 0.5:
            cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
        else:
            cv2.circle(img, (int(x), int(y)), int(w // 2), colour, -1)
    return img


def _warp(img: np.ndarray) -> np.ndarray:
    s = img.shape[0]
    src = np.float32([[0, 0], [s, 0], [s, s], [0, s]])
    dst = np.float32([[12, 6], [s - 20, 14], [s - 6, s - 10], [8, s - 24]])
    return cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (s, s), borderValue=128)


def test_warped_copy_verifies_unrelated_image_does_not(tmp_path) -> None:
    cv2.setNumThreads(1)
    a, b, other = local_features(_scene(0)), local_features(_warp(_scene(0))), local_features(_scene(1))
    same, diff = count_inliers(a, b), count_inliers(a, other)
    assert same >= 30, same
    assert diff <= 8, diff
    assert same > 4 * max(diff, 1)
    # the cache returns the same features, from disk the second time
    path = tmp_path / "img.png"
    cv2.imwrite(str(path), _scene(0))
    cache = FeatureCache(tmp_path / "cache", tmp_path)
    first = cache.get("img.png")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    again = cache.get("img.png")
    np.testing.assert_array_equal(first.desc, again.desc)
    assert len(first) > 20 and first.desc.dtype == np.uint8


def test_no_keypoints_gives_zero_inliers() -> None:
    blank = local_features(np.full((64, 64), 7, np.uint8))
    assert len(blank) == 0
    assert count_inliers(blank, local_features(_scene(2))) == 0


@pytest.mark.parametrize("top", [3, 8])
def test_fusion_with_zero_weight_reproduces_the_global_answer(top: int) -> None:
    rng = np.random.default_rng(0)
    db = rng.normal(size=(60, 16)).astype(np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    labels = rng.integers(0, 12, 60)
    q = rng.normal(size=(25, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    clf = KNNClassifier(db, labels, use_gpu=False)
    sims, idx = clf.search(q, 10, progress=False)
    inliers = rng.integers(0, 60, size=(25, top))
    ref = clf.classify(sims, idx, 5, 20.0)
    got = fuse(sims, idx, labels, inliers, 5, 20.0, clf.n_classes, w=0.0)
    np.testing.assert_array_equal(got.pred, ref.pred)
    np.testing.assert_array_equal(got.score, ref.score)
    # a bonus to a verified runner-up changes the answer; to the top class it raises the score
    boosted = fuse(sims, idx, labels, inliers, 5, 20.0, clf.n_classes, w=1.0, min_inliers=0)
    assert not np.array_equal(boosted.score, ref.score)
    only_top = np.zeros_like(inliers)
    only_top[:, 0] = 50
    up = fuse(sims, idx, labels, only_top, 5, 20.0, clf.n_classes, w=0.3, min_inliers=10)
    np.testing.assert_array_equal(up.pred, ref.pred)
    assert np.all(up.score > ref.score)
    choice = tune_fusion(sims, idx, labels, inliers, labels[idx[:, 0]], 5, clf.n_classes, (20.0,))
    assert choice.val_gap == pytest.approx(1.0)
