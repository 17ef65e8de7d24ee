"""One evaluation of the Met benchmark: whitening, kNN classifier, (k, tau) autotune, metrics, run folder.

:func:`evaluate` takes descriptor sets (database, val, test), does everything issue 2 asks for
and returns a JSON-able results dict; with ``out`` it also writes the run folder::

    out/results.json      settings, chosen k and tau, val and test metrics, buckets, timings
    out/grid.csv|json     every (k, tau) point's validation GAP / GAP- / ACC (autotune only)
    out/whitening.npz     the PCA-whitening learned on the database (when whitening)
    out/predictions.csv   test queries: path, kind, label, prediction, confidence
    out/index.html        the report, with its PNG plots beside it
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artid import __version__
from artid.data.entries import DISTRACTOR
from artid.descriptors import DescriptorSet
from artid.errors import ArtidError
from artid.evaluation.metrics import (
    DEFAULT_BUCKETS,
    accuracy,
    accuracy_by_bucket,
    gap,
    gap_at_distractor_ratio,
    gap_minus,
    subsample_distractors,
)
from artid.retrieval.autotune import K_GRID, TAU_GRID, AutotuneResult, autotune
from artid.retrieval.knn import KNNClassifier
from artid.retrieval.whitening import PCAWhitening

log = logging.getLogger(__name__)

#: Distractor ratios (appendix B.5) at which test GAP is reported besides the full set.
DEFAULT_RATIOS: tuple[float, ...] = (0.1, 0.5)


def _check_inputs(database: DescriptorSet, val: DescriptorSet | None, test: DescriptorSet | None) -> None:
    d = database.matrix.shape[1]
    db_labels = database.labels
    if (db_labels < 0).any():
        bad = int(np.flatnonzero(db_labels < 0)[0])
        raise ArtidError(f"database entry {bad} ({database.entries[bad].path}) has label {db_labels[bad]}: "
                         "database images need a class id")
    for name, dset in (("val", val), ("test", test)):
        if dset is None:
            continue
        if dset.matrix.shape[1] != d:
            raise ArtidError(f"{name} descriptors have dimension {dset.matrix.shape[1]} but the database has {d}: "
                             "they were not extracted with the same model")
        missing = np.setdiff1d(dset.labels[dset.labels != DISTRACTOR], db_labels)
        if missing.size:
            log.warning("%d %s query class(es) have no database image (e.g. %d): those queries cannot be right",
                        missing.size, name, int(missing[0]))


def query_metrics(
    pred: np.ndarray,
    conf: np.ndarray,
    dset: DescriptorSet,
    class_sizes: dict[int, int],
    ratios: Sequence[float] = DEFAULT_RATIOS,
    buckets: Sequence[tuple[int, int]] = DEFAULT_BUCKETS,
    seed: int = 0,
) -> dict:
    """GAP, GAP-, ACC, GAP at distractor ratios, accuracy by class-size bucket and query counts."""
    labels = dset.labels
    kinds = np.array(dset.kinds)
    return {
        "gap": gap(pred, conf, labels),
        "gap_minus": gap_minus(pred, conf, labels),
        "acc": accuracy(pred, conf, labels),
        "gap_at_distractor_ratio": {f"{r:g}": gap_at_distractor_ratio(pred, conf, labels, r, seed) for r in ratios},
        "accuracy_by_bucket": accuracy_by_bucket(pred, labels, class_sizes, buckets),
        "queries": {"total": int(len(labels)), **{k: int(np.sum(kinds == k)) for k in ("met", "other", "noart")}},
    }


def _write_grid(out: Path, tuned: AutotuneResult) -> None:
    rows = tuned.rows()
    with open(out / "grid.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["k", "tau", "gap", "gap_minus", "acc"])
        w.writeheader()
        w.writerows(rows)
    (out / "grid.json").write_text(json.dumps(tuned.to_json(), indent=1), encoding="utf-8")


def _write_predictions(path: Path, dset: DescriptorSet, pred: np.ndarray, conf: np.ndarray) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "kind", "label", "prediction", "confidence", "correct"])
        for e, p, c in zip(dset.entries, pred.tolist(), conf.tolist()):
            w.writerow([e.path, e.kind, e.label, p, f"{c:.6g}", int(e.label == p)])


def evaluate(
    database: DescriptorSet,
    val: DescriptorSet | None,
    test: DescriptorSet | None,
    out: str | Path | None = None,
    *,
    whiten: bool = True,
    dim: int = 512,
    shrinkage: float = 1.0,
    k: int | None = None,
    tau: float | None = None,
    ks: Sequence[int] = K_GRID,
    taus: Sequence[float] = TAU_GRID,
    n_classes: int | None = None,
    distractor_ratios: Sequence[float] = DEFAULT_RATIOS,
    buckets: Sequence[tuple[int, int]] = DEFAULT_BUCKETS,
    name: str = "",
    report: bool = True,
    use_gpu: bool | None = None,
    index: str = "exact",
    nprobe: int = 32,
    whitening: PCAWhitening | None = None,
    val_distractor_ratio: float = 1.0,
) -> dict:
    """Evaluate descriptors on the Met benchmark protocol.

    Args:
        database: (N, D) database descriptors with their class labels.
        val: validation queries (needed to autotune; also reported at the chosen point), or None.
        test: test queries, or None (then only validation is reported).
        out: run folder to write (created), or None to write nothing.
        whiten: learn PCA-whitening on the database and apply it to all descriptors.
        dim: whitening output dimension (clamped, with a warning, to what the database allows).
        shrinkage: whitening shrinkage in [0, 1].
        k, tau: fixed hyper-parameters; when both are None they are tuned on ``val`` by GAP
            over the grid ``ks`` x ``taus`` with one search.
        n_classes: N of the softmax; default: distinct database labels.
        distractor_ratios: extra test GAPs with only this share of distractors (appendix B.5).
        buckets: class-size buckets for the accuracy breakdown.
        name: row name in tables and reports.
        report: write the plots and HTML page (with ``out``).
        use_gpu: search on the GPU; None = when faiss has one.
        index: ``exact`` (the protocol) or ``ivf`` (approximate faiss IVF-Flat, faster on large
            databases, may change predictions; see :mod:`artid.retrieval.index`).
        nprobe: IVF cells visited per query.
        whitening: an already fitted whitening to apply instead of fitting one on ``database``
            (with ``whiten=True``); ``dim`` and ``shrinkage`` are then ignored.
        val_distractor_ratio: keep only this share of the validation distractors (seeded), as
            in table B.1 of the thesis, which tunes (k, tau) with fewer distractors.

    Returns:
        JSON-able dict: ``settings``, ``k``, ``tau``, ``val`` / ``test`` metrics (fractions),
        ``autotune`` (grid) when tuned, ``timings`` (seconds), ``run_dir``.
    """
    if (k is None) != (tau is None):
        raise ArtidError("give both k and tau, or neither (then they are tuned on the validation queries)")
    if val is None and test is None:
        raise ArtidError("nothing to evaluate: give validation and/or test descriptors")
    if k is None and val is None:
        raise ArtidError("autotune needs validation descriptors (or give fixed k and tau)")
    _check_inputs(database, val, test)
    if val is not None and val_distractor_ratio < 1.0:
        keep = subsample_distractors(val.labels, val_distractor_ratio).tolist()
        val = DescriptorSet(val.matrix[keep], [val.entries[i] for i in keep], val.model, val.settings)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    db = np.ascontiguousarray(database.matrix, dtype=np.float32)
    qv = None if val is None else val.matrix
    qt = None if test is None else test.matrix
    if not whiten:
        whitening = None
    else:
        t = time.perf_counter()
        if whitening is None:
            whitening = PCAWhitening(dim=dim, shrinkage=shrinkage).fit(db)
        else:
            shrinkage = whitening.shrinkage
        db = whitening.transform(db)
        qv = None if qv is None else whitening.transform(qv)
        qt = None if qt is None else whitening.transform(qt)
        timings["whitening"] = time.perf_counter() - t

    db_labels = database.labels
    classes, counts = np.unique(db_labels, return_counts=True)
    class_sizes = dict(zip(classes.tolist(), counts.tolist()))
    searcher = None
    if index == "ivf":
        from artid.retrieval.index import IVFSearcher

        t = time.perf_counter()
        searcher = IVFSearcher(db, nprobe=nprobe)
        timings["index_build"] = time.perf_counter() - t
    elif index != "exact":
        raise ArtidError(f"unknown index {index!r}: use 'exact' or 'ivf'")
    clf = KNNClassifier(db, db_labels, n_classes=n_classes, use_gpu=use_gpu, searcher=searcher)

    results: dict = {
        "name": name,
        "artid_version": __version__,
        "settings": {
            "whiten": whiten, "dim": whitening.out_dim if whitening else int(db.shape[1]),
            "dim_requested": dim if whiten else None, "shrinkage": shrinkage if whiten else None,
            "autotune": k is None, "n_classes": clf.n_classes, "database_images": clf.size,
            "descriptor_dim": int(database.matrix.shape[1]), "model": database.model,
            "extraction": database.settings, "device": "gpu" if clf.use_gpu else "cpu",
            "index": index if index == "exact" else f"ivf (nprobe {nprobe})",
            "buckets": [list(b) for b in buckets], "distractor_ratios": list(distractor_ratios),
            "val_distractor_ratio": val_distractor_ratio,
        },
    }
    tuned = None
    val_pred = val_conf = None
    if k is None:
        tuned = autotune(clf, qv, val.labels, ks=ks, taus=taus, keep_neighbours=True)
        k, tau = tuned.best_k, tuned.best_tau
        timings["val_search"] = tuned.search_seconds
        timings["grid"] = tuned.grid_seconds
        val_pred, val_conf = clf.classify(tuned.sims, tuned.idx, k, tau)
        results["autotune"] = tuned.to_json()
    else:
        k = clf.clamp_k(int(k))
        tau = float(tau)
        if val is not None:
            t = time.perf_counter()
            sims, idx = clf.search(qv, k)
            timings["val_search"] = time.perf_counter() - t
            val_pred, val_conf = clf.classify(sims, idx, k, tau)
    results["k"], results["tau"] = int(k), float(tau)
    if val is not None:
        results["val"] = query_metrics(val_pred, val_conf, val, class_sizes, distractor_ratios, buckets)

    test_pred = test_conf = None
    if test is not None:
        t = time.perf_counter()
        sims, idx = clf.search(qt, k)
        timings["test_search"] = time.perf_counter() - t
        t = time.perf_counter()
        test_pred, test_conf = clf.classify(sims, idx, k, tau)
        timings["test_classify"] = time.perf_counter() - t
        results["test"] = query_metrics(test_pred, test_conf, test, class_sizes, distractor_ratios, buckets)
    timings["total"] = time.perf_counter() - t_start
    results["timings"] = timings
    results["run_dir"] = None

    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        results["run_dir"] = str(out)
        if whitening is not None:
            whitening.save(out / "whitening.npz")
        if tuned is not None:
            _write_grid(out, tuned)
        main_set, main_pred, main_conf = (test, test_pred, test_conf) if test is not None else (val, val_pred, val_conf)
        _write_predictions(out / f"predictions_{'test' if test is not None else 'val'}.csv",
                           main_set, main_pred, main_conf)
        if report:
            from artid.evaluation.report import write_report  # matplotlib only when a report is asked for

            results["report"] = write_report(out, results, main_set, main_pred, main_conf, tuned)
        tmp = out / "results.json.tmp"
        tmp.write_text(json.dumps(results, indent=1), encoding="utf-8")
        os.replace(tmp, out / "results.json")
    return results
