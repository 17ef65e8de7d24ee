"""The benchmark's annotations beside the Met's ground truth: attribute labels and placements.

``ground_truth/attributes.json``
    The vocabulary (``labels``: attribute id = index) and every exhibit's labels, family and
    relation.
``imet/``
    The same labels in the iMet Collection layout, read by
    :class:`artid.attributes.IMetDataset`:
    ``labels.csv`` (``attribute_id,attribute_name``; groups department, style, colour, motif),
    ``train.csv`` (``id,attribute_ids``: every studio photo, with its exhibit's attributes),
    ``val.csv`` and ``test.csv`` (the Met queries of the val and test splits: visitor photos,
    labelled with the attributes of the exhibit they show; distractors are left out), and
    ``paths.csv`` (``id,path``: each image's path relative to ``imet/``, e.g. ``../MET/3/0.jpg``;
    no image is copied). An image's id is its Met path without extension, ``/`` made ``_``
    (``MET_3_0``, ``test_met_000012``).
``ground_truth/placements.json``
    For every Met query (val and test), the quadrilateral where the exhibit was placed in the
    photo: ``placements[path]`` is ``[[x, y], ...]``, the corners of the work's top-left,
    top-right, bottom-right and bottom-left, in pixels of the photo (see
    :func:`artid.data.synth.gallery.visitor_photo_placed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from artid.data.csvfile import write_csv
from artid.data.synth.layout import Plan, write_compact_json

Quad = Sequence[tuple[float, float]]


def image_id(path: str) -> str:
    """The iMet id of a benchmark image: its path without extension, ``/`` replaced by ``_``."""
    return path.rsplit(".", 1)[0].replace("/", "_")


def write_attributes(
    root: Path, plan: Plan, labels: list[list[str]], vocab: list[str], version: int
) -> None:
    """Write ``ground_truth/attributes.json`` (``labels[c]``: the attribute names of exhibit c)."""
    index = {label: i for i, label in enumerate(vocab)}
    exhibits = [
        {
            "id": c,
            "labels": names,
            "attribute_ids": [index[x] for x in names],
            "family": plan.members[c].family,
            "relation": plan.members[c].relation or "original",
        }
        for c, names in enumerate(labels)
    ]
    write_compact_json(
        root / "ground_truth" / "attributes.json",
        {
            "format": "artid-synth-attributes",
            "version": version,
            "labels": vocab,
            "exhibits": exhibits,
        },
    )


def write_imet(root: Path, plan: Plan, labels: list[list[str]], vocab: list[str]) -> None:
    """Write ``imet/`` (see the module docstring) from the exhibits' attribute names."""
    out = root / "imet"
    index = {label: i for i, label in enumerate(vocab)}
    ids_of = [" ".join(str(index[x]) for x in names) for names in labels]
    write_csv(
        out / "labels.csv",
        ["attribute_id", "attribute_name"],
        [[i, name] for i, name in enumerate(vocab)],
    )
    paths = []
    splits = {
        "train": [(r["path"], r["id"]) for r in plan.database],
        "val": [(r["path"], r["MET_id"]) for r in plan.val if "MET_id" in r],
        "test": [(r["path"], r["MET_id"]) for r in plan.test if "MET_id" in r],
    }
    for split, rows in splits.items():
        write_csv(
            out / f"{split}.csv",
            ["id", "attribute_ids"],
            [[image_id(p), ids_of[c]] for p, c in rows],
        )
        paths += [[image_id(p), f"../{p}"] for p, _ in rows]
    write_csv(out / "paths.csv", ["id", "path"], paths)


def write_placements(root: Path, placements: dict[str, Quad], version: int) -> None:
    """Write ``ground_truth/placements.json`` (image path -> four corners), paths sorted."""
    data = {
        path: [[round(float(x), 2), round(float(y), 2)] for x, y in quad]
        for path, quad in sorted(placements.items())
    }
    write_compact_json(
        root / "ground_truth" / "placements.json",
        {
            "format": "artid-synth-placements",
            "version": version,
            "corners": (
                "top-left, top-right, bottom-right, bottom-left of the exhibit, "
                "in pixels of the photo"
            ),
            "placements": data,
        },
    )
