"""Reading the Met dataset's ground truth, exactly as the official release lays it out.

Layout (see the README): ``<root>/MET/<id>/<n>.jpg``,
``<root>/test_met|test_other|test_noart/*.jpg``,
and the JSON files ``MET_database.json``, ``mini_MET_database.json``, ``valset.json``,
``testset.json`` either in ``<root>`` or in ``<root>/ground_truth``. Images may also sit
under ``<root>/images/`` (the layout the public reference scripts expect).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from artid.data.entries import DISTRACTOR, Entry
from artid.data.jsonfile import read_json
from artid.errors import ArtidError

log = logging.getLogger(__name__)

#: Split name -> ground-truth file name.
GT_FILES = {
    "database": "MET_database.json",
    "mini": "mini_MET_database.json",
    "val": "valset.json",
    "test": "testset.json",
}
QUERY_SPLITS = ("val", "test")
#: Folder of a query image -> its kind.
QUERY_FOLDER_KINDS = {"test_met": "met", "test_other": "other", "test_noart": "noart"}
#: Largest class id that fits the int64 label arrays of the later stages.
MAX_CLASS_ID = 2**63 - 1


@dataclass(frozen=True)
class Split:
    """One split of the Met (or a Met-format) dataset.

    Attributes:
        name: ``database``, ``mini``, ``val`` or ``test``.
        entries: images in the JSON file's order (the row order of descriptors).
        root: dataset root given by the user.
        image_root: folder the entries' paths are relative to (``root`` or ``root/images``),
            or None when no image of the split could be found (descriptors-only use).
        gt_file: the JSON file read.
    """

    name: str
    entries: list[Entry]
    root: Path
    image_root: Path | None
    gt_file: Path

    @property
    def labels(self) -> list[int]:
        return [e.label for e in self.entries]


def find_ground_truth(root: str | Path, split: str) -> Path:
    """Path of a split's JSON file under ``root`` or ``root/ground_truth``."""
    if split not in GT_FILES:
        raise ArtidError(f"unknown split {split!r}; expected one of {', '.join(GT_FILES)}")
    root = Path(root)
    if not root.is_dir():
        raise ArtidError(f"dataset root {root} does not exist or is not a folder")
    name = GT_FILES[split]
    for candidate in (root / name, root / "ground_truth" / name):
        if candidate.is_file():
            return candidate
    raise ArtidError(
        f"ground-truth file {name} not found in {root} or {root / 'ground_truth'} "
        f"(needed for the {split} split)"
    )


def _read_json_array(path: Path) -> list:
    data = read_json(path)
    if not isinstance(data, list):
        raise ArtidError(f"{path}: expected a JSON array of entries, found {type(data).__name__}")
    return data


def _class_id(path: Path, i: int, item: dict, key: str) -> int:
    """The class id ``item[key]``: an integer (or integer string) in 0 .. :data:`MAX_CLASS_ID`."""
    value = item[key]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ArtidError(f"{path}: entry {i} has a non-integer {key!r}: {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ArtidError(f"{path}: entry {i} has a non-integer {key!r}: {value!r}") from None
    if not 0 <= number <= MAX_CLASS_ID:
        raise ArtidError(
            f"{path}: entry {i} ({item['path']}) has {key!r} {number}; Met class ids are "
            f"integers from 0 to {MAX_CLASS_ID} (a distractor has no {key!r} at all)"
        )
    return number


def parse_entries(path: Path, data: list, split: str) -> list[Entry]:
    """Turn the JSON array of ``path`` into entries, naming the entry at fault on error.

    An image listed twice is refused: it would be counted twice (a query weighs double in GAP and
    ACC; a studio photo changes its class's neighbour count), and the official files list every
    image once, so a repeat means the file was merged or edited wrongly. Negative or oversized ids
    are refused too (-1 is the distractor label, which a listed ``MET_id`` would fake).
    """
    entries = []
    first_seen: dict[str, int] = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ArtidError(f"{path}: entry {i} is not an object: {item!r:.80}")
        if "path" not in item:
            raise ArtidError(f"{path}: entry {i} has no 'path' (keys: {', '.join(item) or 'none'})")
        rel = item["path"]
        if not isinstance(rel, str) or not rel:
            raise ArtidError(f"{path}: entry {i} has an empty or non-string 'path': {rel!r}")
        if split in QUERY_SPLITS:
            folder = rel.replace("\\", "/").split("/")[0]
            kind = QUERY_FOLDER_KINDS.get(folder)
            if "MET_id" in item:
                label = _class_id(path, i, item, "MET_id")
                kind = "met"
            else:
                label = DISTRACTOR
                if kind is None or kind == "met":
                    raise ArtidError(
                        f"{path}: entry {i} ({rel}) has no 'MET_id', so it is a distractor, "
                        f"but its folder {folder!r} is not test_other or test_noart"
                    )
        else:
            if "id" not in item:
                raise ArtidError(f"{path}: entry {i} ({rel}) has no 'id'")
            label = _class_id(path, i, item, "id")
            kind = "exhibit"
        key = str(PurePosixPath(rel.replace("\\", "/")))
        if key in first_seen:
            raise ArtidError(
                f"{path}: entry {i} ({rel}) repeats entry {first_seen[key]}: every image may be "
                "listed only once (it would otherwise be counted twice)"
            )
        first_seen[key] = i
        entries.append(Entry(path=rel, label=label, kind=kind))
    return entries


def resolve_image_root(root: Path, first_path: str) -> Path | None:
    """Folder that image paths are relative to: ``root`` or ``root/images`` (None if neither)."""
    for candidate in (root, root / "images"):
        if (candidate / first_path).is_file():
            return candidate
    return None


def load_split(root: str | Path, split: str) -> Split:
    """Read one split of a Met-format dataset.

    Args:
        root: dataset root (holds the JSON files or ``ground_truth/``, and the image folders).
        split: ``database``, ``mini``, ``val`` or ``test``.

    Returns:
        The split; ``image_root`` says where its images were found (None if not on disk).

    Raises:
        ArtidError: missing file, text that is not UTF-8 JSON, an entry without a usable path / id,
            an impossible id, or an image listed twice.
    """
    root = Path(root)
    gt = find_ground_truth(root, split)
    entries = parse_entries(gt, _read_json_array(gt), split)
    if not entries:
        raise ArtidError(f"{gt}: holds no entries")
    image_root = resolve_image_root(root, entries[0].path)
    if image_root is None:
        log.info(
            "images of %s not found under %s or %s/images (fine if you only evaluate descriptors)",
            split,
            root,
            root,
        )
    elif image_root != root:
        log.info("reading images of %s from %s", split, image_root)
    return Split(name=split, entries=entries, root=root, image_root=image_root, gt_file=gt)
