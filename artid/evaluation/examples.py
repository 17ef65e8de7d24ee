"""A picture of what the classifier did: query photos beside the exhibit it named.

Reads the ``predictions_<split>.csv`` of a run folder (written by
:func:`artid.evaluation.run.evaluate`) and draws a few typical cases side by side:
visitor photos recognised with high confidence, a visitor photo given the wrong
exhibit, and distractors (photos of things outside the collection) with the
confidence they got: the ``confidence`` column, the probability that the answer is
right calibrated on validation (:mod:`artid.metrics.calibration`), not the softmax
that reads 1.00 for nearly every answer at a large tau. Only matplotlib and Pillow;
no model is needed.
"""

from __future__ import annotations

import csv
from pathlib import Path

from artid.data.entries import Entry
from artid.data.images import load_image
from artid.errors import ArtidError
from artid.files import atomic_path

#: (title, which rows) of the cases drawn, in order.
CASES = (
    ("recognised", lambda r: r["kind"] == "met" and r["correct"] == "1"),
    ("wrong exhibit", lambda r: r["kind"] == "met" and r["correct"] != "1"),
    ("not in the collection", lambda r: r["kind"] in ("other", "noart")),
)


def read_predictions(path: Path) -> list[dict[str, str]]:
    """The rows of a predictions CSV (path, kind, label, prediction, score, confidence, correct)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ArtidError(f"{path}: cannot read the predictions ({exc.strerror})") from None
    missing = {"path", "kind", "label", "prediction", "score", "confidence", "correct"} - set(
        rows[0] if rows else {}
    )
    if missing:
        raise ArtidError(f"{path}: not a predictions file (missing columns {sorted(missing)})")
    return rows


def pick_examples(
    rows: list[dict[str, str]], per_case: tuple[int, int, int] = (2, 1, 1)
) -> list[tuple[str, dict]]:
    """Typical cases: most confident correct answers, most confident wrong one, median distractor.

    Returns:
        (case title, row) pairs, in the order of :data:`CASES`.
    """
    picked = []
    for (title, keep), n in zip(CASES, per_case):
        cands = sorted((r for r in rows if keep(r)), key=lambda r: (-float(r["score"]), r["path"]))
        if title == "not in the collection" and cands:  # a typical one, not the worst
            cands = cands[len(cands) // 2 :]
        picked += [(title, r) for r in cands[:n]]
    return picked


def plot_examples(
    predictions: Path,
    image_root: Path,
    database: list[Entry],
    out: Path,
    per_case: tuple[int, int, int] = (2, 1, 1),
    max_size: int = 320,
) -> Path:
    """Draw query | named exhibit pairs into a PNG.

    Args:
        predictions: a run folder's ``predictions_test.csv`` (or ``_val``).
        image_root: folder the query and database paths are relative to.
        database: the database entries (the first image of the predicted class is shown).
        out: PNG to write.
        per_case: how many examples of each of :data:`CASES`.
        max_size: longer side the photos are loaded at.

    Returns:
        ``out``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first_image: dict[int, str] = {}
    for e in database:
        first_image.setdefault(e.label, e.path)
    examples = pick_examples(read_predictions(predictions), per_case)
    if not examples:
        raise ArtidError(f"{predictions}: no predictions to draw")
    fig, axes = plt.subplots(2, len(examples), figsize=(2.6 * len(examples), 5.6), squeeze=False)
    for col, (title, row) in enumerate(examples):
        query, top = axes[0, col], axes[1, col]
        query.imshow(load_image(image_root / row["path"], max_size=max_size))
        query.set_title(f"{title}\n{_query_caption(row)}", fontsize=9)
        shown = first_image.get(int(row["prediction"]))
        if shown is not None:
            top.imshow(load_image(image_root / shown, max_size=max_size))
        conf = float(row["confidence"])
        top.set_title(
            f"named: exhibit {row['prediction']}\nP(right) {conf:.2f}",
            fontsize=9,
            color=_colour(row),
        )
        for ax in (query, top):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("query photo")
    axes[1, 0].set_ylabel("named exhibit\n(studio photo)")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return out


def _query_caption(row: dict[str, str]) -> str:
    if row["kind"] == "met":
        return f"true exhibit {row['label']}"
    return "other artwork" if row["kind"] == "other" else "not an artwork"


def _colour(row: dict[str, str]) -> str:
    if row["kind"] != "met":
        return "#555555"  # a distractor: what matters is that its confidence is low
    return "#2e7d32" if row["correct"] == "1" else "#b71c1c"
