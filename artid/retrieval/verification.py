"""Spatial verification re-ranking: SIFT matches + a MAGSAC homography on the top K of the global search.

For each query, the top ``K`` database images of the global kNN search are verified: SIFT
keypoints of both images (:func:`local_features`, cached per image by :class:`FeatureCache`),
Lowe's ratio test, then ``cv2.findHomography(..., cv2.USAC_MAGSAC)``; the number of inliers
measures how surely the two photos show the same flat artwork.

Fusion rule (:func:`fuse`). With ``s_c`` the kNN class score (best similarity of class ``c``
among the pipeline's k neighbours) and ``n_c`` the most inliers of any verified image of class
``c`` (the first K neighbours):

    s_c' = s_c + w * min(n_c, cap) / cap      when n_c >= min_inliers, else s_c' = s_c

A class reached only through a verified image beyond the first k neighbours (K > k) joins with
its similarity plus the bonus. The prediction is the best fused class, and the ranking score is
the same log-odds as :func:`artid.retrieval.knn.log_odds` computed on the fused class scores,
with its own tau. Verified matches thus raise the confidence, and a top-1 that fails
verification while a runner-up passes loses it. ``w = 0`` reproduces the global answer exactly.
``(w, min_inliers, tau)`` are chosen on validation GAP (:func:`tune_fusion`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from artid.attributes.sift import ImageLike, to_gray
from artid.errors import ArtidError
from artid.metrics.ilr import gap
from artid.retrieval.knn import Classified, confidence, first_occurrences, log_odds

#: Lowe's ratio test threshold.
RATIO = 0.8
#: MAGSAC reprojection threshold in pixels (images at most ``DEFAULT_SIZE`` px on the longer side).
REPROJ_THRESHOLD = 4.0
#: Longer side of images read for verification, and keypoints kept per image.
DEFAULT_SIZE = 400
DEFAULT_KEYPOINTS = 500
#: Inlier count at which the bonus saturates.
DEFAULT_CAP = 50
#: Validation grids of the fusion rule.
W_GRID = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
MIN_INLIERS_GRID = (6, 8, 10, 15, 20, 30)


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoint positions (n, 2) float32 and SIFT descriptors (n, 128) uint8 of one image."""

    xy: np.ndarray
    desc: np.ndarray

    def __len__(self) -> int:
        return int(self.xy.shape[0])


def local_features(image: ImageLike, max_keypoints: int = DEFAULT_KEYPOINTS,
                   max_size: int | None = DEFAULT_SIZE) -> LocalFeatures:
    """SIFT keypoints and descriptors of a file, Pillow image or uint8 array (the strongest ``max_keypoints``)."""
    gray = to_gray(image, max_size)
    sift = cv2.SIFT.create(nfeatures=max(0, int(max_keypoints)))
    kps, desc = sift.detectAndCompute(gray, None)
    if desc is None or not kps:
        return LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8))
    xy = np.array([kp.pt for kp in kps], dtype=np.float32)
    return LocalFeatures(xy, np.clip(np.rint(desc), 0, 255).astype(np.uint8))


def count_inliers(a: LocalFeatures, b: LocalFeatures, ratio: float = RATIO,
                  threshold: float = REPROJ_THRESHOLD) -> int:
    """Inliers of a MAGSAC homography between ratio-test SIFT matches of two images (0 below 4 matches)."""
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
        h, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, threshold, maxIters=2000, confidence=0.999)
    except cv2.error:
        return 0
    if h is None or mask is None:
        return 0
    return int(mask.sum())


class FeatureCache:
    """Local features of image files, one compressed ``.npz`` per image under ``folder`` (resumable).

    Args:
        folder: cache folder (created).
        root: the dataset root the relative image paths are resolved against.
    """

    def __init__(self, folder: str | Path, root: str | Path, max_keypoints: int = DEFAULT_KEYPOINTS,
                 max_size: int = DEFAULT_SIZE) -> None:
        self.folder, self.root = Path(folder), Path(root)
        self.max_keypoints, self.max_size = max_keypoints, max_size
        self.folder.mkdir(parents=True, exist_ok=True)

    def _file(self, rel: str) -> Path:
        tag = f"{rel}|{self.max_keypoints}|{self.max_size}"
        return self.folder / (hashlib.sha1(tag.encode()).hexdigest()[:20] + ".npz")

    def get(self, rel: str) -> LocalFeatures:
        """The features of ``root / rel``: read from the cache, or computed and written (atomically)."""
        path = self._file(rel)
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                return LocalFeatures(z["xy"], z["desc"])
        try:
            feats = local_features(self.root / rel, self.max_keypoints, self.max_size)
        except ArtidError:
            feats = LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8))
        tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, xy=feats.xy.astype(np.float32), desc=feats.desc)
        os.replace(tmp, path)
        return feats

    def fill(self, rels: Sequence[str], desc: str = "local features") -> list[LocalFeatures]:
        """The features of every image, computing the missing ones with a progress bar (resumable)."""
        return [self.get(rel) for rel in tqdm(rels, desc=desc, unit="image", leave=False)]


