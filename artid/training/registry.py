"""Training methods registered by name: each brings its settings section and a factory.

A method module (:mod:`artid.training.methods`) defines its settings (a frozen dataclass whose
fields are its command-line options, with a ``check()``), the method object, and a factory
that builds the object from the run's :class:`RunParts` and those settings; one
:func:`register` call makes it a method of ``artid train`` (:func:`entry` looks it up by name).
Adding a method is one module plus its import in :mod:`artid.training.methods`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from artid.errors import ArtidError


class MethodSettings(Protocol):
    """A method's own settings section (a frozen dataclass)."""

    def check(self) -> None:
        """Refuse a bad setting, naming its option."""


@dataclass
class RunParts:
    """What a run has ready for its method's factory (built by :func:`artid.training.runs.train`).

    Attributes:
        source: the training images.
        labels: (N,) class index of each image.
        class_ids: (C,) dataset class id of each class index.
        augment: the run's augmentations (:class:`artid.training.augment.Augmentations`).
        database: cache of the training images' descriptors under the current weights.
        dim: the embedder's output size D.
        batch_size: pairs or images per batch (the run's or the method's default).
        workers: data-loader worker processes.
        val_labels: (Q,) class ids of the validation queries (-1 distractors), or None.
    """

    source: Any
    labels: np.ndarray
    class_ids: np.ndarray
    augment: Any
    database: Any
    dim: int
    batch_size: int
    workers: int
    val_labels: np.ndarray | None = None

    @property
    def n_classes(self) -> int:
        return int(len(self.class_ids))


@dataclass(frozen=True)
class MethodEntry:
    """A registered method.

    Attributes:
        name: its name on the command line (``artid train NAME``).
        settings: its settings class (a dataclass whose fields are its options).
        build: (parts, settings) -> the method object the loop drives.
        default_batch: batch size when ``--batch-size`` is left unset (the paper's).
        help: one line for ``artid train --help``.
    """

    name: str
    settings: type
    build: Callable[[RunParts, Any], Any]
    default_batch: int
    help: str = ""


_REGISTRY: dict[str, MethodEntry] = {}


def register(e: MethodEntry) -> MethodEntry:
    """Make ``e`` a training method (a second registration of its name is a programming error)."""
    if e.name in _REGISTRY and _REGISTRY[e.name] != e:
        raise ValueError(f"training method {e.name!r} is registered twice")
    _REGISTRY[e.name] = e
    return e


def names() -> tuple[str, ...]:
    """Names of the registered methods, in registration order."""
    return tuple(_REGISTRY)


def entry(name: str) -> MethodEntry:
    """The method registered as ``name``."""
    if name not in _REGISTRY:
        raise ArtidError(
            f"unknown training method {name!r}; expected one of {', '.join(_REGISTRY)}"
        )
    return _REGISTRY[name]


def of_settings(settings: object) -> MethodEntry:
    """The method whose settings class ``settings`` is an instance of."""
    for e in _REGISTRY.values():
        if type(settings) is e.settings:
            return e
    raise ArtidError(f"{type(settings).__name__} is the settings of no registered method")
