"""Attribute tags for single photos, from an attributes run on frozen descriptors (``head`` or
``knn``).

What the recognition service needs to tag a photo: the run's ``run.json`` (labels, descriptor
settings, the thresholds chosen on validation and which kind the run uses) and its model files
(``head.npz``, or ``knn_database.npy`` + ``knn_labels.npy``). :func:`servable_run` checks a run
folder and lists those files, :func:`copy_servable` copies them into another folder (a bundle keeps
its own copy), and :class:`Tagger` loads such a folder and turns (N, D) descriptors of the run's
backbone and settings into scores and tags: a label is *predicted* when its score reaches the run's
validation-chosen threshold, and every photo gets at least one (the rule the thresholds were
searched with).

Only models on frozen descriptors are servable: the service describes the photo once with the
bundle's backbone and reuses that descriptor (the fine-tuned, BoW + SVM and multi-class runs would
need a network or pipeline of their own).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artid.attributes.arrays import load_npy, load_npz, npy_header
from artid.attributes.features import FeatureSpec
from artid.attributes.runs import read_run
from artid.errors import ArtidError
from artid.files import copy_file, write_json
from artid.metrics.decisions import apply_thresholds, broadcast_thresholds, label_group

#: Models a service can tag photos with, and the files each needs besides ``run.json``.
SERVABLE_FILES: dict[str, tuple[str, ...]] = {
    "head": ("head.npz",),
    "knn": ("knn_database.npy", "knn_labels.npy"),
}
#: Tags listed per photo: every predicted one, then the best others up to this many in all.
DEFAULT_LISTED = 10


@dataclass(frozen=True)
class Tag:
    """One attribute of a photo.

    Attributes:
        label: the whole label name (``culture::american``).
        score: the model's score, 0..1.
        predicted: at or above the run's threshold for this label (or the photo's best label,
            which the at-least-one rule predicts).
    """

    label: str
    score: float
    predicted: bool

    @property
    def group(self) -> str:
        """The label's group (``culture``), ``""`` for a label without one."""
        return label_group(self.label)

    @property
    def name(self) -> str:
        """The label's name within its group (``american``)."""
        return self.label.partition("::")[2] if self.group else self.label

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "score": round(float(self.score), 6),
            "predicted": self.predicted,
        }


def servable_run(run: str | Path, option: str = "--attributes") -> dict[str, Any]:
    """The ``run.json`` of an attributes run a service can tag photos with.

    Raises:
        ArtidError: naming ``option`` and the run: not a run, a model that is not on frozen
            descriptors, no validation-chosen thresholds, or a missing model file.
    """
    run = Path(run)
    try:
        meta = read_run(run)
    except ArtidError as exc:
        raise ArtidError(f"{option} {run}: {exc}") from None
    kind = meta.get("model")
    if kind not in SERVABLE_FILES:
        raise ArtidError(
            f"{option} {run}: a {kind!r} run cannot tag photos in the service; train one with "
            f"--model {' or --model '.join(SERVABLE_FILES)} (models on frozen descriptors)"
        )
    mode = meta.get("thresholds_mode")
    if mode not in (meta.get("thresholds") or {}):
        raise ArtidError(
            f"{option} {run}: run.json has no {mode!r} thresholds chosen on validation"
        )
    for name in SERVABLE_FILES[kind]:
        if not (run / name).is_file():
            raise ArtidError(f"{option} {run}: the {kind} run's {name} is missing")
    try:
        check_run_arrays(run, kind, len(meta.get("labels") or []))
        if kind == "head":  # small: load it, every tensor's name and shape checked
            read_head(run, meta)
    except ArtidError as exc:
        raise ArtidError(f"{option} {run}: {exc}") from None
    return meta


def check_run_arrays(run: Path, kind: str, labels: int) -> int:
    """Check the model arrays of a servable run without reading a kNN database's data: every
    header, the files' lengths and the shapes against the run's ``labels``; returns the
    descriptor dimension the run takes.

    Raises:
        ArtidError: a truncated, corrupt or missing array file, or shapes that do not fit.
    """
    if kind == "knn":
        db, db_type = npy_header(run / "knn_database.npy")
        y, _ = npy_header(run / "knn_labels.npy")
        if len(db) != 2 or db_type.kind != "f" or y != (db[0], labels):
            raise ArtidError(
                f"knn_database.npy {db} {db_type} and knn_labels.npy {y} do not fit {labels} "
                "labels ((N, D) floats and (N, labels))"
            )
        return db[1]
    return _head_input_dim(run / "head.npz")


