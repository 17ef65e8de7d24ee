"""The evaluation report's plots (matplotlib, Agg backend), each written atomically as a PNG.

- :func:`plot_pr_curve`: the precision-recall curves behind GAP (all queries) and GAP- (no
  distractors);
- :func:`plot_scores`: ranking-score distributions of correct Met queries, wrong Met queries,
  other-art and non-art distractors;
- :func:`plot_buckets`: accuracy by number of database images of the query's class;
- :func:`plot_grid`: validation GAP over the (k, tau) grid;
- :func:`plot_reliability`: the reliability diagram of the confidence (share of right answers
  against the confidence, per bin) and how many answers fall in each bin.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from artid.data.entries import DISTRACTOR, Entry  # noqa: E402
from artid.files import atomic_path  # noqa: E402
from artid.metrics.ilr import precision_recall  # noqa: E402
from artid.retrieval.autotune import AutotuneResult  # noqa: E402


def _save(fig: Figure, path: Path, dpi: int = 110) -> None:
    """Lay out, write ``fig`` to ``path`` atomically (format from its suffix) and close it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)


#: Query groups of the confidence plot: name -> colour.
GROUPS = {
    "Met, correct": "tab:green",
    "Met, wrong": "tab:red",
    "other-art distractor": "tab:orange",
    "non-art distractor": "tab:gray",
}


def query_groups(entries: list[Entry], pred: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks (Q,) of the four groups of :data:`GROUPS`."""
    labels = np.array([e.label for e in entries], dtype=np.int64)
    kinds = np.array([e.kind for e in entries])
    met = labels != DISTRACTOR
    return {
        "Met, correct": met & (pred == labels),
        "Met, wrong": met & (pred != labels),
        "other-art distractor": (~met) & (kinds == "other"),
        "non-art distractor": (~met) & (kinds != "other"),
    }


def plot_pr_curve(
    path: Path, pred: np.ndarray, conf: np.ndarray, labels: np.ndarray, keys: np.ndarray, title: str
) -> None:
    """Precision against recall over the score ranking, with and without distractors."""
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    known = labels != DISTRACTOR
    for name, keep, style in (
        ("all queries (GAP)", np.ones_like(known), "-"),
        ("no distractors (GAP-)", known, "--"),
    ):
        precision, recall = precision_recall(pred[keep], conf[keep], labels[keep], keys[keep])
        ax.plot(np.r_[0.0, recall], np.r_[1.0, precision], style, label=name)
    ax.set_xlabel("recall (correct Met queries / all Met queries)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_scores(path: Path, score: np.ndarray, groups: dict[str, np.ndarray], title: str) -> None:
    """Histograms of the ranking score (log-odds of the top class) per query group (density, so
    small groups stay visible). The confidence ``sigmoid(score)`` sits at 1.0 for most queries at
    a large tau; the log-odds spread them out. Unreadable queries (score -inf) are left out."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    finite = np.isfinite(score)
    logc = np.where(finite, score, 0.0)
    groups = {name: mask & finite for name, mask in groups.items()}
    lo, hi = (float(logc[finite].min()), float(logc[finite].max())) if finite.any() else (0.0, 1.0)
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
    for name, mask in groups.items():
        if mask.any():
            ax.hist(
                logc[mask],
                bins=bins.tolist(),
                histtype="step",
                linewidth=1.6,
                density=True,
                color=GROUPS[name],
                label=f"{name} ({int(mask.sum())})",
            )
    ax.set_xlabel("log-odds of the top class (ranking score)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_buckets(path: Path, rows: list[dict], title: str) -> None:
    """Bar chart of accuracy per class-size bucket, with the query count on each bar."""
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    names = [r["bucket"] for r in rows]
    values = [100 * (r["accuracy"] or 0.0) for r in rows]
    bars = ax.bar(np.arange(len(names)), values, color="tab:blue", tick_label=names)
    for bar, r in zip(bars, rows):
        ax.annotate(
            f"n={r['queries']}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xlabel("database images of the query's class")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, max(values + [1.0]) * 1.15)
    ax.set_title(title)
    _save(fig, path)


def plot_grid(path: Path, tuned: AutotuneResult) -> None:
    """Heat map of validation GAP (%) over k (rows) and tau (columns); the best point is boxed."""
    fig, ax = plt.subplots(figsize=(8, 4.6))
    values = 100 * tuned.gap
    im = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(tuned.taus)), [f"{t:g}" for t in tuned.taus])
    ax.set_yticks(range(len(tuned.ks)), [str(k) for k in tuned.ks])
    ax.set_xlabel("tau")
    ax.set_ylabel("k")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(
                j,
                i,
                f"{values[i, j]:.1f}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if values[i, j] < values.max() * 0.6 else "black",
            )
    bi, bj = tuned.ks.index(tuned.best_k), tuned.taus.index(tuned.best_tau)
    ax.add_patch(
        plt.Rectangle((bj - 0.5, bi - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2)
    )
    fig.colorbar(im, ax=ax, label="validation GAP (%)")
    ax.set_title("autotune: validation GAP over the (k, tau) grid")
    _save(fig, path)


def plot_reliability(path: Path, bins: list[dict], ece: float, title: str) -> None:
    """Reliability diagram: per confidence bin (:func:`artid.metrics.calibration.reliability_bins`)
    the share of right answers (bars) against the diagonal of a perfect calibration, the bin's mean
    confidence (dots), and below it the answers per bin (log scale)."""
    fig, (top, low) = plt.subplots(
        2, 1, figsize=(5.5, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    full = [b for b in bins if b["queries"]]
    width = bins[0]["hi"] - bins[0]["lo"] if bins else 0.1
    centres = [(b["lo"] + b["hi"]) / 2 for b in full]
    top.bar(centres, [b["right"] for b in full], width=width * 0.9, color="tab:blue",
            alpha=0.75, label="share of right answers")
    top.plot([b["confidence"] for b in full], [b["right"] for b in full], "o", color="black",
             markersize=3, label="at the bin's mean confidence")
    top.plot([0, 1], [0, 1], "--", color="tab:gray", label="perfect calibration")
    top.set_ylabel("share of right answers")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    top.set_title(f"{title}: ECE {100 * ece:.1f}%")
    top.legend(fontsize=8, loc="upper left")
    top.grid(alpha=0.3)
    low.bar(centres, [b["queries"] for b in full], width=width * 0.9, color="tab:gray")
    low.set_yscale("log")
    low.set_xlabel("confidence (calibrated on validation)")
    low.set_ylabel("answers")
    _save(fig, path)
