"""A training run from its settings: data, model, method, validation and the loop, wired once.

``artid train`` and the Table 5.3 reproduction both call :func:`train` with a
:class:`~artid.training.settings.RunSpec`; the method is looked up by name in the registry
(:mod:`artid.training.registry`) and built by its factory from the run's :class:`RunParts`;
the loop gets the optimisation section as it is. Nothing below this function knows about the
command line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch

from artid.data.met import load_split
from artid.devices import resolve_device
from artid.errors import ArtidError
from artid.files import write_json
from artid.training import distributed, registry
from artid.training.augment import augmentations
from artid.training.config import TrainConfig
from artid.training.data import EntryImages, LabelIndex
from artid.training.registry import RunParts
from artid.training.sections import PRESETS, ModelSettings
from artid.training.settings import RunSpec
from artid.training.trainer import Trainer, TrainResult
from artid.training.validation import (
    EmbeddingCache,
    KNNValidator,
    embed_images,
    init_projector_from_whitening,
)

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
#: Settings a resume may change without ``--resume-changed``: where the run folder is, where
#: it runs and how fast it loads; none of them changes what is trained.
RESUME_FREE = ("out", "device", "workers", "eval_batch")


def projector_dim(model: ModelSettings, preset: str, n_images: int, d: int) -> int | None:
    """Output size of a new projector: ``--projector-dim``, else D capped at the preset's
    share of the images (None: D -> D)."""
    if model.projector_dim is not None:
        return model.projector_dim
    share = PRESETS[preset].projector_share
    if share is None:
        return None
    cap = max(2, int(share * n_images))
    if cap < d:
        log.warning("projector %d -> %d: PCA-whitening of %d database images supports no more "
                    "than %d dimensions (preset %s; set --projector-dim to choose)",
                    d, cap, n_images, cap, preset)
        return cap
    return None


def _projector_shape_from_state(state: dict[str, Any]) -> int | None:
    w = state["model"].get("projector.weight")
    return None if w is None else int(w.shape[0])


def train(spec: RunSpec, resume_changed: bool = False) -> TrainResult:
    """Run (or resume) one training run and write ``run.json`` in its folder.

    Args:
        spec: the run's settings.
        resume_changed: resume a run made with other settings, under these (the change is
            recorded in ``run.json``), instead of refusing.

    Returns:
        The trainer's result (history, best epoch, path of ``best.pt``, recorded changes).
    """
    spec = spec.resolved()
    spec.check()
    entry = registry.entry(spec.method)
    dist = distributed.from_env(spec.model.device)  # a process of a torchrun run, or None
    try:
        return _train(spec, entry, dist, resume_changed)
    finally:
        if dist is not None:
            dist.close()


def _train(spec: RunSpec, entry: registry.MethodEntry, dist: distributed.Distributed | None,
           resume_changed: bool) -> TrainResult:
    from artid.models import build_embedder

    data, m, optim, out = spec.data, spec.model, spec.optim, spec.out
    assert data.augment is not None and optim.epochs is not None  # resolved
    device = resolve_device(m.device) if dist is None else dist.device
    db = load_split(data.root, data.split)
    if db.image_root is None:
        raise ArtidError(f"no image of the {data.split} split found under {data.root} "
                         f"(nor {data.root}/images)")
    index = LabelIndex(db.labels)
    if len(index) < 2:
        raise ArtidError(f"{db.gt_file}: training needs at least 2 classes, found {len(index)}")
    db_source = EntryImages(db.image_root, db.entries, data.max_size)
    embed: Callable[[Any, Any], np.ndarray] = partial(
        embed_images, device=device, batch_size=data.eval_batch, num_workers=data.workers
    )
    if dist is not None:  # each process embeds its share, all get every descriptor
        embed = dist.sharded(embed)
    cache = EmbeddingCache(db_source, embed)

    torch.manual_seed(optim.seed)  # a random-init model and the methods' heads: the run's seed
    model = build_embedder(m.model, projector=False).to(device)
    state = Trainer.saved_state(out)
    if state is not None:
        d_out = _projector_shape_from_state(state)
        if d_out is not None:  # give the model the projector shape the saved weights have
            d_in = model.num_features
            model.set_projector_from_whitening(np.zeros(d_in, np.float32),
                                               np.zeros((d_in, d_out), np.float32))
    elif m.projector and model.projector is None:
        dim = projector_dim(m, spec.preset, len(db_source), model.num_features)
        init_projector_from_whitening(model, db_source, embed, dim=dim)
    elif m.projector:  # a checkpoint that has its (trained) projector: keep it
        log.info("keeping the projector of %s (%d -> %d)", m.model, model.num_features, model.dim)

    batch = optim.batch_size or entry.default_batch
    val_labels = None
    validator = None
    if data.validate:
        val = load_split(data.root, "val")
        if val.image_root is None:
            raise ArtidError(f"no validation image found under {data.root}; use --no-validate "
                             "to train without")
        val_labels = np.asarray(val.labels, dtype=np.int64)
        validator = KNNValidator(cache, np.asarray(db.labels, dtype=np.int64),
                                 EntryImages(val.image_root, val.entries, data.max_size),
                                 val_labels, embed,
                                 query_keys=np.array([e.path for e in val.entries], dtype=str))
    parts = RunParts(source=db_source, labels=index.encode(db.labels), class_ids=index.ids,
                     augment=augmentations(data.augment, data.image_size), database=cache,
                     dim=model.dim, batch_size=batch, workers=data.workers,
                     val_labels=val_labels)
    method = entry.build(parts, spec.settings)
    compared = {k: v for k, v in spec.flat().items() if k not in RESUME_FREE}
    trainer = Trainer(model, method, TrainConfig(out, optim), device, validator=validator,
                      invalidate=cache.invalidate, settings=compared,
                      resume_changed=resume_changed, dist=dist)
    log.info("%s on %d images / %d classes (%s), preset %s, %d epochs, batch %d, lr %g, "
             "%s augmentation, device %s", spec.method, len(db.entries), len(index),
             db.gt_file.name, spec.preset, optim.epochs, batch, optim.lr, data.augment, device)
    t0 = time.perf_counter()
    result = trainer.fit()
    if dist is not None and not dist.is_main:
        return result
    write_json(out / RUN_FILE, {
        "spec": spec.to_json(), "epochs": optim.epochs, "batch_size": batch,
        "device": str(device), "processes": 1 if dist is None else dist.world,
        "seconds": time.perf_counter() - t0,
        "best_epoch": result.best_epoch,
        "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
        "changes": result.changes, "history": result.history})
    return result


__all__ = ["PRESETS", "RESUME_FREE", "RUN_FILE", "RunSpec", "projector_dim", "train"]
