"""Attribute runs: train one model into a run folder, score a split, predict a submission, evaluate.

A run folder holds ``run.json`` (the model kind, its settings, the dataset's labels, the thresholds
chosen on validation and the training time) and the model's files:

===============  ==========================================================================
``head``         ``head.npz``: linear / MLP head on frozen descriptors (sigmoid + BCE)
``finetune``     ``best.pt`` (+ ``last.pt``, ``trainer_state.pt``, ``log.jsonl``: resumable)
``knn``          ``knn_database.npy``, ``knn_labels.npy``: training descriptors and labels; k, tau
``bow-svm``      ``bow/bow_svm.npz`` + ``.json`` (:class:`artid.attributes.bow.BowSvm`)
``multiclass``   ``head.npz``: softmax head over one group's labels (seed 003's task 1)
===============  ==========================================================================

Descriptors of frozen backbones go to ``--descriptors`` (default ``<run>/descriptors``), shared
between runs with the same backbone settings (:mod:`artid.attributes.features`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artid.attributes.arrays import load_npy
from artid.attributes.features import FeatureSpec, SplitFeatures
from artid.attributes.finetune import FinetuneSettings, finetune, load_finetuned
from artid.attributes.head import (
    HeadSettings,
    class_weights,
    head_logits,
    load_head,
    save_head,
    train_head,
)
from artid.attributes.imet import IMetDataset, IMetSplit
from artid.attributes.knn_transfer import transfer_scores, tune_transfer_temperature
from artid.attributes.multiclass import class_codes, group_columns, softmax
from artid.attributes.network import predict_logits
from artid.attributes.report import fit_thresholds
from artid.errors import ArtidError
from artid.files import save_npy, write_json

FORMAT = "artid-attributes-run/1"
MODELS = ("head", "finetune", "knn", "bow-svm", "multiclass")


@dataclass
class TrainOptions:
    """Everything ``artid attributes train`` can set (each model reads its part)."""

    model: str = "head"
    features: FeatureSpec = field(default_factory=FeatureSpec)
    descriptors: Path | None = None
    head: HeadSettings = field(default_factory=HeadSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    k: int = 10
    vocabulary: int = 500
    cv: int = 3
    group: str = "department"
    class_weighting: bool = False
    thresholds: str = "group"
    progress: bool = True
    resume_changed: bool = False


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def open_dataset(root: str | Path) -> IMetDataset:
    """The iMet dataset at ``root``, or at ``root/imet`` for a synthetic benchmark's root."""
    root = Path(root)
    if not (root / "labels.csv").is_file() and (root / "imet" / "labels.csv").is_file():
        root = root / "imet"
    return IMetDataset(root)


