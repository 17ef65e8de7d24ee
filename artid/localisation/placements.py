"""Ground truth of localisation: ``ground_truth/placements.json`` of a synthetic benchmark."""

from __future__ import annotations

from pathlib import Path

from artid.data.jsonfile import read_json
from artid.errors import ArtidError

Quad = list[list[float]]


def load_placements(root: str | Path) -> dict[str, Quad]:
    """Image path (relative to the root) -> the exhibit's four corners ``[x, y]`` (TL, TR, BR, BL).

    Raises:
        ArtidError: the file is missing (a benchmark made before placements were recorded, or not
            a synthetic one) or malformed.
    """
    path = Path(root) / "ground_truth" / "placements.json"
    if not path.is_file():
        raise ArtidError(
            f"{path} not found: localisation needs a synthetic benchmark written by "
            "`artid synth` (format 3 or later)"
        )
    data = read_json(path)
    placements = data.get("placements") if isinstance(data, dict) else None
    if not isinstance(placements, dict):
        raise ArtidError(f"{path}: expected an object with 'placements' (path -> four corners)")
    out: dict[str, Quad] = {}
    for key, quad in placements.items():
        if (
            not isinstance(quad, list)
            or len(quad) != 4
            or not all(isinstance(c, list) and len(c) == 2 for c in quad)
        ):
            raise ArtidError(f"{path}: placement of {key} is not four [x, y] corners")
        out[str(key)] = [[float(c[0]), float(c[1])] for c in quad]
    return out