def verified_inliers(idx: np.ndarray, labels: np.ndarray, inliers: np.ndarray, pred: np.ndarray,
                     min_inliers: int) -> np.ndarray:
    """(Q,) the most inliers of a verified image (>= ``min_inliers``) of each query's predicted class, else 0."""
    lab = labels[idx[:, :inliers.shape[1]]]
    ok = (lab == pred[:, None]) & (inliers >= min_inliers)
    return np.where(ok, inliers, 0).max(axis=1, initial=0).astype(np.int64)


def fuse(sims: np.ndarray, idx: np.ndarray, labels: np.ndarray, inliers: np.ndarray, k: int, tau: float,
         n_classes: int, w: float, min_inliers: int = 10, cap: int = DEFAULT_CAP) -> Classified:
    """The kNN answer with class scores raised by verified inliers (the module's rule).

    Args:
        sims, idx: (Q, M) global neighbours, sorted descending, M >= max(k, K).
        labels: (N,) classes of the database rows.
        inliers: (Q, K) inlier counts of the first K neighbours.
        k, tau, n_classes: the kNN classifier's neighbours, temperature and softmax size.
        w, min_inliers, cap: the bonus ``w * min(n, cap) / cap`` for ``n >= min_inliers``.
    """
    top = inliers.shape[1]
    m = max(k, top)
    if sims.shape[1] < m:
        raise ArtidError(f"fusion needs {m} neighbours per query, the search returned {sims.shape[1]}")
    s = sims[:, :m].astype(np.float64)
    lab = labels[idx[:, :m]]
    ok = np.zeros(lab.shape, dtype=bool)
    ok[:, :top] = inliers >= min_inliers
    gain = np.zeros(lab.shape)
    gain[:, :top] = np.where(ok[:, :top], w * np.minimum(inliers, cap) / cap, 0.0)
    # per query, the class bonus is the largest gain over the class's verified images
    bonus = np.zeros(lab.shape)
    for j in range(top):
        same = lab == lab[:, j:j + 1]
        bonus = np.where(same, np.maximum(bonus, gain[:, j:j + 1]), bonus)
    used = np.zeros(lab.shape, dtype=bool)
    used[:, :k] = True
    used |= ok & (w > 0)
    fused = np.where(used, s + bonus, -np.inf)
    order = np.argsort(-fused, axis=1, kind="stable")
    fused = np.take_along_axis(fused, order, axis=1)
    lab = np.take_along_axis(lab, order, axis=1)
    used = np.take_along_axis(used, order, axis=1)
    first = first_occurrences(lab) & used
    with np.errstate(invalid="ignore"):
        score = log_odds(fused, first, n_classes, tau)[:, -1]
    return Classified(lab[:, 0].astype(np.int64), score, confidence(score))


@dataclass
class FusionChoice:
    """What :func:`tune_fusion` chose and its validation GAP."""

    w: float
    min_inliers: int
    tau: float
    val_gap: float


def tune_fusion(sims: np.ndarray, idx: np.ndarray, labels: np.ndarray, inliers: np.ndarray, val_labels: np.ndarray,
                k: int, n_classes: int, taus: Sequence[float], keys: np.ndarray | None = None,
                ws: Sequence[float] = W_GRID, mins: Sequence[int] = MIN_INLIERS_GRID,
                cap: int = DEFAULT_CAP) -> FusionChoice:
    """Grid search of (w, min_inliers, tau) by validation GAP (ties: the first, i.e. the smaller w)."""
    best: FusionChoice | None = None
    for w in ws:
        for mi in (mins if w > 0 else mins[:1]):
            for tau in taus:
                ans = fuse(sims, idx, labels, inliers, k, tau, n_classes, w, mi, cap)
                g = gap(ans.pred, ans.score, val_labels, keys)
                if best is None or g > best.val_gap:
                    best = FusionChoice(float(w), int(mi), float(tau), float(g))
    assert best is not None
    return best