def copy_servable(run: str | Path, dest: Path, option: str = "--attributes") -> dict[str, Any]:
    """Copy what :class:`Tagger` needs of ``run`` into the new folder ``dest``; returns the run's
    meta."""
    run = Path(run)
    meta = servable_run(run, option)
    dest.mkdir(parents=True)
    write_json(dest / "run.json", meta)
    for name in SERVABLE_FILES[meta["model"]]:
        copy_file(run / name, dest / name)
    return meta


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _head_input_dim(file: Path) -> int:
    """The descriptor dimension a saved head takes (its first layer's input width)."""
    arrays = load_npz(file)
    weight = arrays.get("weight", arrays.get("0.weight"))
    if weight is None or weight.ndim != 2:
        raise ArtidError(f"{file}: not a saved attributes head (no 2-D first-layer weight)")
    return int(weight.shape[1])


def read_head(run: Path, meta: dict[str, Any]) -> tuple[int, Any]:
    """A head run's descriptor dimension and its head network, every tensor checked."""
    from artid.attributes.head import HeadSettings, load_head

    dim = _head_input_dim(run / "head.npz")
    settings = HeadSettings(**meta["settings"]["head"])
    return dim, load_head(run / "head.npz", dim, len(meta.get("labels") or []), settings)


class Tagger:
    """A servable attributes run (see :func:`servable_run`), loaded for inference.

    Thread-safe: scoring reads the loaded model only.

    Args:
        folder: a run folder, or the copy :func:`copy_servable` made.
        listed: tags listed per photo by :meth:`tags` (all predicted ones, then the best others).
    """

    def __init__(self, folder: str | Path, listed: int = DEFAULT_LISTED) -> None:
        folder = Path(folder)
        meta = servable_run(folder, "attributes")
        self.folder, self.meta, self.listed = folder, meta, int(listed)
        self.kind: str = meta["model"]
        self.labels: list[str] = list(meta["labels"])
        self.features = FeatureSpec.from_json(meta["features"])
        self.mode: str = meta["thresholds_mode"]
        self.thresholds = broadcast_thresholds(
            np.asarray(meta["thresholds"][self.mode]["thresholds"]), len(self.labels)
        )
        self._head: Any = None
        if self.kind == "knn":
            self._db = load_npy(folder / "knn_database.npy").astype(np.float32)
            self._db_labels = load_npy(folder / "knn_labels.npy")
            if self._db.ndim != 2 or self._db_labels.shape != (len(self._db), len(self.labels)):
                raise ArtidError(
                    f"{folder}: knn_database.npy {self._db.shape} and knn_labels.npy "
                    f"{self._db_labels.shape} do not fit {len(self.labels)} labels"
                )
            self.dim = int(self._db.shape[1])
        else:
            self.dim, self._head = read_head(folder, meta)

    def scores(self, descriptors: np.ndarray) -> np.ndarray:
        """(N, L) label scores in 0..1 of (N, D) L2-normalised descriptors of the run's backbone and
        settings."""
        x = np.asarray(descriptors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ArtidError(
                f"attributes run {self.folder} takes {self.dim}-d descriptors, got shape {x.shape}"
            )
        if self.kind == "knn":
            from artid.attributes.knn_transfer import transfer_scores

            s = self.meta["settings"]
            return transfer_scores(x, self._db, self._db_labels, int(s["k"]), float(s["tau"]))
        from artid.attributes.head import head_logits

        return _sigmoid(head_logits(self._head, x))

    def tags(self, descriptors: np.ndarray) -> list[list[Tag]]:
        """Per photo: its predicted tags and then the best others, up to ``listed`` in all, highest
        score first."""
        scores = self.scores(descriptors)
        predicted = apply_thresholds(scores, self.thresholds, at_least_one=True)
        out = []
        for s, p in zip(scores, predicted):
            order = np.argsort(-s, kind="stable")
            chosen = [int(j) for j in order if p[j]]
            chosen += [int(j) for j in order if not p[j]][: max(0, self.listed - len(chosen))]
            chosen.sort(key=lambda j: (-s[j], j))
            out.append([Tag(self.labels[j], float(s[j]), bool(p[j])) for j in chosen])
        return out

    def summary(self) -> dict[str, Any]:
        """What a bundle's manifest records of the run (``artid index info`` prints it)."""
        groups: list[str] = []
        for name in self.labels:
            if label_group(name) not in groups:
                groups.append(label_group(name))
        return {
            "model": self.kind,
            "labels": len(self.labels),
            "groups": groups,
            "thresholds": self.mode,
            "val_f2": self.meta["thresholds"][self.mode].get("fbeta"),
            "features": self.features.to_json(),
            "dim": self.dim,
        }
