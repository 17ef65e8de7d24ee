"""Seed 003's single-label task: one attribute group (e.g. ``department``) as a multi-class problem.

Each image carries exactly one label of the chosen group (the synthetic benchmark's ``department``;
an iMet group where some images have several is refused, naming the first such row). The classifier
is a softmax head on frozen descriptors (:mod:`artid.attributes.head`), optionally with
inverse-frequency class weights. Metrics as in seed 003's tables: top-1 and top-5 accuracy, macro
precision and recall, one-vs-rest macro ROC AUC (scikit-learn), and a confusion-matrix plot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    confusion_matrix,
    precision_score,
    recall_score,
    roc_auc_score,
)

from artid.attributes.imet import IMetDataset, IMetSplit
from artid.errors import ArtidError
from artid.files import atomic_path


def group_columns(dataset: IMetDataset, group: str) -> np.ndarray:
    """The label columns of ``group``; :class:`ArtidError` listing the groups if it has none."""
    if group not in dataset.groups:
        raise ArtidError(
            f"--group {group!r}: no such label group; the groups are {', '.join(dataset.groups)}"
        )
    return dataset.groups[group]


def class_codes(split: IMetSplit, columns: np.ndarray) -> np.ndarray:
    """(N,) class code (position in ``columns``) of each image; an image without exactly one is an
    error."""
    sub = split.targets()[:, columns]
    counts = sub.sum(1)
    bad = np.flatnonzero(counts != 1)
    if len(bad):
        i = int(bad[0])
        raise ArtidError(
            f"{split.source}: image {split.ids[i]} has {int(counts[i])} labels of this group; the "
            "multi-class task needs exactly one per image (choose another --group)"
        )
    return np.argmax(sub, axis=1)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def multiclass_metrics(codes: np.ndarray, probs: np.ndarray) -> dict:
    """Top-1 / top-5 accuracy, macro precision / recall and macro one-vs-rest ROC AUC.

    Args:
        codes: (N,) true class codes.
        probs: (N, C) class probabilities.

    ROC AUC is averaged over the classes present in ``codes`` with at least one negative (NaN if
    none).
    """
    n_classes = probs.shape[1]
    pred = np.argmax(probs, axis=1)
    k = min(5, n_classes)
    top5 = np.argsort(-probs, axis=1)[:, :k]
    present = [c for c in np.unique(codes) if 0 < (codes == c).sum() < len(codes)]
    aucs = [roc_auc_score(codes == c, probs[:, c]) for c in present]
    return {
        "top1": float(np.mean(pred == codes)),
        "top5": float(np.mean((top5 == codes[:, None]).any(1))),
        "precision_macro": float(
            precision_score(codes, pred, labels=np.unique(codes), average="macro", zero_division=0)
        ),
        "recall_macro": float(
            recall_score(codes, pred, labels=np.unique(codes), average="macro", zero_division=0)
        ),
        "roc_auc_macro": float(np.mean(aucs)) if aucs else float("nan"),
        "images": len(codes),
    }


def plot_confusion(codes: np.ndarray, probs: np.ndarray, names: list[str], file: Path) -> Path:
    """Row-normalised confusion matrix (true rows, predicted columns) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = np.arange(len(names))
    cm = confusion_matrix(codes, np.argmax(probs, axis=1), labels=labels, normalize="true")
    size = max(5.0, 0.45 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(np.nan_to_num(cm), display_labels=names).plot(
        ax=ax, cmap="Blues", colorbar=False, values_format=".2f", xticks_rotation="vertical"
    )
    ax.set_title("confusion matrix (rows: true, normalised)")
    fig.tight_layout()
    with atomic_path(file) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return file
