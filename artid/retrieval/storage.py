"""A fitted pipeline on disk: one folder that :meth:`KNNPipeline.load` turns back into the same
answers.

Layout (format ``artid-pipeline/2``; no pickle)::

    pipeline.json        settings, what fit chose (whitening, k, tau, QE / DBA, the re-ranking rule)
    projection.json      the parts' widths; whitening-<i>.npz per whitened part
    database.npy         (N, d) searched rows (projected, DBA applied; float32, or float16 with
                         ``storage = "float16"``), labels.npy (N,) int64
    index.faiss          the IVF index (cells and lists) when ``index = "ivf"``, the IVF-PQ
                         fast-scan index when ``index = "ivfpq"`` (its faiss ids in
                         index.faiss.ids.npy)
    local_*.npy          the rows' SIFT keypoints when the pipeline re-ranks

``pipeline.json`` keeps the confidence calibration fitted on validation (``calibration``: knots of
:class:`artid.metrics.calibration.ConfidenceCalibration`; absent in older folders: the softmax).

A folder of format ``artid-pipeline/1`` (before the re-ranking stage and the saved IVF index) is
read too: its IVF index, if any, is rebuilt from the database.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from artid.errors import ArtidError
from artid.extraction.local import LocalFeatureSet
from artid.files import save_npy, write_json
from artid.metrics.calibration import ConfidenceCalibration
from artid.retrieval.compressed import PQSearcher
from artid.retrieval.config import PipelineConfig, WhiteningChoice
from artid.retrieval.expansion import Expansion
from artid.retrieval.index import IVFSearcher
from artid.retrieval.knn import KNNClassifier
from artid.retrieval.projection import Projection
from artid.retrieval.rerank import Reranker

FORMAT = "artid-pipeline/2"
READABLE = ("artid-pipeline/1", FORMAT)
MANIFEST = "pipeline.json"
INDEX_FILE = "index.faiss"


def summary(pipe: Any) -> dict[str, Any]:
    """JSON-able: the configuration, what fit chose, every whitening and expansion tried."""
    clf, projection, _, _ = pipe._fitted()
    return {
        "config": pipe.config.to_json(),
        "k": pipe.k,
        "tau": pipe.tau,
        "n_classes": clf.n_classes,
        "database_images": clf.size,
        "projection": projection.summary(),
        "candidates": [asdict(c) for c in pipe.candidates],
        "expansion": pipe.expansion.to_json(),
        "expansion_grid": pipe.expansion_grid,
        "rerank": None if pipe.reranker is None else pipe.reranker.summary(),
        "calibration": None if pipe.calibration is None else pipe.calibration.to_json(),
    }


def save(pipe: Any, folder: Path) -> Path:
    """Write every part of a fitted pipeline into ``folder`` (created); the manifest last."""
    clf, projection, _, _ = pipe._fitted()
    folder.mkdir(parents=True, exist_ok=True)
    projection.save(folder)
    save_npy(folder / "database.npy", np.asarray(clf.db, dtype=pipe.config.storage))
    save_npy(folder / "labels.npy", clf.labels)
    if isinstance(clf.searcher, IVFSearcher | PQSearcher):
        clf.searcher.save(folder / INDEX_FILE)
    if pipe.local is not None:
        pipe.local.save(folder)
    write_json(folder / MANIFEST, {"format": FORMAT, **summary(pipe)}, durable=True)
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a saved pipeline (ArtidError naming the file when it is not one)."""
    path = folder / MANIFEST
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtidError(f"{path} not found: not a saved artid pipeline") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtidError(f"{path}: not an artid pipeline file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") not in READABLE:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise ArtidError(
            f"{path}: format {got!r} is not one this artid reads ({', '.join(READABLE)}); "
            "fit and save the pipeline again (artid evaluate, artid index build)"
        )
    return meta


def _searcher(
    config: PipelineConfig, file: Path, db: np.ndarray, mmap: bool
) -> IVFSearcher | PQSearcher | None:
    """The saved index over the database (an IVF index missing from a format-1 folder: rebuilt)."""
    if config.index == "ivf":
        if file.is_file():
            return IVFSearcher.load(file, db, mmap)
        return IVFSearcher(np.asarray(db), nprobe=config.nprobe)
    if config.index == "ivfpq":
        if not file.is_file():
            raise ArtidError(f"{file} not found: the pipeline's IVF-PQ index is missing")
        searcher = PQSearcher.load(file, db, mmap, config.rescore)
        searcher.index.nprobe = min(config.nprobe, searcher.index.nlist)
        return searcher
    return None


def load(cls: Any, folder: Path, use_gpu: bool | None = None, mmap: bool = False) -> Any:
    """The pipeline :func:`save` wrote, ready to answer (nothing is fitted again)."""
    meta = read_manifest(folder)
    path = folder / MANIFEST
    try:
        config = PipelineConfig.from_json(meta["config"], use_gpu=use_gpu)
        k, tau, n_classes = int(meta["k"]), float(meta["tau"]), int(meta["n_classes"])
        choices = [WhiteningChoice(**c) for c in meta.get("candidates", [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtidError(f"{path}: not an artid pipeline file ({exc!r})") from None
    try:
        db = np.load(folder / "database.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
        labels = np.load(folder / "labels.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ArtidError(f"{folder}: the database of the pipeline cannot be read ({exc})") from None
    projection = Projection.load(folder)
    if db.ndim != 2 or db.shape[1] != projection.out_dim or labels.shape != (db.shape[0],):
        raise ArtidError(
            f"{folder}: database {db.shape} and labels {labels.shape} do not fit the "
            f"projection's {projection.out_dim}-d output"
        )
    searcher = _searcher(config, folder / INDEX_FILE, db, mmap)
    pipe = cls(config)
    pipe.projection, pipe.candidates = projection, choices
    pipe.classifier = KNNClassifier(
        db, labels, n_classes=n_classes, use_gpu=config.use_gpu, searcher=searcher
    )
    pipe.k, pipe.tau = k, tau
    pipe.expansion = Expansion.from_json(meta.get("expansion"))  # the saved rows are augmented
    pipe.expansion_grid = list(meta.get("expansion_grid", []))
    if meta.get("rerank"):
        pipe.local = LocalFeatureSet.load(folder, mmap=mmap)
        if len(pipe.local) != len(labels):
            raise ArtidError(
                f"{folder}: local features of {len(pipe.local)} images for "
                f"{len(labels)} database rows"
            )
        pipe.reranker = Reranker.from_json(meta["rerank"], pipe.local.__getitem__)
    if meta.get("calibration"):
        pipe.calibration = ConfidenceCalibration.from_json(meta["calibration"], str(path))
    return pipe
