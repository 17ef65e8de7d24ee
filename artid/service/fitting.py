"""Fitting a bundle's pipeline as ``artid evaluate`` fits it, and calibrating its thresholds.

:func:`fit_pipeline` fits :class:`artid.retrieval.pipeline.KNNPipeline` on the collection's
descriptors and the validation photos with the settings it is given (``artid index build`` builds
them with :func:`artid.commands.pipeline_options.pipeline_config`, as ``artid evaluate`` does):
nothing is chosen by a rule of the service's own. :func:`calibrate` then sets the acceptance
threshold on the same fitted pipeline's validation scores: the decision's (re-ranked when the
pipeline re-ranks) and, with re-ranking, the kNN-only answer's too (what ``--rerank 0`` accepts by).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from artid.data.entries import DISTRACTOR, Entry
from artid.errors import ArtidError
from artid.extraction.local import LocalFeatures
from artid.retrieval.answer import Answer
from artid.retrieval.pipeline import KNNPipeline, PipelineConfig
from artid.service.calibrate import Calibration, calibrate_threshold
from artid.service.reranking import features_of, store_of

log = logging.getLogger(__name__)

#: k and tau used when there is nothing to tune them on (no validation photo of the collection)
#: and none are given. With k = 1 the confidence is a monotone function of the nearest
#: similarity, so the accept / reject order does not depend on tau.
UNTUNED_K, UNTUNED_TAU = 1, 30.0


@dataclass
class Validation:
    """The validation photos of a build.

    Attributes:
        parts: (Q, D_i) descriptors, one matrix per model.
        labels: (Q,) their artworks' labels, -1 for a distractor (or an artwork left out).
        keys: (Q,) their paths below ``root`` (the ranking's tie-break, as in evaluation).
        root: the folder of the photos.
    """

    parts: list[np.ndarray]
    labels: np.ndarray
    keys: np.ndarray
    root: Path
    features: list[LocalFeatures] | None = None

    @property
    def tunes(self) -> bool:
        """Whether any photo shows an artwork of the collection (else nothing is tuned on them)."""
        return bool((self.labels != DISTRACTOR).any())


def untuned(config: PipelineConfig) -> PipelineConfig:
    """The settings without validation photos of the collection: fixed k and tau (given, or
    :data:`UNTUNED_K`, :data:`UNTUNED_TAU`); whatever else is open is refused."""
    open_ = [
        name
        for name, is_open in (
            ("--whiten auto", config.whiten == "auto"),
            ("--qe auto", config.qe_n is None),
            ("--dba auto", config.dba_n is None),
        )
        if is_open
    ]
    if open_:
        raise ArtidError(
            f"{', '.join(open_)}: chosen on validation photos of the collection's "
            "artworks, and the build has none; give --val photos, or fixed settings "
            "(--whiten none or pcaw, --qe N, --dba N)"
        )
    if config.k is None:
        log.warning(
            "no validation photo of the collection's artworks: k=%d, tau=%g untuned",
            UNTUNED_K,
            UNTUNED_TAU,
        )
        config = replace(config, k=UNTUNED_K, tau=UNTUNED_TAU)
    return config


def fit_pipeline(
    config: PipelineConfig,
    parts: list[np.ndarray],
    entries: list[Entry],
    n_classes: int,
    image_root: Path,
    work: Path,
    val: Validation | None,
) -> KNNPipeline:
    """The pipeline fitted on the collection's rows (``parts``: one matrix per model) and tuned on
    the validation photos, as ``artid evaluate`` fits it on database and val descriptors.

    With a re-ranking stage, the local features of the collection's images and of the
    validation photos are read (resumably, under ``work``) and given to the fit; those of the
    validation photos are kept in ``val.features`` for the calibration.
    """
    config = replace(config, n_classes=n_classes, use_gpu=False)
    tuned = val is not None and val.tunes
    if not tuned:
        config = untuned(config)
    db_features = None
    if config.rerank is not None:
        db_features = store_of(entries, image_root, work, config.rerank, "database")
        if val is not None:
            val.features = features_of(
                [str(k) for k in val.keys], val.root, work, config.rerank, "validation"
            )
    labels = np.array([e.label for e in entries], dtype=np.int64)
    pipe = KNNPipeline(config)
    if not tuned or val is None:
        return pipe.fit(parts, labels, db_features=db_features, progress=False)
    return pipe.fit(
        parts,
        labels,
        val.parts,
        val.labels,
        val.keys,
        db_features=db_features,
        val_features=val.features,
        progress=False,
    )


def calibration_of(
    scores: np.ndarray, pred: np.ndarray, labels: np.ndarray, target: float
) -> Calibration:
    """The threshold of answers ``(scores, pred)`` to photos of ``labels`` (-1: distractor) that
    accepts at most ``target`` of the distractors."""
    return calibrate_threshold(
        scores, (pred == labels) & (labels != DISTRACTOR), labels == DISTRACTOR, target
    )


def calibrate(
    pipe: KNNPipeline, val: Validation | None, threshold: float | None, target_false_accept: float
) -> tuple[Calibration, Calibration | None]:
    """The thresholds of the pipeline's decision and, when it re-ranks, of its kNN-only answer:
    given (``threshold``, a confidence), or the lowest scores that accept at most
    ``target_false_accept`` of the validation distractors.

    Raises:
        ArtidError: neither a threshold nor validation photos.
    """
    reranks = pipe.reranker is not None
    if threshold is not None:
        given = Calibration.given(threshold)
        return given, given if reranks else None
    if val is None:
        raise ArtidError(
            "no validation photos to calibrate the acceptance threshold on: give "
            "--val or --threshold"
        )
    ans: Answer | None = pipe.val_answer if val.tunes else None
    if ans is None:
        ans = pipe.predict(val.parts, features=val.features, progress=False)
    decision = calibration_of(ans.score, ans.pred, val.labels, target_false_accept)
    if not reranks:
        return decision, None
    glob = ans.global_
    return decision, calibration_of(glob.score, glob.pred, val.labels, target_false_accept)
