"""The evaluation report: PNG plots, a small self-contained HTML page, and the paper-style table.

Plots (:mod:`artid.evaluation.plots`, written beside ``index.html`` and linked relatively):

- ``pr_curve.png``: the precision-recall curves behind GAP (all queries) and GAP- (no distractors);
- ``confidences.png``: confidence distributions of correct Met queries, wrong Met queries,
  other-art and non-art distractors;
- ``accuracy_by_bucket.png``: accuracy by number of database images of the query's class;
- ``grid.png``: validation GAP over the (k, tau) grid (when tuned);
- ``reliability.png``: the reliability diagram of the confidence, with its expected calibration
  error (when the metrics hold them).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artid.data.entries import Entry
from artid.evaluation.plots import (
    GROUPS,
    plot_buckets,
    plot_grid,
    plot_pr_curve,
    plot_reliability,
    plot_scores,
    query_groups,
)
from artid.files import write_text
from artid.retrieval.autotune import AutotuneResult

__all__ = [
    "GROUPS",
    "format_table",
    "pct",
    "plot_buckets",
    "plot_grid",
    "plot_pr_curve",
    "plot_reliability",
    "plot_scores",
    "query_groups",
    "whitening_label",
    "write_html",
    "write_report",
]


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
    if m.get("ece") is not None:
        ratios += f"<tr><td>calibration error (ECE)</td><td>{pct(m['ece'])}</td></tr>"
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
    write_text(path, page)
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
    if results[split].get("reliability"):
        plot_reliability(
            out / "reliability.png",
            results[split]["reliability"],
            results[split]["ece"],
            f"reliability of the confidence ({split})",
        )
        images["Reliability of the confidence (probability that the answer is right)"] = (
            "reliability.png"
        )
    if tuned is not None:
        plot_grid(out / "grid.png", tuned)
        images["Autotune grid (validation GAP)"] = "grid.png"
    page = write_html(out, results, images)
    return {"html": page.name, **{v.removesuffix(".png"): v for v in images.values()}}
