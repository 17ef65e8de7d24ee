"""Settings of a training run: the ones every method shares, and each method's own.

A :class:`RunSpec` is one :class:`CommonSettings` plus the settings of its method
(:class:`ContrastiveSettings`, :class:`SimSiamSettings` or :class:`DNetSettings`); each part checks
its own fields and names the command-line option of a bad one. :meth:`RunSpec.build` takes flat
``option=value`` settings (the command line, the Table 5.3 rows) and refuses an option of another method.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from artid.errors import ArtidError
from artid.training.augment import AUGMENTS
from artid.training.config import SELECT_METRICS
from artid.training.positives import STRATEGIES


def option(name: str) -> str:
    """The command-line option of a setting: ``negative_pool`` -> ``--negative-pool``."""
    return "--" + name.replace("_", "-")


def _names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


def _one_of(name: str, value: object, choices: Any, what: str) -> None:
    if value not in choices:
        raise ArtidError(f"{option(name)}: unknown {what} {value!r}; expected one of {', '.join(choices)}")


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and value < 1:
            raise ArtidError(f"{option(name)} must be positive, got {value}")


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


@dataclass(frozen=True)
class CommonSettings:
    """The settings every method has; those left None come from the preset (:meth:`resolved`).

    Attributes:
        root: Met-format dataset root (database + val ground truth and images).
        out: run folder.
        preset: ``artid`` (defaults measured at artid's scale) or ``paper`` (the thesis' values).
        model: backbone name or artid checkpoint to start from.
        split: training images: ``database`` or ``mini``.
        epochs, batch_size: None = the preset's / the paper's value for the method.
        lr: None = the preset's.
        head_lr, weight_decay, accum_steps, amp, seed: see :class:`~artid.training.trainer.TrainConfig`.
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
    """

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

    def resolved(self, method: str) -> CommonSettings:
        """A copy with every setting the preset governs filled in (``epochs`` for ``method``)."""
        _one_of("preset", self.preset, PRESETS, "preset")
        p = PRESETS[self.preset]
        return replace(self, lr=p.lr if self.lr is None else self.lr, epochs=self.epochs or p.epochs.get(method),
                       augment=self.augment or p.augment, select=self.select or p.select)

    def check(self) -> None:
        """Refuse a bad setting, naming its option (call on the :meth:`resolved` settings)."""
        _positive(self, "image_size", "max_size", "eval_batch", "batch_size", "projector_dim")
        if self.lr is None or self.lr < 0 or self.head_lr < 0:
            raise ArtidError("--lr and --head-lr must be non-negative")
        _one_of("select", self.select, SELECT_METRICS, "metric")
        _one_of("augment", self.augment, AUGMENTS, "augmentation")


@dataclass(frozen=True)
class ContrastiveSettings:
    """Contrastive loss on mined pairs.

    Attributes:
        positives: positive strategy (:data:`~artid.training.positives.STRATEGIES`).
        margin: contrastive margin on the descriptor distance.
        negative_pool: hard negatives are drawn from this many nearest other-class images.
    """

    name: ClassVar[str] = "contrastive"
    positives: str = "con-syn"
    margin: float = 1.8
    negative_pool: int = 10

    def check(self) -> None:
        _one_of("positives", self.positives, STRATEGIES, "positive strategy")
        if self.margin < 0:
            raise ArtidError(f"--margin must be non-negative, got {self.margin}")
        _positive(self, "negative_pool")


@dataclass(frozen=True)
class SimSiamSettings:
    """SimSiam has no settings of its own."""

    name: ClassVar[str] = "simsiam"

    def check(self) -> None:
        pass


@dataclass(frozen=True)
class DNetSettings:
    """DNet: a cosine classifier with CE or ArcFace.

    Attributes:
        loss: ``ce`` or ``arcface``.
        scale: logit scale; None = 30 (CE) / 64 (ArcFace).
        sampling: ``random`` or ``balanced``.
        class_weights: loss weighted by inverse class frequency.
        retrain_classifier: a frozen embedder (classifier re-training).
        margin: ArcFace angular margin.
    """

    name: ClassVar[str] = "dnet"
    loss: str = "ce"
    scale: float | None = None
    sampling: str = "random"
    class_weights: bool = False
    retrain_classifier: bool = False
    margin: float = 0.5

    def check(self) -> None:
        _one_of("loss", self.loss, ("ce", "arcface"), "DNet loss")
        _one_of("sampling", self.sampling, ("random", "balanced"), "sampling")
        if self.scale is not None and self.scale <= 0:
            raise ArtidError(f"--scale must be positive, got {self.scale}")
        if self.margin < 0:
            raise ArtidError(f"--margin must be non-negative, got {self.margin}")


MethodSettings = ContrastiveSettings | SimSiamSettings | DNetSettings
#: Method name -> its settings.
SETTINGS: dict[str, type[ContrastiveSettings] | type[SimSiamSettings] | type[DNetSettings]] = {
    c.name: c for c in (ContrastiveSettings, SimSiamSettings, DNetSettings)}
METHODS = tuple(SETTINGS)


def method_options(method: str) -> list[str]:
    """Names of the settings of ``method`` beyond the common ones."""
    if method not in SETTINGS:
        raise ArtidError(f"unknown training method {method!r}; expected one of {', '.join(METHODS)}")
    return _names(SETTINGS[method])


def common_options() -> list[str]:
    """Names of the settings every method has."""
    return _names(CommonSettings)


def spec_fields(method: str) -> list[str]:
    """Names of the settings of a ``method`` run (for command-line mapping): the common ones and its own."""
    return common_options() + method_options(method)


@dataclass(frozen=True)
class RunSpec:
    """Everything a training run needs: the common settings and its method's.

    Attributes:
        common: the settings every method has.
        settings: the method's own; their type says which method it is.
    """

    common: CommonSettings
    settings: MethodSettings

    @property
    def method(self) -> str:
        """``contrastive``, ``simsiam`` or ``dnet``."""
        return self.settings.name

    @classmethod
    def build(cls, method: str, **values: Any) -> RunSpec:
        """The spec of ``method`` from flat settings; an option of another method is refused by name."""
        own, common = method_options(method), common_options()
        stray = [k for k in values if k not in own and k not in common]
        if stray:
            owners = {k: [m for m in METHODS if k in _names(SETTINGS[m])] for k in stray}
            raise ArtidError("; ".join(
                f"{option(k)} is an option of {' and '.join(owners[k])}, not of {method}" if owners[k]
                else f"{option(k)}: no such training option" for k in stray))
        return cls(common=CommonSettings(**{k: v for k, v in values.items() if k in common}),
                   settings=SETTINGS[method](**{k: v for k, v in values.items() if k in own}))

    def resolved(self) -> RunSpec:
        """A copy with every setting the preset governs filled in."""
        return replace(self, common=self.common.resolved(self.method))

    def check(self) -> None:
        """Refuse a bad setting, naming its option (call on the :meth:`resolved` spec)."""
        self.common.check()
        self.settings.check()

    def to_json(self) -> dict[str, Any]:
        """``{"method": ..., "common": {...}, "settings": {...}}`` (what ``run.json`` stores as its spec)."""
        common = asdict(self.common)
        common["root"], common["out"] = str(self.common.root), str(self.common.out)
        if self.common.lr_milestones is not None:
            common["lr_milestones"] = list(self.common.lr_milestones)
        return {"method": self.method, "common": common, "settings": asdict(self.settings)}

    @classmethod
    def from_json(cls, d: Any) -> RunSpec:
        """The spec :meth:`to_json` wrote; also reads the flat spec of artid before settings per method."""
        if not isinstance(d, dict) or not isinstance(d.get("method"), str):
            raise ArtidError("not a training run spec (no method)")
        method = d["method"]
        if "common" in d or "settings" in d:
            if not isinstance(d.get("common"), dict) or not isinstance(d.get("settings"), dict):
                raise ArtidError("a training run spec needs 'common' and 'settings' objects")
            values = {**d["common"], **d["settings"]}
        else:  # one flat spec: every method's settings, those of other methods at their defaults
            keep = set(common_options()) | set(method_options(method))
            values = {k: v for k, v in d.items() if k in keep and k != "method"}
            if values.get("margin", 0) is None:  # None meant the method's default margin
                del values["margin"]
        for key in ("root", "out"):
            if key in values:
                values[key] = Path(values[key])
        if values.get("lr_milestones") is not None:
            values["lr_milestones"] = tuple(values["lr_milestones"])
        try:
            return cls.build(method, **values)
        except TypeError as exc:  # root or out missing
            raise ArtidError(f"incomplete training run spec: {exc}") from None
