"""The verify loop's matcher: the same ratio-test matches and inliers as OpenCV's brute-force
matcher, and the counts that cannot matter left out."""

from __future__ import annotations

import cv2
import numpy as np
from scenes import _scene, _warp

from artid.extraction.local import LocalFeatures, LocalFeatureSet, local_features
from artid.retrieval.verification import (
    RATIO,
    VerifyTiming,
    count_inliers,
    ratio_matches,
    verify,
    verify_query,
)


def _cv_matches(a: LocalFeatures, b: LocalFeatures) -> list[tuple[int, int]]:
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(
        a.desc.astype(np.float32), b.desc.astype(np.float32), k=2
    )
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    return [(m.queryIdx, m.trainIdx) for m in good]


def _images() -> list[LocalFeatures]:
    scenes = [_scene(s) for s in range(4)]
    return [local_features(x) for x in scenes] + [local_features(_warp(x)) for x in scenes]


def test_batched_matches_are_opencvs_brute_force_matches() -> None:
    cv2.setNumThreads(1)
    feats = _images()
    rng = np.random.default_rng(0)
    # ties: a descriptor twice in the database image (OpenCV: equal distances, the test fails)
    twin = LocalFeatures(
        np.r_[feats[0].xy, feats[0].xy[:5] + 1], np.r_[feats[0].desc, feats[0].desc[:5]]
    )
    noise = LocalFeatures(
        rng.uniform(0, 200, (60, 2)).astype(np.float32),
        rng.integers(0, 256, (60, 128)).astype(np.uint8),
    )
    rows = [*feats, twin, noise, LocalFeatures.empty(), feats[1].strongest(1)]
    for query in [*feats, twin, noise]:
        got = ratio_matches(query, rows)
        for row, (qi, ti) in zip(rows, got):
            expected = _cv_matches(query, row) if len(row) >= 2 else []
            assert list(zip(qi.tolist(), ti.tolist())) == expected
        assert verify_query(query, rows).tolist() == [count_inliers(query, r) for r in rows]


def test_counts_below_the_floor_read_zero_and_the_rest_are_unchanged() -> None:
    cv2.setNumThreads(1)
    feats = _images()
    database = LocalFeatureSet.pack(feats)
    idx = np.array([[4, 1, 2, 3, 0], [0, 5, 6, 7, 1]])
    queries = [feats[0], feats[1]]
    full, _ = verify(idx, queries.__getitem__, database.__getitem__, top=5)
    timing = VerifyTiming()
    floored, _ = verify(
        idx, queries.__getitem__, database.__getitem__, top=5, min_inliers=20, timing=timing
    )
    # each scene verifies its warped copy only, and itself with every keypoint
    assert full[0, 0] >= 20 and full[1, 1] >= 20 and full[1, 0] == 0
    assert np.array_equal(floored, np.where(full >= 20, full, 0))
    assert timing.pairs == 10 and timing.homographies < 10 and len(timing.per_query) == 2
