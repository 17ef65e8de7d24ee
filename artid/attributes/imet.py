"""The iMet Collection layout (Kaggle FGVC6 2019, FGVC7 2020, and ``artid synth``'s ``imet/``
folder).

A dataset root holds::

    labels.csv              attribute_id,attribute_name   (name: ``group::value``)
    train.csv               id,attribute_ids              (space-separated ids, at least one)
    val.csv, test.csv       same form, optional (the synthetic benchmark writes both)
    sample_submission.csv   id,attribute_ids              (Kaggle: the unlabelled test ids)
    train/<id>.png, test/<id>.png
    paths.csv               id,path                       (optional: where each image is)

Images are found through ``paths.csv`` when it exists (paths relative to the folder that holds
it, e.g. ``../MET/3/0.jpg``: the synthetic benchmark uses it to point at its own images instead
of copying them), else at ``<split folder>/<id>.png`` (``val`` images are looked for in ``train/``,
where a validation split carved from Kaggle's training set keeps them).

Every row is checked; a bad one raises :class:`~artid.errors.ArtidError` naming file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from artid.attributes.imet_csv import annotation_rows, read_labels, read_paths
from artid.errors import ArtidError

#: Attribute groups of the two Kaggle competitions.
GROUPS_2019 = ("culture", "tag")
GROUPS_2020 = ("country", "culture", "dimension", "medium", "tags")
SPLITS = ("train", "val", "test")
#: Folder of each split's ``<id>.png`` images in the Kaggle layout.
IMAGE_FOLDERS = {"train": "train", "val": "train", "test": "test"}


@dataclass(frozen=True)
class IMetSplit:
    """The images of one split.

    Attributes:
        name: ``train``, ``val`` or ``test``.
        source: the CSV file the ids come from.
        ids: image ids in file order.
        paths: image path of each id.
        label_ids: attribute ids of each image, in file order; None for an unlabelled split
            (Kaggle's test split, read from ``sample_submission.csv``).
        columns: attribute id -> column of :meth:`targets` (shared with the dataset).
    """

    name: str
    source: Path
    ids: list[str]
    paths: list[Path]
    label_ids: list[tuple[int, ...]] | None
    columns: dict[int, int] = field(repr=False)

    @property
    def labelled(self) -> bool:
        return self.label_ids is not None

    def targets(self) -> np.ndarray:
        """(n_images, n_labels) uint8 multi-hot matrix; columns follow
        :attr:`IMetDataset.labels`."""
        if self.label_ids is None:
            raise ArtidError(
                f"{self.source}: the {self.name} split has no labels (only its image ids)"
            )
        out = np.zeros((len(self.ids), len(self.columns)), np.uint8)
        for row, ids in enumerate(self.label_ids):
            out[row, [self.columns[i] for i in ids]] = 1
        return out


class IMetDataset:
    """An iMet-layout dataset: labels, and splits read on first use.

    ``IMetDataset(root).split("train")`` gives ids, image paths and the multi-hot targets. The
    layout's year is told by the label groups (:attr:`kind`): ``imet2019`` (culture, tag),
    ``imet2020`` (country, culture, dimension, medium, tags) or ``custom`` (the synthetic
    benchmark's department, style, colour, motif).

    Args:
        root: folder holding ``labels.csv`` (for a synthetic benchmark: ``<benchmark>/imet``).
        check_images: raise if an image file is missing (one ``stat`` per image).
    """

    def __init__(self, root: str | Path, check_images: bool = True) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ArtidError(
                f"{self.root}: no such folder (expected an iMet dataset root holding labels.csv)"
            )
        self.check_images = check_images
        self.labels = read_labels(self.root / "labels.csv")
        self.columns = {label.id: i for i, label in enumerate(self.labels)}
        self._splits: dict[str, IMetSplit] = {}

    @cached_property
    def groups(self) -> dict[str, np.ndarray]:
        """Group name -> its columns (int64 array), groups in order of first appearance."""
        out: dict[str, list[int]] = {}
        for i, label in enumerate(self.labels):
            out.setdefault(label.group, []).append(i)
        return {g: np.asarray(cols, np.int64) for g, cols in out.items()}

    @property
    def kind(self) -> str:
        groups = set(self.groups)
        if groups <= set(GROUPS_2019):
            return "imet2019"
        if groups <= set(GROUPS_2020):
            return "imet2020"
        return "custom"

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @cached_property
    def _paths(self) -> dict[str, tuple[Path, int]] | None:
        file = self.root / "paths.csv"
        return read_paths(file) if file.is_file() else None

    def available_splits(self) -> list[str]:
        """Splits with a file: ``train.csv``, ``val.csv``, ``test.csv`` (or
        ``sample_submission.csv``)."""
        out = [s for s in SPLITS if (self.root / f"{s}.csv").is_file()]
        if "test" not in out and (self.root / "sample_submission.csv").is_file():
            out.append("test")
        return out

    def split(self, name: str) -> IMetSplit:
        """One split; ``test`` comes from ``test.csv``, else from ``sample_submission.csv`` (ids
        only, unlabelled)."""
        if name not in SPLITS:
            raise ArtidError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        if name not in self._splits:
            self._splits[name] = self._read_split(name)
        return self._splits[name]

    def _read_split(self, name: str) -> IMetSplit:
        source = self.root / f"{name}.csv"
        labelled = True
        if (
            name == "test"
            and not source.is_file()
            and (self.root / "sample_submission.csv").is_file()
        ):
            source, labelled = self.root / "sample_submission.csv", False
        if not source.is_file():
            raise ArtidError(
                f"{source}: no such file (splits here: "
                f"{', '.join(self.available_splits()) or 'none'})"
            )
        rows = annotation_rows(source, self.columns if labelled else None, allow_empty=not labelled)
        if not rows:
            raise ArtidError(
                f"{source}: lists no images (a header and no rows); the {name} split needs at "
                "least one id,attribute_ids row"
            )
        paths = [self._image_path(name, image_id, f"{source}:{line}") for line, image_id, _ in rows]
        return IMetSplit(
            name,
            source,
            [r[1] for r in rows],
            paths,
            [r[2] for r in rows] if labelled else None,
            self.columns,
        )

    def _image_path(self, split: str, image_id: str, where: str) -> Path:
        if self._paths is not None:
            if image_id not in self._paths:
                raise ArtidError(f"{where}: image {image_id} is not in {self.root / 'paths.csv'}")
            path, line = self._paths[image_id]
            where = f"{self.root / 'paths.csv'}:{line}"
        else:
            path = self.root / IMAGE_FOLDERS[split] / f"{image_id}.png"
        if self.check_images and not path.is_file():
            raise ArtidError(f"{where}: image {image_id}: missing file {path}")
        return path


__all__ = ["GROUPS_2019", "GROUPS_2020", "IMAGE_FOLDERS", "SPLITS", "IMetDataset", "IMetSplit"]
