"""Spatial verification: ratio-test matches, homography inliers, the verify loop, the cache.

The fusion rule that turns inliers into class scores is tested in test_fusion.py.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scenes import _scene, _warp

from artid.extraction import local
from artid.extraction.local import FeatureCache, LocalFeatures, LocalFeatureSet, local_features
from artid.retrieval.verification import count_inliers, verify

#: A homography with rotation, shear and perspective: what a visitor's photo does to a painting.
H = np.array([[0.9, 0.08, 12.0], [-0.05, 1.05, 6.0], [2e-4, -1e-4, 1.0]])


def _project(xy: np.ndarray) -> np.ndarray:
    p = np.c_[xy, np.ones(len(xy))] @ H.T
    return (p[:, :2] / p[:, 2:]).astype(np.float32)


def _synthetic_pair(seed: int, n_in: int = 30, n_out: int = 20, n_ambiguous: int = 10):
    """Two images' features with known matches: every descriptor of ``a`` is in ``b``; the first
    ``n_in`` sit where H puts them (0.5 px noise), the next ``n_out`` anywhere else, the last
    ``n_ambiguous`` sit where H puts them but appear twice in ``b`` (the ratio test drops them)."""
    rng = np.random.default_rng(seed)
    n = n_in + n_out + n_ambiguous
    desc = rng.integers(0, 256, size=(n, 128)).astype(np.uint8)
    xy = rng.uniform(0, 400, size=(n, 2)).astype(np.float32)
    bxy = _project(xy) + rng.normal(0, 0.5, size=(n, 2)).astype(np.float32)
    elsewhere = rng.uniform(0, 400, size=(n_out, 2)).astype(np.float32)
    assert np.all(np.linalg.norm(elsewhere - bxy[n_in : n_in + n_out], axis=1) > 10)
    bxy[n_in : n_in + n_out] = elsewhere
    twice = rng.uniform(0, 400, size=(n_ambiguous, 2)).astype(np.float32)
    b = LocalFeatures(np.concatenate([bxy, twice]), np.concatenate([desc, desc[n_in + n_out :]]))
    return LocalFeatures(xy, desc), b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inliers_are_the_unambiguous_matches_one_homography_explains(seed: int) -> None:
    # 30 matches follow H, 20 go elsewhere, 10 follow H but are ambiguous: exactly 30 inliers
    # (measured: 30 for each of seeds 0..19)
    a, b = _synthetic_pair(seed)
    assert count_inliers(a, b) == 30
    assert count_inliers(b, a) >= 30 - 1  # the other way round: b's doubles match one of a's
    # the same pair with fewer matches on H: the count follows
    a, b = _synthetic_pair(seed, n_in=12, n_out=30)
    assert count_inliers(a, b) == 12


def test_warped_copy_verifies_unrelated_image_does_not() -> None:
    cv2.setNumThreads(1)
    a, b = local_features(_scene(0)), local_features(_warp(_scene(0)))
    other = local_features(_scene(1))
    # measured over scenes 0..5: 27..39 inliers with the warped copy (of 48..65 keypoints), 0 with
    # an unrelated scene (0..5 ratio-test matches); an unrelated pair can agree by chance on at
    # most a minimal sample's 4
    same, diff = count_inliers(a, b), count_inliers(a, other)
    assert same >= 30, same
    assert diff <= 4, diff
    assert count_inliers(a, a) == len(a)  # an image against itself: every keypoint


def test_no_keypoints_gives_zero_inliers() -> None:
    blank = local_features(np.full((64, 64), 7, np.uint8))
    assert len(blank) == 0
    assert count_inliers(blank, local_features(_scene(2))) == 0
    a, b = _synthetic_pair(0, n_in=3, n_out=0, n_ambiguous=0)
    assert count_inliers(a, b) == 0  # three matches: no homography


def test_verify_counts_each_query_against_its_first_neighbours() -> None:
    pairs = [_synthetic_pair(s, n_in=8 + 4 * s, n_out=10) for s in range(3)]
    queries = [a for a, _ in pairs]
    database = LocalFeatureSet.pack([b for _, b in pairs] + [LocalFeatures.empty()])
    idx = np.array([[0, 1, 3], [1, 2, 0], [2, 3, 1]])
    counts, ms = verify(idx, queries.__getitem__, database.__getitem__, top=2)
    expected = [[count_inliers(queries[q], database[int(r)]) for r in idx[q, :2]] for q in range(3)]
    assert counts.dtype == np.int64 and counts.tolist() == expected
    assert expected == [[8, 0], [12, 0], [16, 0]]  # query q matches row q only
    assert ms >= 0
    wide, _ = verify(idx, queries.__getitem__, database.__getitem__, top=10)
    assert wide.shape == (3, 3) and wide[:, :2].tolist() == expected  # K clamped to the neighbours


def test_cache_reads_back_its_file_and_recomputes_a_changed_image(tmp_path, monkeypatch) -> None:
    cv2.setNumThreads(1)
    path = tmp_path / "img.png"
    cv2.imwrite(str(path), _scene(0))
    cache = FeatureCache(tmp_path / "cache", tmp_path)
    first = cache.get("img.png")
    assert len(first) > 20 and first.desc.dtype == np.uint8
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1

    def no_extraction(*args, **kwargs):
        raise AssertionError("local features extracted again")

    with monkeypatch.context() as m:  # a later run resumes: read back, not computed
        m.setattr(local, "local_features", no_extraction)
        again = FeatureCache(tmp_path / "cache", tmp_path).get("img.png")
    np.testing.assert_array_equal(again.desc, first.desc)
    np.testing.assert_array_equal(again.xy, first.xy)
    # the file changes under the same name: the entry is not this image's, it is computed again
    cv2.imwrite(str(path), np.full((200, 200), 7, np.uint8))
    later = FeatureCache(tmp_path / "cache", tmp_path)
    assert len(later.get("img.png")) == 0 and later.recomputed == 1
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1  # rewritten in place
    # other SIFT settings are another entry
    cv2.imwrite(str(path), _scene(0))
    fewer = FeatureCache(tmp_path / "cache", tmp_path, max_keypoints=20).get("img.png")
    assert 0 < len(fewer) < len(first)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    missing = cache.get("nope.png")  # an unreadable image: no keypoint, no error, not cached
    assert len(missing) == 0 and "nope.png" in cache.unreadable
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
