"""The settings of a training run: typed sections plus its method's own, by name.

A :class:`RunSpec` is the run folder and preset, the :class:`~.sections.DataSettings`,
:class:`~.sections.ModelSettings` and :class:`~.sections.OptimSettings` sections, and the
settings section of its method (registered by name, :mod:`artid.training.registry`). Every
field is a command-line option of ``artid train`` under its own name; :meth:`RunSpec.build`
takes those flat ``option=value`` settings (the command line, the Table 5.3 rows), sorts them
into their sections unchanged, and refuses an option of another method by name. ``run.json``
stores the sections (:meth:`RunSpec.to_json`); :meth:`RunSpec.from_json` also reads the layouts
of earlier artid versions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import artid.training.methods  # noqa: F401 - registers the methods
from artid.errors import ArtidError
from artid.training import registry
from artid.training.sections import (
    SELECT_METRICS,
    DataSettings,
    ModelSettings,
    OptimSettings,
    finite,
    one_of,
    option,
    preset,
)

#: The sections every run has, by their key in ``run.json``.
SECTIONS: dict[str, type] = {"data": DataSettings, "model": ModelSettings, "optim": OptimSettings}
#: Settings of the run itself (outside the sections).
RUN_OPTIONS = ("out", "preset")


def _names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


def method_options(method: str) -> list[str]:
    """Names of the settings of ``method`` beyond the common ones."""
    return _names(registry.entry(method).settings)


def common_options() -> list[str]:
    """Names of the settings every method has (the run's and its sections')."""
    return list(RUN_OPTIONS) + [n for cls in SECTIONS.values() for n in _names(cls)]


def spec_fields(method: str) -> list[str]:
    """Names of the settings of a ``method`` run (its command-line options): common and own."""
    return common_options() + method_options(method)


def _json_values(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in values.items():
        out[k] = str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
    return out


@dataclass(frozen=True)
class RunSpec:
    """Everything a training run needs, by section.

    Attributes:
        out: run folder.
        data: what it trains and validates on.
        settings: the method's own settings; their type says which method it is.
        preset: ``artid`` (defaults measured at artid's scale) or ``paper`` (the thesis').
        model: the network and its device.
        optim: optimisation and schedule (the loop takes it as it is).
    """

    out: Path
    data: DataSettings
    settings: Any
    preset: str = "artid"
    model: ModelSettings = field(default_factory=ModelSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)

    @property
    def method(self) -> str:
        """The registered name of the method (``contrastive``, ``simsiam``, ``dnet``, ...)."""
        return registry.of_settings(self.settings).name

    @classmethod
    def build(cls, method: str, **values: Any) -> RunSpec:
        """The spec of ``method`` from flat settings; an option of another method is refused."""
        own, common = method_options(method), common_options()
        stray = [k for k in values if k not in own and k not in common]
        if stray:
            owners = {k: [m for m in registry.names() if k in method_options(m)] for k in stray}
            raise ArtidError("; ".join(
                f"{option(k)} is an option of {' and '.join(owners[k])}, not of {method}"
                if owners[k] else f"{option(k)}: no such training option" for k in stray))

        def section(cls: type) -> Any:
            return cls(**{k: v for k, v in values.items() if k in _names(cls)})

        try:
            return cls(out=values["out"], preset=values.get("preset", "artid"),
                       data=section(DataSettings), model=section(ModelSettings),
                       optim=section(OptimSettings),
                       settings=section(registry.entry(method).settings))
        except KeyError as exc:
            raise ArtidError(f"incomplete training run spec: no {exc}") from None
        except TypeError as exc:  # no root
            raise ArtidError(f"incomplete training run spec: {exc}") from None

    def flat(self) -> dict[str, Any]:
        """Every setting by its option name (what :meth:`build` takes)."""
        out: dict[str, Any] = {"out": self.out, "preset": self.preset}
        for part in (self.data, self.model, self.optim, self.settings):
            out.update({f.name: getattr(part, f.name) for f in fields(part)})
        return out

    def resolved(self) -> RunSpec:
        """A copy with every setting the preset governs filled in."""
        p = preset(self.preset)
        return replace(self, data=replace(self.data, augment=self.data.augment or p.augment),
                       optim=self.optim.resolved(p, self.method))

    def check(self) -> None:
        """Refuse a bad setting, naming its option (call on the :meth:`resolved` spec)."""
        preset(self.preset)
        for section in (self.data, self.model, self.optim, self.settings):
            finite(section)
        self.data.check()
        self.model.check()
        self.optim.check()
        one_of("select", self.optim.select, SELECT_METRICS, "metric")
        self.settings.check()

    def to_json(self) -> dict[str, Any]:
        """What ``run.json`` stores: ``method``, ``out``, ``preset`` and one object per section."""
        d: dict[str, Any] = {"method": self.method, "out": str(self.out), "preset": self.preset}
        for key in SECTIONS:
            d[key] = _json_values(asdict(getattr(self, key)))
        d["settings"] = _json_values(asdict(self.settings))
        return d

    @classmethod
    def from_json(cls, d: Any) -> RunSpec:
        """The spec :meth:`to_json` wrote; also reads the two layouts of earlier artid versions
        (``common`` + ``settings`` objects, and one flat object)."""
        if not isinstance(d, dict) or not isinstance(d.get("method"), str):
            raise ArtidError("not a training run spec (no method)")
        method = d["method"]
        if "data" in d:
            parts = [d.get(k) for k in (*SECTIONS, "settings")]
            if not all(isinstance(p, dict) for p in parts):
                raise ArtidError("a training run spec needs 'data', 'model', 'optim' and "
                                 "'settings' objects")
            values = {k: d[k] for k in RUN_OPTIONS if k in d}
            for key in (*SECTIONS, "settings"):
                values.update(d[key])
        elif "common" in d or "settings" in d:
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
        return cls.build(method, **values)
