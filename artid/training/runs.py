"""A training run from plain settings: data, model, method, validation and the loop, wired once.

``artid train`` and the Table 5.3 reproduction both call :func:`train` with a :class:`RunSpec`
(common settings plus the method's own, :mod:`artid.training.settings`); nothing below this
function knows about the command line.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from artid.data.met import load_split
from artid.devices import resolve_device
from artid.errors import ArtidError
from artid.training.augment import augmentations
from artid.training.data import EntryImages, LabelIndex
from artid.training.methods import Contrastive, DNet, MethodBase, SimSiam
from artid.training.positives import STRATEGIES
from artid.training.schedule import LRSchedule
from artid.training.settings import PRESETS, CommonSettings, ContrastiveSettings, RunSpec, SimSiamSettings
from artid.training.trainer import TrainConfig, Trainer, TrainResult
from artid.training.validation import EmbeddingCache, KNNValidator, embed_images, init_projector_from_whitening

log = logging.getLogger(__name__)

#: Batch sizes of the paper (thesis 5.1): pairs for contrastive, images otherwise.
DEFAULT_BATCH = {"contrastive": 64, "simsiam": 64, "dnet": 256}
RUN_FILE = "run.json"


def projector_dim(common: CommonSettings, n_images: int, d: int) -> int | None:
    """Output size of a new projector: ``--projector-dim``, else D capped at the preset's share of the images."""
    if common.projector_dim is not None:
        return common.projector_dim
    share = PRESETS[common.preset].projector_share
    if share is None:
        return None
    cap = max(2, int(share * n_images))
    if cap < d:
        log.warning("projector %d -> %d: PCA-whitening of %d database images supports no more than %d dimensions "
                    "(preset %s; set --projector-dim to choose)", d, cap, n_images, cap, common.preset)
        return cap
    return None


def _projector_shape_from_state(state: dict[str, Any]) -> int | None:
    w = state["model"].get("projector.weight")
    return None if w is None else int(w.shape[0])


def train(spec: RunSpec) -> TrainResult:
    """Run (or resume) one training run and write ``run.json`` in its folder.

    Returns:
        The trainer's result (history, best epoch, path of ``best.pt``).
    """
    from artid.models import build_embedder

    spec = spec.resolved()
    spec.check()
    c, settings = spec.common, spec.settings
    assert c.lr is not None and c.epochs is not None and c.augment is not None and c.select is not None
    device = resolve_device(c.device)
    out = Path(c.out)
    db = load_split(c.root, c.split)
    if db.image_root is None:
        raise ArtidError(f"no image of the {c.split} split found under {c.root} (nor {c.root}/images)")
    index = LabelIndex(db.labels)
    labels = index.encode(db.labels)
    n_classes = len(index)
    if n_classes < 2:
        raise ArtidError(f"{db.gt_file}: training needs at least 2 classes, found {n_classes}")
    db_source = EntryImages(db.image_root, db.entries, c.max_size)
    embed = partial(embed_images, device=device, batch_size=c.eval_batch, num_workers=c.workers)
    cache = EmbeddingCache(db_source, embed)

    torch.manual_seed(c.seed)  # a random-init model and the methods' heads are drawn from the run's seed
    model = build_embedder(c.model, projector=False).to(device)
    state = Trainer.saved_state(out)
    if state is not None:
        d_out = _projector_shape_from_state(state)
        if d_out is not None:  # give the model the projector shape the saved weights have
            d_in = model.num_features
            model.set_projector_from_whitening(np.zeros(d_in, np.float32), np.zeros((d_in, d_out), np.float32))
    elif c.projector and model.projector is None:
        init_projector_from_whitening(model, db_source, embed, dim=projector_dim(c, len(db_source), model.num_features))
    elif c.projector:  # a checkpoint that has its (trained) projector: keep it
        log.info("keeping the projector of %s (%d -> %d)", c.model, model.num_features, model.dim)
    dim = model.dim

    epochs = c.epochs
    batch = c.batch_size or DEFAULT_BATCH[spec.method]
    aug = augmentations(c.augment, c.image_size)
    val_labels = None
    validator = None
    if c.validate:
        val = load_split(c.root, "val")
        if val.image_root is None:
            raise ArtidError(f"no validation image found under {c.root}; use --no-validate to train without")
        val_labels = np.asarray(val.labels, dtype=np.int64)
        validator = KNNValidator(cache, np.asarray(db.labels, dtype=np.int64),
                                 EntryImages(val.image_root, val.entries, c.max_size), val_labels, embed,
                                 query_keys=np.array([e.path for e in val.entries], dtype=str))

    method: MethodBase
    if isinstance(settings, ContrastiveSettings):
        method = Contrastive(db_source, labels, STRATEGIES[settings.positives](), aug.anchor, cache,
                             pairs_per_batch=batch, margin=settings.margin, negative_pool=settings.negative_pool,
                             num_workers=c.workers, other_transform=aug.other)
    elif isinstance(settings, SimSiamSettings):
        method = SimSiam(db_source, aug.anchor, dim, images_per_batch=batch, num_workers=c.workers,
                         other_transform=aug.other)
    else:
        method = DNet(db_source, labels, n_classes, aug.single, dim, loss=settings.loss, scale=settings.scale,
                      margin=settings.margin, batch_size=batch, sampling=settings.sampling,
                      class_weights=settings.class_weights, retrain_classifier=settings.retrain_classifier,
                      val_labels=val_labels, class_ids=index.ids, num_workers=c.workers)

    schedule = LRSchedule(kind=c.lr_schedule, milestones=c.lr_milestones, warmup_steps=c.warmup_steps)
    config = TrainConfig(out_dir=out, epochs=epochs, lr=c.lr, head_lr=c.head_lr, weight_decay=c.weight_decay,
                         schedule=schedule, accum_steps=c.accum_steps, amp=c.amp, seed=c.seed,
                         select_metric=c.select)
    trainer = Trainer(model, method, config, device, validator=validator, invalidate=cache.invalidate)
    log.info("%s on %d images / %d classes (%s), preset %s, %d epochs, batch %d, lr %g, %s augmentation, device %s",
             spec.method, len(db.entries), n_classes, db.gt_file.name, c.preset, epochs, batch, c.lr,
             c.augment, device)
    t0 = time.perf_counter()
    result = trainer.fit()
    summary = {"spec": spec.to_json(), "epochs": epochs, "batch_size": batch, "device": str(device),
               "seconds": time.perf_counter() - t0, "best_epoch": result.best_epoch,
               "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
               "history": result.history}
    (out / RUN_FILE).write_text(json.dumps(summary, indent=1))
    return result


__all__ = ["DEFAULT_BATCH", "PRESETS", "RUN_FILE", "RunSpec", "projector_dim", "train"]