def read_run(run: Path) -> dict:
    """The run's ``run.json``; :class:`ArtidError` if it is not an attributes run."""
    file = Path(run) / "run.json"
    try:
        meta = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise ArtidError(
            f"{file}: not an attributes run ({exc}); train one with `artid attributes train`"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtidError(f"{file}: not an attributes run of format {FORMAT}")
    return meta


def check_labels(meta: dict, dataset: IMetDataset, run: Path) -> None:
    """The dataset must have the labels the run was trained on."""
    if meta["labels"] != dataset.label_names:
        raise ArtidError(
            f"{run}: trained on {len(meta['labels'])} labels that differ from the "
            f"{len(dataset.label_names)} of {dataset.root / 'labels.csv'}"
        )


def _features(meta: dict, run: Path, progress: bool) -> SplitFeatures:
    folder = Path(meta["descriptors"]) if meta.get("descriptors") else run / "descriptors"
    return SplitFeatures(FeatureSpec.from_json(meta["features"]), folder, progress)


def split_scores(
    run: Path, meta: dict, dataset: IMetDataset, split: IMetSplit, progress: bool = True
) -> np.ndarray:
    """(N, L) label scores of a split (multi-class: (N, C) class probabilities of the run's
    group)."""
    kind, s = meta["model"], meta["settings"]
    if kind == "bow-svm":
        from artid.attributes.bow import BowSvm

        return BowSvm.load(run / "bow").decision_scores(split.paths, progress)
    if kind == "finetune":
        settings = FinetuneSettings(**s["finetune"])
        net = load_finetuned(settings, run, len(dataset.labels))
        return _sigmoid(
            predict_logits(
                net, split.paths, settings.size, settings.batch_size, progress, split.name
            )
        )
    x = _features(meta, run, progress)(split)
    if kind == "knn":
        db, labels = load_npy(run / "knn_database.npy"), load_npy(run / "knn_labels.npy")
        return transfer_scores(x, db, labels, s["k"], s["tau"])
    head_settings = HeadSettings(**s["head"])
    outputs = len(s["classes"]) if kind == "multiclass" else len(dataset.labels)
    head = load_head(run / "head.npz", x.shape[1], outputs, head_settings)
    logits = head_logits(head, x)
    return softmax(logits) if kind == "multiclass" else _sigmoid(logits)


def _fit(kind: str, o: TrainOptions, run: Path, dataset: IMetDataset, meta: dict) -> None:
    """Train model ``kind`` into ``run``, filling ``meta['settings']`` and the timings."""
    train, val = dataset.split("train"), dataset.split("val")
    y = train.targets()
    if kind == "bow-svm":
        from artid.attributes.bow import BowSvm

        t0 = time.perf_counter()
        BowSvm(o.vocabulary, cv=o.cv).fit(train.paths, y, o.progress).save(run / "bow")
        meta["train_seconds"] = time.perf_counter() - t0
        meta["settings"] = {"vocabulary": o.vocabulary, "cv": o.cv}
        return
    if kind == "finetune":
        t0 = time.perf_counter()
        finetune(
            o.finetune,
            run,
            (train.paths, y),
            (val.paths, val.targets()),
            o.progress,
            o.resume_changed,
        )
        meta["train_seconds"] = time.perf_counter() - t0
        meta["settings"] = {"finetune": o.finetune.to_json()}
        return
    feats = _features(meta, run, o.progress)
    t0 = time.perf_counter()
    x = feats(train)
    x_val = feats(val) if kind == "knn" else None
    meta["extract_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if kind == "knn":
        assert x_val is not None
        tau, grid = tune_transfer_temperature(x_val, val.targets(), x, y, o.k)
        save_npy(run / "knn_database.npy", x)
        save_npy(run / "knn_labels.npy", y)
        meta["settings"] = {"k": o.k, "tau": tau, "tau_grid": grid}
    elif kind == "head":
        save_head(train_head(x, y, o.head, progress=o.progress), run / "head.npz")
        meta["settings"] = {"head": o.head.to_json()}
    else:
        cols = group_columns(dataset, o.group)
        codes = class_codes(train, cols)
        w = class_weights(codes, len(cols)) if o.class_weighting else None
        head = train_head(
            x, codes, o.head, multiclass=True, n_classes=len(cols), weights=w, progress=o.progress
        )
        save_head(head, run / "head.npz")
        meta["settings"] = {
            "head": o.head.to_json(),
            "group": o.group,
            "classes": cols.tolist(),
            "class_weighting": o.class_weighting,
        }
    meta["train_seconds"] = time.perf_counter() - t0


def train_run(root: Path, out: Path, options: TrainOptions) -> dict:
    """Train ``options.model`` on the train split, choose thresholds on val, write
    ``out/run.json``."""
    if options.model not in MODELS:
        raise ArtidError(f"--model must be one of {', '.join(MODELS)}; got {options.model!r}")
    dataset = open_dataset(root)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "model": options.model,
        "root": str(dataset.root.resolve()),
        "labels": dataset.label_names,
        "features": options.features.to_json(),
        "descriptors": str(options.descriptors) if options.descriptors else None,
        "thresholds_mode": options.thresholds,
    }
    _fit(options.model, options, out, dataset, meta)
    if options.model != "multiclass":
        val = dataset.split("val")
        scores = split_scores(out, meta, dataset, val, options.progress)
        meta["thresholds"] = fit_thresholds(val.targets(), scores, dataset.label_names)
    write_json(out / "run.json", meta)
    return meta


def predicted_labels(meta: dict, scores: np.ndarray, mode: str | None = None) -> np.ndarray:
    """(N, L) bool decisions: thresholds of ``mode`` (default the run's), or the top class of a
    multi-class run."""
    from artid.attributes.report import decide

    if meta["model"] == "multiclass":
        out = np.zeros((len(scores), len(meta["labels"])), bool)
        cols = np.asarray(meta["settings"]["classes"])
        out[np.arange(len(scores)), cols[np.argmax(scores, axis=1)]] = True
        return out
    return decide(scores, meta["thresholds"], mode or meta["thresholds_mode"])


def multiclass_codes(meta: dict, dataset: IMetDataset, split: IMetSplit) -> np.ndarray:
    """(N,) class codes of a split for a multi-class run."""
    return class_codes(split, np.asarray(meta["settings"]["classes"]))
