"""What to extract: named image lists from a Met-format root, a plain folder, or a list file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from artid.data.entries import DISTRACTOR, Entry
from artid.data.met import load_split
from artid.errors import ArtidError

#: File extensions taken from a plain folder (case-insensitive).
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)


@dataclass(frozen=True)
class ImageList:
    """Images whose descriptors go into one descriptor file.

    Attributes:
        name: output name (``<out>/<name>.npy``), e.g. ``database`` or ``val``.
        entries: the images, in output row order.
        image_root: folder that relative entry paths are resolved against.
    """

    name: str
    entries: list[Entry]
    image_root: Path

    def path_of(self, entry: Entry) -> Path:
        """Absolute file of an entry."""
        p = Path(entry.path)
        return p if p.is_absolute() else self.image_root / p


def met_sources(root: str | Path, splits: list[str]) -> list[ImageList]:
    """One image list per requested split of a Met-format root.

    Raises:
        ArtidError: missing ground truth, or the split's images are not under the root.
    """
    lists = []
    for split_name in splits:
        split = load_split(root, split_name)
        if split.image_root is None:
            raise ArtidError(
                f"images of the {split_name} split not found: {split.entries[0].path} is neither "
                "in "
                f"{split.root} nor in {split.root / 'images'}"
            )
        lists.append(ImageList(split_name, split.entries, split.image_root))
    return lists


def folder_source(folder: str | Path, name: str | None = None) -> ImageList:
    """Every image file under ``folder`` (recursively, sorted by path), unlabelled (-1, kind
    ``other``).

    Raises:
        ArtidError: the folder does not exist or holds no image file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtidError(f"image folder {folder} does not exist or is not a folder")
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise ArtidError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found under {folder}")
    entries = [
        Entry(path=p.relative_to(folder).as_posix(), label=DISTRACTOR, kind="other") for p in files
    ]
    return ImageList(name or folder.name or "images", entries, folder)


def list_source(list_file: str | Path, name: str | None = None) -> ImageList:
    """Images named in a text file: one ``PATH`` or ``PATH LABEL`` per line.

    Relative paths are relative to the list file's folder. Blank lines and lines starting with
    ``#`` are skipped. With a label an entry is an ``exhibit`` of that class, without one it is
    unlabelled (-1, kind ``other``).

    Raises:
        ArtidError: unreadable file, a malformed line (named by number), or no entries.
    """
    list_file = Path(list_file)
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ArtidError(f"list file {list_file} cannot be read ({exc.strerror})") from None
    entries = parse_list_lines(lines, list_file)
    return ImageList(name or list_file.stem, entries, list_file.resolve().parent)


def parse_list_lines(lines: list[str], list_file: str | Path) -> list[Entry]:
    """The entries of a list file's lines (see :func:`list_source`).

    Raises:
        ArtidError: no entries (the message names ``list_file``).
    """
    entries = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path, _, rest = line.rpartition(" ") if _has_label(line) else (line, "", "")
        if rest:
            entries.append(Entry(path=path.strip(), label=int(rest), kind="exhibit"))
        else:
            entries.append(Entry(path=line, label=DISTRACTOR, kind="other"))
    if not entries:
        raise ArtidError(f"list file {list_file} names no images")
    return entries


def _has_label(line: str) -> bool:
    """True when the last whitespace-separated field is an integer (a class label)."""
    head, sep, tail = line.rpartition(" ")
    if not sep or not head.strip():
        return False
    try:
        int(tail)
    except ValueError:
        return False
    return True
