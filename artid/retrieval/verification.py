"""Spatial verification: how surely two photos show the same flat artwork, and the one verify loop.

Two images' local features (:mod:`artid.extraction.local`) are matched with Lowe's ratio test, then
``cv2.findHomography(..., cv2.USAC_MAGSAC)`` keeps the matches one homography explains; the number
of
these inliers is the evidence. :func:`verify` counts it between each query and its first K global
neighbours: evaluation and the service both re-rank through it (:mod:`artid.retrieval.rerank`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np
from tqdm import tqdm

from artid.extraction.local import LocalFeatures

#: Lowe's ratio test threshold.
RATIO = 0.8
#: MAGSAC reprojection threshold in pixels (images at most ``DEFAULT_SIZE`` px on the longer side).
REPROJ_THRESHOLD = 4.0

# : Row -> local features (a :class:`~artid.extraction.local.LocalFeatureSet`, a list, a cache
# lookup).
Features = Callable[[int], LocalFeatures]


def count_inliers(
    a: LocalFeatures, b: LocalFeatures, ratio: float = RATIO, threshold: float = REPROJ_THRESHOLD
) -> int:
    """Inliers of a MAGSAC homography between ratio-test matches of two images (0 below 4
    matches)."""
    if len(a) < 2 or len(b) < 2:
        return 0
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    pairs = matcher.knnMatch(a.desc.astype(np.float32), b.desc.astype(np.float32), k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    if len(good) < 4:
        return 0
    src = a.xy[[m.queryIdx for m in good]].reshape(-1, 1, 2)
    dst = b.xy[[m.trainIdx for m in good]].reshape(-1, 1, 2)
    try:
        h, mask = cv2.findHomography(
            src, dst, cv2.USAC_MAGSAC, threshold, maxIters=2000, confidence=0.999
        )
    except cv2.error:
        return 0
    if h is None or mask is None:
        return 0
    return int(mask.sum())


def verify(
    idx: np.ndarray, queries: Features, database: Features, top: int, progress: bool = False
) -> tuple[np.ndarray, float]:
    """Inlier counts between each query and its first ``top`` neighbours.

    Args:
        idx: (Q, M) database rows of each query's global neighbours, nearest first.
        queries: query row -> its local features.
        database: database row -> its local features.
        top: K, the neighbours verified (at most M).
        progress: show a progress bar.

    Returns:
        (Q, min(top, M)) int64 counts, and the milliseconds per query it took.
    """
    top = min(top, idx.shape[1])
    out = np.zeros((idx.shape[0], top), dtype=np.int64)
    t = time.perf_counter()
    for q in tqdm(
        range(idx.shape[0]),
        desc=f"verifying top {top}",
        unit="query",
        disable=not progress,
        leave=False,
    ):
        fq = queries(q)
        for j in range(top):
            out[q, j] = count_inliers(fq, database(int(idx[q, j])))
    ms = 1000 * (time.perf_counter() - t) / max(idx.shape[0], 1)
    return out, ms
