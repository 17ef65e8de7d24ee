"""The files of an evaluation run: the (k, tau) grid, one line per test query, the pipeline,
the report and ``results.json`` (written last, atomically)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from artid.data.entries import Entry
from artid.errors import ArtidError
from artid.files import atomic_path, write_json
from artid.retrieval.autotune import AutotuneResult
from artid.retrieval.pipeline import KNNPipeline


def _write_grid(out: Path, tuned: AutotuneResult) -> None:
    with atomic_path(out / "grid.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["k", "tau", "gap", "gap_minus", "acc"])
        w.writeheader()
        w.writerows(tuned.rows())
    write_json(out / "grid.json", tuned.to_json())


def _write_predictions(
    path: Path,
    entries: list[Entry],
    pred: np.ndarray,
    score: np.ndarray,
    conf: np.ndarray,
    softmax: np.ndarray,
    inliers: np.ndarray,
) -> None:
    """One row per query; ``confidence`` is the calibrated probability that the answer is right,
    ``softmax`` the classifier's ``sigmoid(score)``."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["path", "kind", "label", "prediction", "score", "confidence", "softmax", "correct"]
            + ["inliers"]
        )
        columns = (pred, score, conf, softmax, inliers)
        for e, p, s, c, m, n in zip(entries, *(a.tolist() for a in columns)):
            w.writerow(
                [e.path, e.kind, e.label, p, f"{s:.6g}", f"{c:.6g}", f"{m:.6g}", int(e.label == p)]
                + [int(n)]
            )


def prepare_out(out: str | Path | None) -> Path | None:
    """The run folder, created (None: no run folder)."""
    if out is None:
        return None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ArtidError(f"--out {out} is an existing file: give a folder for the run")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtidError(f"cannot create the run folder {out}: {exc.strerror}") from None
    return out


def write_run(out: Path, results: dict, pipe: KNNPipeline, answers: dict, report: bool) -> None:
    """Write the run folder: the whole pipeline, the grid, the predictions, the report, results."""
    results["run_dir"] = str(out)
    pipe.save(out / "pipeline")
    if pipe.tuned is not None:
        _write_grid(out, pipe.tuned)
    split = "test" if "test" in answers else "val"
    entries, pred, score, conf, softmax, inliers = answers[split]
    _write_predictions(
        out / f"predictions_{split}.csv", entries, pred, score, conf, softmax, inliers
    )
    if report:
        from artid.evaluation.report import (
            write_report,
        )  # matplotlib only when a report is asked for

        results["report"] = write_report(out, results, entries, pred, score, pipe.tuned)
    write_json(out / "results.json", results)
