"""Re-ranking in the recognition service: a photo's global top K verified with SIFT, fused into its answer.

``artid index build --rerank K`` reads every database image's SIFT keypoints (cached one file per
image under the bundle's ``.work/``, so an interrupted build resumes), packs them into the bundle
(:class:`artid.extraction.local.LocalFeatureSet`) and records the stage of
:class:`artid.retrieval.rerank.Reranker` in ``bundle.json`` (``rerank``): K, the fusion rule (tuned
on the validation photos when the build has some of the collection's artworks, else the defaults of
:mod:`artid.retrieval.rerank`) and an acceptance threshold calibrated on the re-ranked validation
scores. The recognizer then verifies each photo against its first K neighbours and answers with the
fused decision; ``Reranked.inliers`` says how many points verified the named artwork.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from artid.data.entries import DISTRACTOR, Entry
from artid.errors import ArtidError
from artid.extraction.local import FeatureCache, LocalFeatures, LocalFeatureSet, local_features
from artid.retrieval.pipeline import KNNPipeline
from artid.retrieval.rerank import RerankConfig, Reranked, Reranker
from artid.retrieval.verification import count_inliers
from artid.service.calibrate import Calibration, calibrate_threshold

log = logging.getLogger(__name__)

#: One candidate of a photo's list: (class, s_c, softmax share).
Candidate = tuple[int, float, float]
#: Validation photos: (Q, D) descriptors, (Q,) labels (-1: distractor), (Q,) paths below their root.
Validation = tuple[np.ndarray, np.ndarray, np.ndarray]


def features_of(entries: Sequence[Entry] | Sequence[str], image_root: Path, work: Path, config: RerankConfig,
                name: str) -> list[LocalFeatures]:
    """SIFT features of images below ``image_root``, cached one file per image under ``work`` (resumable).

    The cache folder is named after the root and the SIFT settings, so a build resumed on the
    same images reads what an interrupted one computed; an unreadable image has no keypoints.
    """
    root = Path(image_root)
    tag = f"{root.resolve()}|{config.max_keypoints}|{config.max_size}"
    cache = FeatureCache(work / f"local-{name}-{hashlib.sha1(tag.encode()).hexdigest()[:12]}", root,
                         config.max_keypoints, config.max_size)
    paths = [e if isinstance(e, str) else e.path for e in entries]
    return cache.fill(paths, f"{name} local features")


def build_stage(pipe: KNNPipeline, local: LocalFeatureSet, config: RerankConfig,
                val: Validation | None = None, val_features: Sequence[LocalFeatures] | None = None,
                target_false_accept: float = 0.05, threshold: float | None = None) -> dict[str, Any]:
    """The bundle's record of the re-ranking stage (``bundle.json``'s ``rerank``).

    Args:
        pipe: the fitted kNN pipeline the bundle serves with.
        local: the database rows' local features, in row order.
        config: K and the rule's fixed settings (open ones are tuned on ``val`` when it has photos of
            the collection's artworks, else take the defaults of :mod:`artid.retrieval.rerank`).
        val, val_features: the validation photos and their local features, or None.
        target_false_accept, threshold: how the re-ranked scores' threshold is chosen (as for the global one).

    Returns:
        ``{"stage": Reranker.describe(), "calibration": ..., "keypoints": T}``.
    """
    rr = Reranker(pipe, local.__getitem__, config)
    record: dict[str, Any] = {"keypoints": local.keypoints}
    answer: Reranked | None = None
    if val is not None and val_features is not None:
        matrix, labels, keys = val
        feats = list(val_features)
        if bool((labels != DISTRACTOR).any()):
            rr.fit(matrix, feats.__getitem__, labels, keys)
            answer = rr.val_answer
        else:
            log.warning("no validation photo of the collection's artworks: the re-ranking rule is not tuned")
            answer = rr.predict(matrix, feats.__getitem__)
        record["val_ms_per_query"] = rr.ms_per_query
    if threshold is not None:
        calibration = Calibration.given(threshold)
    elif answer is not None and val is not None:
        labels = val[1]
        pred, score = answer.classified.pred, answer.classified.score
        calibration = calibrate_threshold(score, (pred == labels) & (labels != DISTRACTOR), labels == DISTRACTOR,
                                          target_false_accept)
    else:
        raise ArtidError("re-ranking needs validation photos or a --threshold to accept its answers")
    record.update(stage=rr.describe(), calibration=calibration.to_json())
    return record


def rerank_bundle(pipe: KNNPipeline, entries: Sequence[Entry], image_root: Path, work: Path, top: int,
                  val: Validation | None = None, val_root: Path | None = None, target_false_accept: float = 0.05,
                  threshold: float | None = None) -> tuple[LocalFeatureSet, dict[str, Any]]:
    """What ``artid index build --rerank K`` adds to a bundle: the database's local features and the stage.

    Args:
        pipe: the fitted kNN pipeline the bundle serves with.
        entries: the database rows' images (paths below ``image_root``), in row order.
        work: the build's folder of resumable work (the per-image feature caches go there).
        top: K.
        val, val_root: the validation photos (paths below ``val_root``), or None.
        target_false_accept, threshold: as for the global threshold.
    """
    config = RerankConfig(top=top)
    config.check()
    t = time.perf_counter()
    local = LocalFeatureSet.pack(features_of(entries, image_root, work, config, "database"))
    seconds = time.perf_counter() - t
    val_features = None
    if val is not None and val_root is not None:
        val_features = features_of([str(p) for p in val[2]], val_root, work, config, "validation")
    record = build_stage(pipe, local, config, val, val_features, target_false_accept, threshold)
    record["database_feature_seconds"] = round(seconds, 2)
    return local, record


def missing_features(top: int) -> ArtidError:
    """The error for re-ranking asked of a bundle built without it."""
    return ArtidError(f"--rerank {top}: this bundle has no local features to verify photos with; rebuild it "
                      f"with `artid index build ... --rerank {top}` (50 is the usual K)")


def bundle_reranker(pipe: KNNPipeline, record: dict[str, Any] | None, local: LocalFeatureSet | None,
                    top: int | None = None) -> tuple[Reranker | None, Calibration | None]:
    """The bundle's re-ranking stage and its threshold, or (None, None) when it is off.

    Args:
        pipe: the bundle's kNN pipeline.
        record, local: the bundle's ``rerank`` record and local features (None: a bundle without).
        top: K at run time: None = the bundle's, 0 = off.

    Raises:
        ArtidError: K > 0 for a bundle without local features (it says how to rebuild one).
    """
    if top == 0 or (top is None and record is None):
        return None, None
    if record is None or local is None:
        raise missing_features(int(top or 0))
    if len(local) != len(pipe.classifier.labels if pipe.classifier is not None else []):
        raise ArtidError(f"the bundle holds local features of {len(local)} images, its index another number")
    stage = dict(record["stage"])
    if top is not None:
        stage["config"] = {**stage["config"], "top": int(top)}
    rr = Reranker.from_json(pipe, local.__getitem__, stage)
    cal = record.get("calibration")
    return rr, (Calibration.from_json(cal) if cal else None)


def photo_features(rr: Reranker, images: Sequence[Image.Image]) -> list[LocalFeatures]:
    """SIFT features of photos, read as the database images were (longer side at most the stage's max_size)."""
    from artid.data.images import resize_max

    cfg = rr.config
    return [local_features(resize_max(img, cfg.max_size), cfg.max_keypoints, None) for img in images]


def verify(idx: np.ndarray, photos: Sequence[LocalFeatures], database: Callable[[int], LocalFeatures],
           top: int) -> np.ndarray:
    """(Q, min(top, M)) inlier counts between each photo and its first ``top`` neighbours ``idx`` (Q, M)."""
    top = min(top, idx.shape[1])
    out = np.zeros((idx.shape[0], top), dtype=np.int64)
    for q, fq in enumerate(photos):
        for j in range(top):
            out[q, j] = count_inliers(fq, database(int(idx[q, j])))
    return out


def reranked_answer(rr: Reranker, desc: np.ndarray, photos: Sequence[LocalFeatures], n_top: int = 5,
                    list_neighbours: int = 20) -> tuple[Reranked, list[list[Candidate]], dict[str, float]]:
    """The re-ranked decision and the candidates of photos, from one search.

    The candidates are those of :meth:`KNNPipeline.answer` (the ``n_top`` best classes among the
    ``max(k, list_neighbours)`` nearest images), with the re-ranked prediction moved first (found
    among the first K neighbours when the list does not hold it).

    Returns:
        The re-ranked answer, the candidates per photo, and the search and verification times (ms, all photos).
    """
    pipe = rr.pipe
    clf, k, tau = pipe.classifier, pipe.k, pipe.tau
    assert clf is not None and k is not None and tau is not None
    listed = min(max(k, list_neighbours), clf.size)
    many = min(max(listed, rr.top), clf.size)
    t0 = time.perf_counter()
    sims, idx = pipe.neighbours(desc, many, progress=False)
    t1 = time.perf_counter()
    ans = rr.decide(sims, idx, verify(idx, photos, rr.database, rr.top))
    t2 = time.perf_counter()
    tops = clf.top_classes(sims[:, :listed], idx[:, :listed], listed, tau, n_top)
    for q, top in enumerate(tops):
        pred = int(ans.classified.pred[q])
        found = [c for c in top if c[0] == pred]
        if not found:  # reached by verification beyond the listed neighbours
            found = [c for c in clf.top_classes(sims[q:q + 1], idx[q:q + 1], many, tau, many)[0] if c[0] == pred]
        tops[q] = (found + [c for c in top if c[0] != pred])[:n_top]
    return ans, tops, {"search": 1000 * (t1 - t0), "verify": 1000 * (t2 - t1)}
