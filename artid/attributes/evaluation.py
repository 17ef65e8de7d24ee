"""``predict`` and ``evaluate`` of an attributes run (the run's model, the dataset's split).

- :func:`predict_run`: a Kaggle ``submission.csv`` (``id,attribute_ids``) of a split at the run's
  validation-chosen thresholds (a multi-class run: the top class's attribute id).
- :func:`evaluate_run`: the metrics of a labelled split (multi-label: F2 at the val-chosen
  thresholds ± bootstrap SE, F2 of every threshold kind, F2 at a fixed 0.5, AUC-ROC / AUC-PR;
  multi-class: top-1, top-5, precision, recall, ROC AUC) and a report folder with plots
  (:mod:`artid.attributes.report`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from artid.attributes.imet_csv import write_submission
from artid.attributes.multiclass import multiclass_metrics, plot_confusion
from artid.attributes.report import multilabel_metrics, write_report
from artid.attributes.runs import (
    check_labels,
    multiclass_codes,
    open_dataset,
    predicted_labels,
    read_run,
    split_scores,
)
from artid.files import write_json


def predict_run(
    run: Path, root: Path, split: str, out: Path, mode: str | None = None, progress: bool = True
) -> int:
    """Write the submission of ``split`` to ``out``; returns the number of images."""
    meta = read_run(run)
    dataset = open_dataset(root)
    check_labels(meta, dataset, run)
    s = dataset.split(split)
    pred = predicted_labels(meta, split_scores(run, meta, dataset, s, progress), mode)
    ids = np.asarray([label.id for label in dataset.labels])
    write_submission(out, s.ids, [ids[np.flatnonzero(row)].tolist() for row in pred])
    return len(s.ids)


def evaluate_run(
    run: Path,
    root: Path,
    split: str = "test",
    out: Path | None = None,
    mode: str | None = None,
    resamples: int = 1000,
    progress: bool = True,
) -> dict:
    """Metrics of the run on a labelled split, written with the report into ``out``.

    ``out`` defaults to ``<run>/report_<split>``.
    """
    meta = read_run(run)
    dataset = open_dataset(root)
    check_labels(meta, dataset, run)
    s = dataset.split(split)
    scores = split_scores(run, meta, dataset, s, progress)
    out = out or Path(run) / f"report_{split}"
    out.mkdir(parents=True, exist_ok=True)
    base = {
        "model": meta["model"],
        "split": split,
        "train_seconds": meta.get("train_seconds"),
        "extract_seconds": meta.get("extract_seconds"),
    }
    if meta["model"] == "multiclass":
        codes = multiclass_codes(meta, dataset, s)
        cols = meta["settings"]["classes"]
        metrics = {**base, "group": meta["settings"]["group"], **multiclass_metrics(codes, scores)}
        names = [dataset.label_names[c].split("::", 1)[-1] for c in cols]
        plot_confusion(codes, scores, names, out / "confusion.png")
        write_json(out / "metrics.json", metrics)
        return metrics
    y = s.targets()
    mode = mode or meta["thresholds_mode"]
    metrics = {
        **base,
        **multilabel_metrics(y, scores, meta["thresholds"], mode, resamples=resamples),
        "val_f2": {m: f["fbeta"] for m, f in meta["thresholds"].items()},
    }
    train_counts = dataset.split("train").targets().sum(0)
    write_report(
        out,
        metrics,
        y,
        scores,
        meta["thresholds"],
        s.paths,
        dataset.label_names,
        train_counts,
        split,
    )
    return metrics
