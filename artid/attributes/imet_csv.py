"""The iMet Collection CSV files, row by row: ``labels.csv``, ``id,attribute_ids`` files,
``paths.csv``.

The exact Kaggle forms (iMet Collection 2019 and 2020). Every row is checked; a bad one raises
:class:`~artid.errors.ArtidError` naming file and line. :class:`~artid.attributes.imet.IMetDataset`
puts them together.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from artid.errors import ArtidError
from artid.files import atomic_path

LABELS_HEADER = ["attribute_id", "attribute_name"]
ANNOTATION_HEADER = ["id", "attribute_ids"]
PATHS_HEADER = ["id", "path"]


@dataclass(frozen=True)
class Label:
    """One attribute: ``id`` as in ``labels.csv``, ``name`` whole (``culture::american``), split in
    group and value."""

    id: int
    name: str
    group: str
    value: str


def _read_csv(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank row after a checked header."""
    if not path.is_file():
        raise ArtidError(f"{path}: no such file")
    out = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            first = next(reader, None)
            if first is None or [c.strip() for c in first] != header:
                raise ArtidError(
                    f"{path}:1: header must be {','.join(header)!r}, found "
                    f"{','.join(first or [])!r}"
                )
            for row in reader:
                if not row:
                    continue  # a blank line holds nothing to drop
                if len(row) != len(header):
                    raise ArtidError(
                        f"{path}:{reader.line_num}: expected {len(header)} fields "
                        f"({','.join(header)}), found {len(row)}"
                    )
                out.append((reader.line_num, row))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ArtidError(f"{path}:{reader.line_num}: unreadable CSV ({exc})") from None
    return out


def read_labels(path: str | Path) -> list[Label]:
    """Read ``labels.csv`` (``attribute_id,attribute_name``), sorted by id.

    Raises:
        ArtidError: bad header, a non-integer or duplicate id, a name that is not ``group::value``.
    """
    path = Path(path)
    seen: dict[int, int] = {}
    out = []
    for line, (id_text, name) in _read_csv(path, LABELS_HEADER):
        where = f"{path}:{line}"
        try:
            label_id = int(id_text)
        except ValueError:
            raise ArtidError(
                f"{where}: attribute_id must be an integer, found {id_text!r}"
            ) from None
        if label_id < 0:
            raise ArtidError(f"{where}: attribute_id must be non-negative, found {label_id}")
        if label_id in seen:
            raise ArtidError(
                f"{where}: attribute_id {label_id} already defined on line {seen[label_id]}"
            )
        group, sep, value = name.partition("::")
        if not sep or not group or not value:
            raise ArtidError(
                f"{where}: attribute_name must be 'group::value' (e.g. culture::american), found "
                f"{name!r}"
            )
        seen[label_id] = line
        out.append(Label(label_id, name, group, value))
    if not out:
        raise ArtidError(f"{path}: no labels")
    return sorted(out, key=lambda label: label.id)


def check_image_id(image_id: str, where: str) -> None:
    """Raise unless ``image_id`` can name a file (non-empty, no path separator, no surrounding
    space)."""
    if (
        not image_id
        or image_id != image_id.strip()
        or any(c in image_id for c in "/\\")
        or image_id in (".", "..")
    ):
        raise ArtidError(f"{where}: image id {image_id!r} is empty or not a plain file name")


def read_annotations(
    path: str | Path, known: Iterable[int] | None, allow_empty: bool = False
) -> tuple[list[str], list[tuple[int, ...]]]:
    """Read an ``id,attribute_ids`` file (``train.csv``, a submission).

    Args:
        path: the CSV file.
        known: the attribute ids of ``labels.csv``; an id outside them is an error (None: any id).
        allow_empty: accept rows with no attribute id (a submission may leave an image empty).

    Returns:
        The image ids and, for each, its attribute ids in file order.

    Raises:
        ArtidError: bad header, a duplicate image id, an empty (unless allowed), malformed,
            repeated or unknown attribute id.
    """
    rows = annotation_rows(Path(path), known, allow_empty)
    return [image_id for _, image_id, _ in rows], [labels for _, _, labels in rows]


def annotation_rows(
    path: Path, known: Iterable[int] | None, allow_empty: bool
) -> list[tuple[int, str, tuple[int, ...]]]:
    """As :func:`read_annotations`, one (line, image id, attribute ids) per row."""
    valid = None if known is None else set(known)
    seen: dict[str, int] = {}
    out = []
    for line, (image_id, text) in _read_csv(path, ANNOTATION_HEADER):
        where = f"{path}:{line}"
        check_image_id(image_id, where)
        if image_id in seen:
            raise ArtidError(
                f"{where}: image id {image_id} already listed on line {seen[image_id]}"
            )
        tokens = text.split(" ") if text else []
        if not allow_empty and not tokens:
            raise ArtidError(
                f"{where}: image {image_id} has no attribute ids (at least one is required)"
            )
        if any(not (t.isascii() and t.isdigit()) for t in tokens):
            raise ArtidError(
                f"{where}: attribute_ids must be non-negative integers separated by single spaces, "
                f"found {text!r}"
            )
        row = tuple(int(t) for t in tokens)
        if len(set(row)) != len(row):
            raise ArtidError(f"{where}: image {image_id} lists an attribute id twice ({text!r})")
        unknown = [i for i in row if valid is not None and i not in valid]
        if unknown:
            raise ArtidError(f"{where}: attribute id {unknown[0]} is not in labels.csv")
        seen[image_id] = line
        out.append((line, image_id, row))
    return out


def read_paths(path: str | Path) -> dict[str, tuple[Path, int]]:
    """Read ``paths.csv``: image id -> (path resolved against the file's folder, line)."""
    path = Path(path)
    out: dict[str, tuple[Path, int]] = {}
    for line, (image_id, rel) in _read_csv(path, PATHS_HEADER):
        where = f"{path}:{line}"
        check_image_id(image_id, where)
        if image_id in out:
            raise ArtidError(
                f"{where}: image id {image_id} already listed on line {out[image_id][1]}"
            )
        if not rel or os.path.isabs(rel):
            raise ArtidError(f"{where}: path must be relative to {path.parent}, found {rel!r}")
        out[image_id] = (path.parent / rel, line)
    return out


def write_submission(
    path: str | Path, ids: Sequence[str], label_lists: Sequence[Iterable[int]]
) -> None:
    """Write a Kaggle submission (``id,attribute_ids``; an image may have no attribute id).

    Raises:
        ArtidError: lengths differ, a duplicate or malformed id, a negative attribute id.
    """
    path = Path(path)
    if len(ids) != len(label_lists):
        raise ArtidError(f"{path}: {len(ids)} image ids but {len(label_lists)} label lists")
    seen: set[str] = set()
    lines = []
    for n, (image_id, labels) in enumerate(zip(ids, label_lists)):
        check_image_id(image_id, f"{path}: row {n + 1}")
        if image_id in seen:
            raise ArtidError(f"{path}: image id {image_id} given twice")
        seen.add(image_id)
        row = [int(x) for x in labels]
        if any(x < 0 for x in row) or len(set(row)) != len(row):
            raise ArtidError(
                f"{path}: image {image_id}: attribute ids must be distinct and non-negative, got "
                f"{row}"
            )
        lines.append([image_id, " ".join(map(str, row))])
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(ANNOTATION_HEADER)
        writer.writerows(lines)


__all__ = [
    "ANNOTATION_HEADER",
    "LABELS_HEADER",
    "PATHS_HEADER",
    "Label",
    "annotation_rows",
    "check_image_id",
    "read_annotations",
    "read_labels",
    "read_paths",
    "write_submission",
]
