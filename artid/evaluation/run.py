"""One evaluation of the Met benchmark: the kNN pipeline fitted on database + val, metrics, run
folder.

:func:`evaluate` takes descriptor sets (database, val, test; several of each to concatenate
descriptors of several models), fits :class:`artid.retrieval.pipeline.KNNPipeline` and returns a
JSON-able results dict; with ``out`` it also writes the run folder::

    out/results.json      settings, chosen whitening, k and tau, val and test metrics, buckets,
    timings
    out/grid.csv|json     every (k, tau) point's validation GAP / GAP- / ACC (when tuned)
    out/pipeline/         the fitted pipeline, whole (:mod:`artid.retrieval.storage`): what it
    chose,
                          its whitening, database rows, index and re-ranking stage
    out/predictions_test.csv  test queries: path, kind, label, prediction, log-odds score,
                          confidence (the probability that the answer is right, calibrated on
                          val: :mod:`artid.metrics.calibration`), softmax, correct, verified
                          inliers (0 without re-ranking)
    out/index.html        the report, with its PNG plots beside it

Queries are ranked by the top class's log-odds, ties by path; unreadable queries count as
wrong at the lowest score (:mod:`artid.evaluation.queries`). Each split's metrics hold ``ece``,
the expected calibration error of the confidence, and ``reliability``, its ten bins (the report's
reliability diagram); ``calibration`` says how the confidence was fitted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from artid import __version__
from artid.data.entries import DISTRACTOR, Entry
from artid.descriptors import DescriptorSet
from artid.errors import ArtidError
from artid.evaluation.outputs import prepare_out, write_run
from artid.evaluation.queries import (
    Queries,
    check_database,
    check_queries,
    combine,
    subsample,
    with_unreadable,
)
from artid.evaluation.reranking import RerankSetup, database_features, query_features
from artid.metrics.bootstrap import ilr_paired
from artid.metrics.calibration import expected_calibration_error, reliability_bins
from artid.metrics.ilr import (
    DEFAULT_BUCKETS,
    accuracy,
    accuracy_by_bucket,
    gap,
    gap_at_distractor_ratio,
    gap_minus,
    subsample_distractors,
)
from artid.retrieval.pipeline import KNNPipeline, PipelineConfig

log = logging.getLogger(__name__)

#: Distractor ratios (appendix B.5) at which test GAP is reported besides the full set.
DEFAULT_RATIOS: tuple[float, ...] = (0.1, 0.5)

Sets = DescriptorSet | Sequence[DescriptorSet]


def query_metrics(
    entries: list[Entry],
    pred: np.ndarray,
    score: np.ndarray,
    class_sizes: dict[int, int],
    ratios: Sequence[float] = DEFAULT_RATIOS,
    buckets: Sequence[tuple[int, int]] = DEFAULT_BUCKETS,
    unreadable: int = 0,
    seed: int = 0,
) -> dict:
    """GAP, GAP-, ACC, GAP at distractor ratios, accuracy by class-size bucket and query counts."""
    labels = np.array([e.label for e in entries], dtype=np.int64)
    keys = np.array([e.path for e in entries], dtype=str)
    kinds = np.array([e.kind for e in entries])
    return {
        "gap": gap(pred, score, labels, keys),
        "gap_minus": gap_minus(pred, score, labels, keys),
        "acc": accuracy(pred, score, labels),
        "gap_at_distractor_ratio": {
            f"{r:g}": gap_at_distractor_ratio(pred, score, labels, r, seed, keys) for r in ratios
        },
        "accuracy_by_bucket": accuracy_by_bucket(pred, labels, class_sizes, buckets),
        "queries": {
            "total": int(len(labels)),
            "M": int(np.sum(labels != DISTRACTOR)),
            "unreadable": unreadable,
            **{k: int(np.sum(kinds == k)) for k in ("met", "other", "noart")},
        },
    }


def _as_list(sets: Sets) -> list[DescriptorSet]:
    return [sets] if isinstance(sets, DescriptorSet) else list(sets)


def evaluate(
    database: Sets,
    val: Sets | None,
    test: Sets | None,
    out: str | Path | None = None,
    *,
    config: PipelineConfig | None = None,
    distractor_ratios: Sequence[float] = DEFAULT_RATIOS,
    buckets: Sequence[tuple[int, int]] = DEFAULT_BUCKETS,
    name: str = "",
    report: bool = True,
    val_distractor_ratio: float = 1.0,
    rerank: RerankSetup | None = None,
) -> dict:
    """Evaluate descriptors on the Met benchmark protocol.

    Args:
        database: database descriptors with their class labels (several sets of the same images
            to concatenate their descriptors, appendix B.1).
        val: validation queries (needed to tune; also reported at the chosen point), or None.
        test: test queries, or None (then only validation is reported).
        out: run folder to write (created), or None to write nothing.
        config: the kNN pipeline's settings (whitening, k and tau or the grid, index); default
            :class:`PipelineConfig` (whitening chosen on val, k and tau tuned on val).
        distractor_ratios: extra test GAPs with only this share of distractors (appendix B.5).
        buckets: class-size buckets for the accuracy breakdown.
        name: row name in tables and reports.
        report: write the plots and HTML page (with ``out``).
        val_distractor_ratio: keep only this share of the validation distractors (seeded), as in
            table B.1 of the thesis, which tunes (k, tau) with fewer distractors.
        rerank: re-rank the answers by spatial verification of the top K database images
            (:mod:`artid.evaluation.reranking`); the kNN-only metrics are then kept under
            ``global`` and the paired difference (bootstrap SE) under ``rerank["paired"]``.

    Returns:
        JSON-able dict: ``settings``, ``pipeline`` (what was chosen), ``k``, ``tau``, ``val`` /
        ``test`` metrics (fractions), ``autotune`` (grid) when tuned, ``timings``, ``run_dir``.
    """
    config = config or PipelineConfig()
    if val is None and test is None:
        raise ArtidError("nothing to evaluate: give validation and/or test descriptors")
    if config.k is None and val is None:
        raise ArtidError("tuning needs validation descriptors (or give fixed k and tau)")
    out = prepare_out(out)
    db = combine(_as_list(database), "database")
    check_database(db)
    splits: dict[str, Queries] = {}
    for split, sets in (("val", val), ("test", test)):
        if sets is not None:
            splits[split] = combine(_as_list(sets), split)
            check_queries(split, splits[split], db)
    if "val" in splits and val_distractor_ratio < 1.0:
        v = splits["val"]
        everyone = v.all_entries
        keep = subsample_distractors(
            np.array([e.label for e in everyone]),
            val_distractor_ratio,
            keys=np.array([e.path for e in everyone], dtype=str),
        )
        splits["val"] = subsample(v, {everyone[i].path for i in keep.tolist()})

    timings: dict[str, float] = {}
    t = time.perf_counter()
    val_q = splits.get("val")
    fit_rerank: dict = {}
    record: dict = {}
    if rerank is not None:
        config = replace(config, rerank=rerank.config)
        fit_rerank["db_features"], record = database_features(rerank, db)
        if val_q is not None:
            fit_rerank["val_features"] = query_features(rerank, val_q)
    pipe = KNNPipeline(config).fit(
        db.parts,
        db.labels,
        None if val_q is None else val_q.parts,
        None if val_q is None else val_q.labels,
        None if val_q is None else val_q.keys,
        **fit_rerank,
    )
    timings["fit"] = time.perf_counter() - t
    classes, counts = np.unique(db.labels, return_counts=True)
    class_sizes = dict(zip(classes.tolist(), counts.tolist()))
    results: dict = {
        "name": name,
        "artid_version": __version__,
        "settings": {
            **config.to_json(),
            "database_images": len(db.entries),
            "database_unreadable": len(db.unreadable),
            "descriptor_dims": [p.shape[1] for p in db.parts],
            "model": db.model,
            "extraction": db.settings,
            "device": "gpu" if pipe.classifier is not None and pipe.classifier.use_gpu else "cpu",
            "buckets": [list(b) for b in buckets],
            "distractor_ratios": list(distractor_ratios),
            "val_distractor_ratio": val_distractor_ratio,
        },
        "pipeline": pipe.summary(),
        "k": pipe.k,
        "tau": pipe.tau,
    }
    if pipe.tuned is not None:
        results["autotune"] = pipe.tuned.to_json()
    if pipe.calibration is not None:
        cal = pipe.calibration
        results["calibration"] = {"method": cal.method, "n_queries": cal.n_queries,
                                  "n_right": cal.n_right, "knots": len(cal.scores)}
    if pipe.reranker is not None:
        results["rerank"] = {**record, **pipe.reranker.summary(), "ms_per_query": {}, "paired": {}}
        results["global"] = {}
    answers = {}
    for split, q in splits.items():
        t = time.perf_counter()
        features = None if rerank is None else query_features(rerank, q)
        if split == "val" and pipe.val_answer is not None:
            ans = pipe.val_answer
        else:
            ans = pipe.predict(q.parts, features)
        timings[f"{split}_predict"] = time.perf_counter() - t
        entries, pred, score, softmax = with_unreadable(q, ans.pred, ans.score, ans.conf)
        inliers = np.concatenate([ans.inliers, np.zeros(len(q.unreadable), np.int64)])
        shown = pipe.confidence(score)
        answers[split] = (entries, pred, score, shown, softmax, inliers)
        results[split] = query_metrics(
            entries,
            pred,
            score,
            class_sizes,
            distractor_ratios,
            buckets,
            unreadable=len(q.unreadable),
        )
        right = pred == np.array([e.label for e in entries], dtype=np.int64)
        results[split]["ece"] = expected_calibration_error(shown, right)
        results[split]["reliability"] = reliability_bins(shown, right)
        if pipe.reranker is not None:
            results["rerank"]["ms_per_query"][split] = pipe.reranker.ms_per_query
            _, g_pred, g_score, _ = with_unreadable(q, *ans.global_)
            results["global"][split] = query_metrics(
                entries,
                g_pred,
                g_score,
                class_sizes,
                distractor_ratios,
                buckets,
                unreadable=len(q.unreadable),
            )
            labels = np.array([e.label for e in entries], dtype=np.int64)
            keys = np.array([e.path for e in entries], dtype=str)
            paired = ilr_paired((pred, score), (g_pred, g_score), labels, keys)
            results["rerank"]["paired"][split] = {m: e.to_json() for m, e in paired.items()}
    results["timings"] = timings
    results["run_dir"] = None
    if out is not None:
        write_run(out, results, pipe, answers, report)
    return results
