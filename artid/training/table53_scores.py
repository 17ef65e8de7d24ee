"""Scoring the rows of the Table 5.3 runner: test answers, GAP / GAP- / ACC with bootstrap SE,
the paired difference to the untrained row, and the table.

Every row answers the same test queries, so a row and the untrained model are compared by a
paired bootstrap over those queries; a row counts as a gain only beyond 3 paired SE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from artid.errors import ArtidError
from artid.files import atomic_path
from artid.metrics.bootstrap import ilr_estimates, ilr_paired
from artid.retrieval.pipeline import KNNPipeline, PipelineConfig

#: A gain is a paired difference beyond this many standard errors.
GAIN_SE = 3.0


def knn_answers(
    desc: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    keys: dict[str, np.ndarray],
    whiten: str = "auto",
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Test (pred, score) of the kNN pipeline fitted on the database and tuned on val."""
    pipe = KNNPipeline(PipelineConfig(whiten=whiten, use_gpu=False)).fit(
        desc["database"], labels["database"], desc["val"], labels["val"], keys["val"]
    )
    ans = pipe.predict(desc["test"], progress=False)
    projection = pipe.projection
    assert projection is not None  # set by fit
    return (
        ans.pred,
        ans.score,
        {
            "k": pipe.k,
            "tau": pipe.tau,
            "whitening": projection.summary()["dims"] if projection.whitened else "raw",
        },
    )


def save_answers(path: Path, pred: np.ndarray, score: np.ndarray) -> None:
    """Write a row's test answers (``pred``, ``score``) as ``.npz``, atomically."""
    with atomic_path(path) as tmp:
        np.savez(tmp, pred=pred, score=score)


def load_answers(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["pred"], z["score"]
    except (OSError, KeyError, ValueError) as exc:
        raise ArtidError(
            f"{path}: cannot read the row's test answers ({exc}); delete it to re-score the row"
        ) from None


def row_stats(
    answers: tuple[np.ndarray, np.ndarray],
    baseline: tuple[np.ndarray, np.ndarray] | None,
    labels: np.ndarray,
    keys: np.ndarray,
    resamples: int = 1000,
) -> dict[str, Any]:
    """Metrics with SE, and the paired difference to the baseline (when given), as fractions."""
    est = ilr_estimates(answers[0], answers[1], labels, keys, resamples)
    out: dict[str, Any] = {m: e.to_json() for m, e in est.items()}
    if baseline is not None:
        diff = ilr_paired(answers, baseline, labels, keys, resamples)
        out["vs_untrained"] = {m: e.to_json() for m, e in diff.items()}
    return out


def _cell(stat: dict[str, float]) -> str:
    return f"{100 * stat['value']:.1f} ± {100 * stat['se']:.1f}"


def _diff(stat: dict[str, float]) -> str:
    v, se = 100 * stat["value"], 100 * stat["se"]
    mark = (
        " **gain**"
        if se > 0 and v > GAIN_SE * se
        else (" loss" if se > 0 and v < -GAIN_SE * se else "")
    )
    return f"{v:+.1f} ± {se:.1f}{mark}"


def _or_dash(x: Any) -> str:
    return "-" if x is None else str(x)


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown: per row and section GAP, GAP-, ACC (± SE), ΔGAP and ΔACC vs untrained
    (± paired SE), optimiser steps, best epoch, minutes."""
    head = (
        "| Method | GAP | GAP- | ACC | ΔGAP vs untrained | ΔACC vs untrained | steps "
        "| best epoch | min |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for section, key in (
        ("kNN classification", "knn"),
        ("Parametric classification", "parametric"),
    ):
        rows = [(name, r) for name, r in results.items() if r.get(key)]
        if not rows:
            continue
        lines.append(f"| *{section}* | | | | | | | | |")
        for name, r in rows:
            s = r[key]
            d = s.get("vs_untrained")
            lines.append(
                f"| {name} | {_cell(s['gap'])} | {_cell(s['gap_minus'])} | {_cell(s['acc'])} | "
                f"{_diff(d['gap']) if d else '-'} | {_diff(d['acc']) if d else '-'} | "
                f"{_or_dash(r.get('steps'))} | {_or_dash(r.get('best_epoch'))} | "
                f"{r.get('minutes') or 0:.1f} |"
            )
    return "\n".join(lines)
