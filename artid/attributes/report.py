"""Decisions and the report of a multi-label attribute model: thresholds from validation, metrics,
plots.

:func:`fit_thresholds` searches the three kinds of thresholds of :mod:`artid.metrics.thresholds`
(global, per group, per label shrunk toward the group) on validation scores, each with the
at-least-one-label rule. :func:`write_report` writes a folder with ``metrics.json``, the F2 curve
of one global threshold (``threshold_curve.png``), each label's F2 against its training frequency
(``label_f2.png``) and a grid of example images with their true and predicted tags
(``examples.png``).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artid.data.images import load_image
from artid.errors import ArtidError
from artid.files import atomic_path, write_text
from artid.metrics.bootstrap import bootstrap
from artid.metrics.decisions import apply_thresholds, label_groups
from artid.metrics.multilabel import (
    fbeta_per_image,
    fbeta_per_label,
    mean_fbeta,
    ranking_metrics,
)
from artid.metrics.thresholds import (
    fbeta_curve,
    search_global,
    search_per_group,
    search_per_label,
)

#: Threshold kinds, searched in this order (each starts from the previous one).
MODES = ("global", "group", "label")


def fit_thresholds(y_val: np.ndarray, scores: np.ndarray, names: Sequence[str]) -> dict[str, dict]:
    """Global, per-group and per-label thresholds (at-least-one rule) on validation: mode ->
    ThresholdFit dict."""
    groups = label_groups(names)
    g = search_global(y_val, scores, at_least_one=True)
    grp = search_per_group(y_val, scores, groups, at_least_one=True, start=g.thresholds)
    lab = search_per_label(y_val, scores, groups, at_least_one=True, start=grp.thresholds)
    return {fit.mode: fit.as_dict() for fit in (g, grp, lab)}


def decide(scores: np.ndarray, fits: dict[str, dict], mode: str) -> np.ndarray:
    """(N, L) decisions at the validation-chosen thresholds of ``mode`` (with the at-least-one
    rule)."""
    if mode not in fits:
        raise ArtidError(f"--thresholds {mode!r}: this run has {', '.join(fits)}")
    return apply_thresholds(scores, np.asarray(fits[mode]["thresholds"]), at_least_one=True)


def f2_estimate(y: np.ndarray, pred: np.ndarray, resamples: int = 1000, seed: int = 0) -> dict:
    """Mean per-image F2 with its bootstrap SE over images."""
    per_image = fbeta_per_image(y, pred)
    est = bootstrap(lambda ix: float(per_image[ix].mean()), len(per_image), resamples, seed)
    return est.to_json()


def multilabel_metrics(
    y: np.ndarray,
    scores: np.ndarray,
    fits: dict[str, dict],
    mode: str,
    fixed: float = 0.5,
    resamples: int = 1000,
) -> dict:
    """F2 at the val-chosen thresholds (± bootstrap SE), F2 of every mode, F2 at a fixed threshold,
    AUCs."""
    pred = decide(scores, fits, mode)
    return {
        "thresholds": mode,
        "f2": f2_estimate(y, pred, resamples),
        "f2_by_mode": {m: mean_fbeta(y, decide(scores, fits, m)) for m in fits},
        f"f2_at_{fixed:g}": mean_fbeta(y, apply_thresholds(scores, fixed)),
        "ranking": ranking_metrics(y, scores).as_dict(),
        "images": len(y),
    }


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_threshold_curve(
    y: np.ndarray, scores: np.ndarray, fits: dict[str, dict], file: Path, title: str
) -> None:
    """Mean F2 against one global threshold (at-least-one rule), with the val-chosen global
    threshold marked."""
    lo, hi = float(scores.min()), float(scores.max())
    cands = np.linspace(lo, hi, 101) if hi > lo else np.array([lo])
    curve = fbeta_curve(y, scores, cands, at_least_one=True)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(cands, curve, label="F2, one threshold for all labels")
    t = fits["global"]["thresholds"][0]
    ax.axvline(t, color="C1", ls="--", label=f"chosen on validation: {t:.3g}")
    ax.set_xlabel("threshold")
    ax.set_ylabel("mean per-image F2")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(file) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def plot_label_f2(
    y: np.ndarray, pred: np.ndarray, train_counts: np.ndarray, file: Path, title: str
) -> None:
    """Each label's F2 (on the evaluated split) against its number of training images."""
    f2 = fbeta_per_label(y, pred)
    present = y.sum(0) > 0
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(np.maximum(train_counts[present], 0.8), f2[present], s=14, alpha=0.7)
    ax.set_xscale("log")
    ax.set_xlabel("training images with the label")
    ax.set_ylabel("F2 of the label")
    ax.set_title(f"{title} ({int(present.sum())} labels present)")
    fig.tight_layout()
    with atomic_path(file) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def _tag_text(head: str, tags: list[str], limit: int = 8) -> str:
    more = f" (+{len(tags) - limit} more)" if len(tags) > limit else ""
    return textwrap.fill(f"{head}: " + ", ".join(tags[:limit]) + more, width=44)


def plot_examples(
    paths: Sequence[Path],
    y: np.ndarray,
    scores: np.ndarray,
    pred: np.ndarray,
    names: Sequence[str],
    file: Path,
    n: int = 8,
) -> None:
    """A grid of images with their true tags and the predicted ones.

    Predicted tags come highest score first, marked ``+`` when correct and ``-`` when wrong.
    """
    plt = _plt()
    idx: list[int] = (
        np.linspace(0, len(paths) - 1, min(n, len(paths))).round().astype(int).tolist()
        if len(paths)
        else []
    )
    cols = min(4, max(1, len(idx)))
    rows = max(1, -(-len(idx) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 4.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), idx):
        ax.imshow(load_image(paths[i], max_size=256))
        true = [names[j] for j in np.flatnonzero(y[i]).tolist()]
        said = sorted(np.flatnonzero(pred[i]).tolist(), key=lambda j: -scores[i, j])
        marked = [("+" if y[i, j] else "-") + names[j] for j in said]
        ax.set_title(
            _tag_text("true", true) + "\n" + _tag_text("predicted", marked), fontsize=7, loc="left"
        )
    fig.tight_layout()
    with atomic_path(file) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def write_report(
    folder: Path,
    metrics: dict,
    y: np.ndarray,
    scores: np.ndarray,
    fits: dict[str, dict],
    paths: Sequence[Path],
    names: Sequence[str],
    train_counts: np.ndarray,
    split: str,
) -> Path:
    """``metrics.json`` and the three plots of the module docstring into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "metrics.json", json.dumps(metrics, indent=1, default=float))
    pred = decide(scores, fits, metrics["thresholds"])
    short = [n.split("::", 1)[-1] for n in names]
    plot_threshold_curve(
        y, scores, fits, folder / "threshold_curve.png", f"{split}: F2 against the threshold"
    )
    plot_label_f2(y, pred, train_counts, folder / "label_f2.png", f"{split}: per-label F2")
    plot_examples(paths, y, scores, pred, short, folder / "examples.png")
    return folder
