"""The unit every stage passes along: one image with its class label and kind."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: Kinds of entries. ``exhibit``: a database (studio) image; ``met``: a visitor
#: photo of an exhibit (a query with a true class); ``other`` and ``noart``:
#: distractor queries (other artworks / non-art photos), label -1.
KINDS = ("exhibit", "met", "other", "noart")
DISTRACTOR_KINDS = ("other", "noart")
DISTRACTOR = -1


@dataclass(frozen=True)
class Entry:
    """One image of a split.

    Attributes:
        path: image path relative to the dataset root (e.g. ``MET/123/0.jpg``),
            or an absolute path for loose collections.
        label: class id (Met exhibit id), or -1 for a distractor.
        kind: one of :data:`KINDS`.
    """

    path: str
    label: int
    kind: str

    @property
    def is_distractor(self) -> bool:
        return self.label == DISTRACTOR

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Entry:
        return cls(path=str(obj["path"]), label=int(obj["label"]), kind=str(obj["kind"]))
