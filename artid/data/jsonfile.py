"""Reading a JSON file a user gave us, with one clear error for every way it can be unreadable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from artid.errors import ArtidError


def read_json(path: str | Path) -> Any:
    """Parse the UTF-8 JSON file ``path``.

    Raises:
        ArtidError: the file cannot be read, is not UTF-8 text (the byte and its offset are named),
            or is not valid JSON; the message starts with the path.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte-order mark is tolerated
    except OSError as exc:
        raise ArtidError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ArtidError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "JSON files must be saved as UTF-8"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtidError(f"{path}: not valid JSON ({exc})") from None
