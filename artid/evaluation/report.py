"""The evaluation report: PNG plots, a small self-contained HTML page, and the paper-style table.

Plots (matplotlib, Agg backend, written beside ``index.html`` and linked relatively):

- ``pr_curve.png``: the precision-recall curves behind GAP (all queries) and GAP- (no distractors);
- ``confidences.png``: confidence distributions of correct Met queries, wrong Met queries,
  other-art and non-art distractors;
- ``accuracy_by_bucket.png``: accuracy by number of database images of the query's class;
- ``grid.png``: validation GAP over the (k, tau) grid (when tuned).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402

from artid.data.entries import DISTRACTOR, Entry  # noqa: E402
from artid.metrics.ilr import precision_recall  # noqa: E402
from artid.retrieval.autotune import AutotuneResult  # noqa: E402

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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pct(x: float | None) -> str:
    """A fraction as the paper writes it: percent with one decimal."""
    return "-" if x is None else f"{100 * x:.1f}"


def whitening_label(result: dict) -> str:
    """``PCAw 512`` (or ``PCAw 512+256`` for concatenated parts) or ``raw``."""
    proj = result.get("pipeline", {}).get("projection", {})
    if proj.get("whiten") != "pcaw":
        return "raw"
    return "PCAw " + "+".join(str(d) for d in proj.get("dims", []))


def format_table(results: Sequence[dict], split: str = "test") -> str:
    """The paper-style table: one row per evaluation (GAP, GAP-, ACC in percent, k, tau)."""
    header = ["", "GAP", "GAP-", "ACC", "k", "tau", "whitening"]
    rows = []
    for r in results:
        m = r.get(split) or {}
        rows.append(
            [
                r.get("name") or "-",
                pct(m.get("gap")),
                pct(m.get("gap_minus")),
                pct(m.get("acc")),
                str(r["k"]),
                f"{r['tau']:g}",
                whitening_label(r),
            ]
        )
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    sep = "-" * len(line(header))
    return "\n".join([f"{split} set", line(header), sep, *(line(r) for r in rows)])


def _metrics_table(name: str, m: dict) -> str:
    ratios = "".join(
        f"<tr><td>GAP, {100 * float(r):g}% of distractors</td><td>{pct(v)}</td></tr>"
        for r, v in m["gap_at_distractor_ratio"].items()
    )
    q = m["queries"]
    return (
        f"<h3>{html.escape(name)}</h3><table>"
        f"<tr><td>GAP</td><td><b>{pct(m['gap'])}</b></td></tr>"
        f"<tr><td>GAP-</td><td>{pct(m['gap_minus'])}</td></tr>"
        f"<tr><td>ACC</td><td>{pct(m['acc'])}</td></tr>{ratios}"
        f"<tr><td>queries</td><td>{q['total']} ({q['met']} Met, {q['other']} other-art, "
        f"{q['noart']} non-art; M = {q['M']}; {q['unreadable']} unreadable, counted as wrong)"
        "</td></tr></table>"
    )


def write_html(out: Path, results: dict, images: dict[str, str]) -> Path:
    """``out/index.html``: settings, metric tables and the plots (relative links, no scripts)."""
    s, p = results["settings"], results["pipeline"]
    shown = {
        "whitening asked": s["whiten"],
        "whitening used": p["projection"]["whiten"],
        "dimensions": p["projection"]["dims"],
        "k": results["k"],
        "tau": results["tau"],
        "tuned on val": s["k"] is None,
        "N (classes)": p["n_classes"],
        "database images": s["database_images"],
        "descriptor dimensions": s["descriptor_dims"],
        "device": s["device"],
        "index": s["index"],
    }
    settings = "".join(
        f"<tr><td>{html.escape(str(key))}</td><td>{html.escape(str(v))}</td></tr>"
        for key, v in shown.items()
    )
    blocks = [
        _metrics_table(f"{split} set", results[split])
        for split in ("val", "test")
        if split in results
    ]
    buckets = ""
    main = results.get("test") or results.get("val")
    if main:
        buckets = (
            "<h3>Accuracy by database images per class</h3>"
            "<table><tr><th>images</th><th>queries</th><th>ACC</th></tr>"
            + "".join(
                f"<tr><td>{b['bucket']}</td><td>{b['queries']}</td><td>{pct(b['accuracy'])}</td></tr>"
                for b in main["accuracy_by_bucket"]
            )
            + "</table>"
        )
    figs = "".join(
        f'<figure><img src="{html.escape(f)}" alt="{html.escape(t)}"><figcaption>{html.escape(t)}'
        "</figcaption></figure>"
        for t, f in images.items()
    )
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in results["timings"].items())
    title = html.escape(results.get("name") or "artid evaluation")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:.5em 0}}
td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}
figure{{display:inline-block;margin:.5em}}img{{max-width:520px}}</style></head>
<body><h1>{title}</h1>
<p>kNN classifier with k = <b>{results["k"]}</b>, tau = <b>{results["tau"]:g}</b>
({"tuned on the validation queries by GAP" if s["k"] is None else "fixed"}). Metrics in percent.</p>
<table>{settings}</table>
{"".join(blocks)}
{buckets}
<h2>Plots</h2>{figs}
<p>Timings: {html.escape(timings)}. Files: <a href="results.json">results.json</a>
{'<a href="grid.csv">grid.csv</a>' if "autotune" in results else ""}</p>
</body></html>
"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_report(
    out: Path,
    results: dict,
    entries: list[Entry],
    pred: np.ndarray,
    score: np.ndarray,
    tuned: AutotuneResult | None,
) -> dict[str, str]:
    """Write the plots of one query set and the HTML page; returns names relative to ``out``."""
    split = "test" if "test" in results else "val"
    labels = np.array([e.label for e in entries], dtype=np.int64)
    keys = np.array([e.path for e in entries], dtype=str)
    images = {}
    plot_pr_curve(out / "pr_curve.png", pred, score, labels, keys, f"precision-recall ({split})")
    images["Precision-recall behind GAP"] = "pr_curve.png"
    plot_scores(
        out / "confidences.png",
        score,
        query_groups(entries, pred),
        f"ranking score by query group ({split})",
    )
    images["Score distributions (log-odds of the top class)"] = "confidences.png"
    plot_buckets(
        out / "accuracy_by_bucket.png",
        results[split]["accuracy_by_bucket"],
        f"accuracy by class size ({split})",
    )
    images["Accuracy by database images per class"] = "accuracy_by_bucket.png"
    if tuned is not None:
        plot_grid(out / "grid.png", tuned)
        images["Autotune grid (validation GAP)"] = "grid.png"
    page = write_html(out, results, images)
    return {"html": page.name, **{v.removesuffix(".png"): v for v in images.values()}}
