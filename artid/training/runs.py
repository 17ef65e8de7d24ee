"""A training run from plain settings: data, model, method, validation and the loop, wired once.

``artid train`` and the Table 5.3 reproduction both call :func:`train` with a :class:`RunSpec`;
nothing below this function knows about the command line.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from artid.data.met import load_split
from artid.devices import resolve_device
from artid.errors import ArtidError
from artid.training.augment import AUGMENTS, augmentations
from artid.training.config import SELECT_METRICS
from artid.training.data import EntryImages, LabelIndex
from artid.training.methods import Contrastive, DNet, MethodBase, SimSiam
from artid.training.positives import STRATEGIES
from artid.training.schedule import LRSchedule
from artid.training.trainer import TrainConfig, Trainer, TrainResult
from artid.training.validation import EmbeddingCache, KNNValidator, embed_images, init_projector_from_whitening

log = logging.getLogger(__name__)

METHODS = ("contrastive", "simsiam", "dnet")
#: Batch sizes of the paper (thesis 5.1): pairs for contrastive, images otherwise.
DEFAULT_BATCH = {"contrastive": 64, "simsiam": 64, "dnet": 256}
RUN_FILE = "run.json"


@dataclass(frozen=True)
class Preset:
    """Defaults of the settings a preset governs (an explicit setting always wins).

    Attributes:
        lr: backbone (and projector) learning rate.
        epochs: epochs per method.
        augment: ``paper`` or ``insitu`` (:mod:`artid.training.augment`).
        select: validation metric that picks the best epoch.
        projector_share: cap of the projector's output size as a share of the database images
            (None: the paper's D -> D, clamped only to the covariance rank).
    """

    lr: float
    epochs: dict[str, int]
    augment: str
    select: str
    projector_share: float | None


#: ``artid``: chosen by measurement on a synthetic benchmark of a few hundred classes (README,
#: "Training on the collection"); ``paper``: the thesis' exact values (section 5.1).
PRESETS: dict[str, Preset] = {
    "artid": Preset(lr=1e-4, epochs={"contrastive": 3, "simsiam": 5, "dnet": 10}, augment="insitu", select="gap",
                    projector_share=0.5),
    "paper": Preset(lr=1e-7, epochs={"contrastive": 10, "simsiam": 15, "dnet": 25}, augment="paper", select="acc",
                    projector_share=None),
}


@dataclass
class RunSpec:
    """Everything a training run needs; settings left None come from the preset.

    Attributes:
        method: ``contrastive``, ``simsiam`` or ``dnet``.
        root: Met-format dataset root (database + val ground truth and images).
        out: run folder.
        preset: ``artid`` (defaults measured at artid's scale) or ``paper`` (the thesis' values).
        model: backbone name or artid checkpoint to start from.
        split: training images: ``database`` or ``mini``.
        epochs, batch_size: None = the preset's / the paper's value for the method.
        lr: None = the preset's.
        head_lr, weight_decay, accum_steps, amp, seed: see :class:`TrainConfig`.
        lr_schedule, lr_milestones, warmup_steps: see :class:`~artid.training.schedule.LRSchedule`.
        augment: ``paper`` or ``insitu``; None = the preset's.
        select: validation metric picking the best epoch (``gap``, ``acc``); None = the preset's.
        image_size: side of the square training crops (500 in the paper).
        max_size: longer side images are loaded at (training and validation).
        eval_batch: images per batch when embedding the database / queries.
        workers: data-loader worker processes.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        projector: add the FC projector, initialised from PCA-whitening.
        projector_dim: its output size; None = D capped at the preset's share of the database
            images (full whitening to nearly as many dimensions as there are images makes the
            database descriptors equidistant).
        validate: kNN validation of the untrained model and after every epoch (picks the best epoch).
        positives: contrastive positive strategy (:data:`~artid.training.positives.STRATEGIES`).
        margin: contrastive margin (1.8) or ArcFace margin (0.5); None = the method's.
        negative_pool: hard negatives are drawn from this many nearest other-class images.
        loss: DNet loss, ``ce`` or ``arcface``.
        scale: DNet logit scale; None = 30 (CE) / 64 (ArcFace).
        sampling: DNet sampling, ``random`` or ``balanced``.
        class_weights: DNet loss weighted by inverse class frequency.
        retrain_classifier: DNet on a frozen embedder (classifier re-training).
    """

    method: str
    root: Path
    out: Path
    preset: str = "artid"
    model: str = "efficientnet_lite0"
    split: str = "database"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    head_lr: float = 1e-3
    weight_decay: float = 1e-6
    lr_schedule: str = "step"
    lr_milestones: tuple[float, ...] | None = None
    warmup_steps: int = 0
    accum_steps: int = 1
    amp: str = "off"
    seed: int = 0
    augment: str | None = None
    select: str | None = None
    image_size: int = 500
    max_size: int = 500
    eval_batch: int = 32
    workers: int = 0
    device: str = "auto"
    projector: bool = True
    projector_dim: int | None = None
    validate: bool = True
    positives: str = "con-syn"
    margin: float | None = None
    negative_pool: int = 10
    loss: str = "ce"
    scale: float | None = None
    sampling: str = "random"
    class_weights: bool = False
    retrain_classifier: bool = False

    def resolved(self) -> RunSpec:
        """A copy with every setting the preset governs filled in."""
        if self.preset not in PRESETS:
            raise ArtidError(f"--preset: unknown preset {self.preset!r}; expected one of {', '.join(PRESETS)}")
        p = PRESETS[self.preset]
        return replace(self, lr=p.lr if self.lr is None else self.lr,
                       epochs=self.epochs or p.epochs.get(self.method),
                       augment=self.augment or p.augment, select=self.select or p.select)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["root"], d["out"] = str(self.root), str(self.out)
        return d


def _check(spec: RunSpec) -> None:
    if spec.method not in METHODS:
        raise ArtidError(f"unknown training method {spec.method!r}; expected one of {', '.join(METHODS)}")
    if spec.positives not in STRATEGIES:
        raise ArtidError(f"unknown positive strategy {spec.positives!r}; expected one of {', '.join(STRATEGIES)}")
    if spec.loss not in ("ce", "arcface"):
        raise ArtidError(f"unknown DNet loss {spec.loss!r}; expected ce or arcface")
    if spec.sampling not in ("random", "balanced"):
        raise ArtidError(f"unknown sampling {spec.sampling!r}; expected random or balanced")
    for name in ("image_size", "max_size", "eval_batch", "negative_pool"):
        if getattr(spec, name) < 1:
            raise ArtidError(f"{name.replace('_', '-')} must be positive, got {getattr(spec, name)}")
    if spec.batch_size is not None and spec.batch_size < 1:
        raise ArtidError(f"batch-size must be positive, got {spec.batch_size}")
    if spec.lr is None or spec.lr < 0 or spec.head_lr < 0:
        raise ArtidError("--lr and --head-lr must be non-negative")
    if spec.projector_dim is not None and spec.projector_dim < 1:
        raise ArtidError(f"--projector-dim must be positive, got {spec.projector_dim}")
    if spec.select not in SELECT_METRICS:
        raise ArtidError(f"--select: unknown metric {spec.select!r}; expected one of {', '.join(SELECT_METRICS)}")
    if spec.augment not in AUGMENTS:
        raise ArtidError(f"--augment: unknown augmentation {spec.augment!r}; expected one of {', '.join(AUGMENTS)}")


def projector_dim(spec: RunSpec, n_images: int, d: int) -> int | None:
    """Output size of a new projector: ``--projector-dim``, else D capped at the preset's share of the images."""
    if spec.projector_dim is not None:
        return spec.projector_dim
    share = PRESETS[spec.preset].projector_share
    if share is None:
        return None
    cap = max(2, int(share * n_images))
    if cap < d:
        log.warning("projector %d -> %d: PCA-whitening of %d database images supports no more than %d dimensions "
                    "(preset %s; set --projector-dim to choose)", d, cap, n_images, cap, spec.preset)
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
    _check(spec)
    assert spec.lr is not None and spec.epochs is not None and spec.augment is not None and spec.select is not None
    device = resolve_device(spec.device)
    out = Path(spec.out)
    db = load_split(spec.root, spec.split)
    if db.image_root is None:
        raise ArtidError(f"no image of the {spec.split} split found under {spec.root} (nor {spec.root}/images)")
    index = LabelIndex(db.labels)
    labels = index.encode(db.labels)
    n_classes = len(index)
    if n_classes < 2:
        raise ArtidError(f"{db.gt_file}: training needs at least 2 classes, found {n_classes}")
    db_source = EntryImages(db.image_root, db.entries, spec.max_size)
    embed = partial(embed_images, device=device, batch_size=spec.eval_batch, num_workers=spec.workers)
    cache = EmbeddingCache(db_source, embed)

    model = build_embedder(spec.model, projector=False).to(device)
    state = Trainer.saved_state(out)
    if state is not None:
        d_out = _projector_shape_from_state(state)
        if d_out is not None:  # give the model the projector shape the saved weights have
            d_in = model.num_features
            model.set_projector_from_whitening(np.zeros(d_in, np.float32), np.zeros((d_in, d_out), np.float32))
    elif spec.projector and model.projector is None:
        init_projector_from_whitening(model, db_source, embed,
                                      dim=projector_dim(spec, len(db_source), model.num_features))
    elif spec.projector:  # a checkpoint that has its (trained) projector: keep it
        log.info("keeping the projector of %s (%d -> %d)", spec.model, model.num_features, model.dim)
    dim = model.dim

    epochs = spec.epochs
    batch = spec.batch_size or DEFAULT_BATCH[spec.method]
    aug = augmentations(spec.augment, spec.image_size)
    val_labels = None
    validator = None
    if spec.validate:
        val = load_split(spec.root, "val")
        if val.image_root is None:
            raise ArtidError(f"no validation image found under {spec.root}; use --no-validate to train without")
        val_labels = np.asarray(val.labels, dtype=np.int64)
        validator = KNNValidator(cache, np.asarray(db.labels, dtype=np.int64),
                                 EntryImages(val.image_root, val.entries, spec.max_size), val_labels, embed,
                                 query_keys=np.array([e.path for e in val.entries], dtype=str))

    method: MethodBase
    if spec.method == "contrastive":
        method = Contrastive(db_source, labels, STRATEGIES[spec.positives](), aug.anchor, cache,
                             pairs_per_batch=batch, margin=spec.margin if spec.margin is not None else 1.8,
                             negative_pool=spec.negative_pool, num_workers=spec.workers, other_transform=aug.other)
    elif spec.method == "simsiam":
        method = SimSiam(db_source, aug.anchor, dim, images_per_batch=batch, num_workers=spec.workers,
                         other_transform=aug.other)
    else:
        method = DNet(db_source, labels, n_classes, aug.single, dim, loss=spec.loss, scale=spec.scale,
                      margin=spec.margin if spec.margin is not None else 0.5, batch_size=batch,
                      sampling=spec.sampling, class_weights=spec.class_weights,
                      retrain_classifier=spec.retrain_classifier, val_labels=val_labels,
                      class_ids=index.ids, num_workers=spec.workers)

    schedule = LRSchedule(kind=spec.lr_schedule, milestones=spec.lr_milestones, warmup_steps=spec.warmup_steps)
    config = TrainConfig(out_dir=out, epochs=epochs, lr=spec.lr, head_lr=spec.head_lr,
                         weight_decay=spec.weight_decay, schedule=schedule, accum_steps=spec.accum_steps,
                         amp=spec.amp, seed=spec.seed, select_metric=spec.select)
    trainer = Trainer(model, method, config, device, validator=validator, invalidate=cache.invalidate)
    log.info("%s on %d images / %d classes (%s), preset %s, %d epochs, batch %d, lr %g, %s augmentation, device %s",
             spec.method, len(db.entries), n_classes, db.gt_file.name, spec.preset, epochs, batch, spec.lr,
             spec.augment, device)
    t0 = time.perf_counter()
    result = trainer.fit()
    summary = {"spec": spec.to_json(), "epochs": epochs, "batch_size": batch, "device": str(device),
               "seconds": time.perf_counter() - t0, "best_epoch": result.best_epoch,
               "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
               "history": result.history}
    (out / RUN_FILE).write_text(json.dumps(summary, indent=1))
    return result


def spec_fields() -> list[str]:
    """Names of the :class:`RunSpec` fields (for command-line mapping)."""
    return [f.name for f in fields(RunSpec)]
