"""Spatial verification: how surely two photos show the same flat artwork, and the one verify loop.

Two images' local features (:mod:`artid.extraction.local`) are matched with Lowe's ratio test, then
``cv2.findHomography(..., cv2.USAC_MAGSAC)`` keeps the matches one homography explains; the number
of these inliers is the evidence. :func:`verify` counts it between each query and its first K
global neighbours: evaluation and the service both re-rank through it
(:mod:`artid.retrieval.rerank`).

:func:`verify` matches a query against all its K neighbours at once (:func:`ratio_matches`: one
matrix product and per-image minima instead of K OpenCV matcher calls), which finds exactly the
matches of :func:`count_inliers`' brute-force matcher: SIFT descriptors are whole numbers below 256,
so their float32 squared distances are exact integers (every partial sum is below 2^24). A
neighbour with fewer ratio-test matches than ``min_inliers`` cannot reach that many inliers and is
not given to MAGSAC (its count reads 0): the fused answer, which ignores counts below
``min_inliers``, is the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from artid.extraction.local import LocalFeatures

#: Lowe's ratio test threshold.
RATIO = 0.8
#: MAGSAC reprojection threshold in pixels (images at most ``DEFAULT_SIZE`` px on the longer side).
REPROJ_THRESHOLD = 4.0
#: Fewest matches a homography is fitted to.
MIN_MATCHES = 4

# : Row -> local features (a :class:`~artid.extraction.local.LocalFeatureSet`, a list, a cache
# lookup).
Features = Callable[[int], LocalFeatures]


@dataclass
class VerifyTiming:
    """Milliseconds spent in each part of :func:`verify` (summed over its queries)."""

    features: float = 0.0
    matching: float = 0.0
    magsac: float = 0.0
    homographies: int = 0
    pairs: int = 0
    per_query: list[float] = field(default_factory=list)


def homography_inliers(
    src: np.ndarray, dst: np.ndarray, threshold: float = REPROJ_THRESHOLD
) -> int:
    """Inliers of a MAGSAC homography between matched points (n, 2) (0 below 4 matches)."""
    if len(src) < MIN_MATCHES:
        return 0
    try:
        h, mask = cv2.findHomography(
            src.reshape(-1, 1, 2),
            dst.reshape(-1, 1, 2),
            cv2.USAC_MAGSAC,
            threshold,
            maxIters=2000,
            confidence=0.999,
        )
    except cv2.error:
        return 0
    if h is None or mask is None:
        return 0
    return int(mask.sum())


def count_inliers(
    a: LocalFeatures, b: LocalFeatures, ratio: float = RATIO, threshold: float = REPROJ_THRESHOLD
) -> int:
    """Inliers of a MAGSAC homography between ratio-test matches of two images (0 below 4
    matches), matched by OpenCV's brute-force matcher."""
    if len(a) < 2 or len(b) < 2:
        return 0
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    pairs = matcher.knnMatch(a.desc.astype(np.float32), b.desc.astype(np.float32), k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    if len(good) < MIN_MATCHES:
        return 0
    src = a.xy[[m.queryIdx for m in good]]
    dst = b.xy[[m.trainIdx for m in good]]
    return homography_inliers(src, dst, threshold)


def ratio_matches(
    query: LocalFeatures, rows: Sequence[LocalFeatures], ratio: float = RATIO
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Lowe's ratio-test matches of ``query`` in each of ``rows``: (query keypoints, the row's
    keypoints) index pairs, in query order, as OpenCV's brute-force ``knnMatch(k=2)`` finds them
    (a tie for the nearest fails the test)."""
    none = np.zeros(0, np.int64)
    if len(query) < 2:
        return [(none, none)] * len(rows)
    q = query.desc.astype(np.float32)
    qn, q2 = np.einsum("ij,ij->i", q, q), 2.0 * q
    cols = np.arange(len(query))
    out = []
    for r in rows:
        if len(r) < 2:
            out.append((none, none))
            continue
        d = r.desc.astype(np.float32)
        # |d|^2 - 2 q.d: the squared distance less |q|^2, the same for all of a query keypoint's
        # candidates; exact, as whole numbers below 2^24 at every step
        d2 = q2 @ d.T
        np.subtract(np.einsum("ij,ij->i", d, d)[None, :], d2, out=d2)
        first = d2.min(axis=1)
        nearest = (d2 == first[:, None]).argmax(axis=1)  # the first nearest, as the matcher's
        d2[cols, nearest] = np.inf
        second = d2.min(axis=1) + qn  # a tie for the nearest: equal to it, the test fails
        first += qn
        # what the matcher compares: float32 distances, the ratio applied in double precision
        ok = np.sqrt(first).astype(np.float64) < ratio * np.sqrt(second).astype(np.float64)
        qi = np.flatnonzero(ok)
        out.append((qi, nearest[qi].astype(np.int64)))
    return out


def verify_query(
    query: LocalFeatures,
    rows: Sequence[LocalFeatures],
    min_inliers: int = MIN_MATCHES,
    timing: VerifyTiming | None = None,
) -> np.ndarray:
    """(len(rows),) int64 inlier counts of ``query`` against each row (0 where fewer than
    ``min_inliers`` ratio-test matches: such a row cannot reach ``min_inliers`` inliers)."""
    t0 = time.perf_counter()
    matches = ratio_matches(query, rows)
    t1 = time.perf_counter()
    counts = np.zeros(len(rows), dtype=np.int64)
    need = max(MIN_MATCHES, int(min_inliers))
    fitted = 0
    for j, (qi, ti) in enumerate(matches):
        if len(qi) >= need:
            counts[j] = homography_inliers(query.xy[qi], rows[j].xy[ti])
            fitted += 1
    if timing is not None:
        timing.matching += 1000 * (t1 - t0)
        timing.magsac += 1000 * (time.perf_counter() - t1)
        timing.homographies += fitted
        timing.pairs += len(rows)
    return counts


def verify(
    idx: np.ndarray,
    queries: Features,
    database: Features,
    top: int,
    progress: bool = False,
    min_inliers: int = MIN_MATCHES,
    timing: VerifyTiming | None = None,
) -> tuple[np.ndarray, float]:
    """Inlier counts between each query and its first ``top`` neighbours.

    Args:
        idx: (Q, M) database rows of each query's global neighbours, nearest first.
        queries: query row -> its local features.
        database: database row -> its local features.
        top: K, the neighbours verified (at most M).
        progress: show a progress bar.
        min_inliers: counts below it read 0 (no homography is fitted to fewer matches).
        timing: where to add the time of each part.

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
        tq = time.perf_counter()
        fq = queries(q)
        rows = [database(int(r)) for r in idx[q, :top]]
        if timing is not None:
            timing.features += 1000 * (time.perf_counter() - tq)
        out[q] = verify_query(fq, rows, min_inliers, timing)
        if timing is not None:
            timing.per_query.append(1000 * (time.perf_counter() - tq))
    ms = 1000 * (time.perf_counter() - t) / max(idx.shape[0], 1)
    return out, ms
