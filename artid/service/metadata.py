"""Metadata of a collection's artworks: ``metadata.csv`` or ``metadata.json`` beside the artwork
folders, read into artwork key -> fields (all text); see :mod:`artid.service.collection` for the
layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from artid.errors import ArtidError


def _clean_record(source: Path, where: str, record: dict[str, Any]) -> tuple[str, dict[str, str]]:
    key_field = "key" if "key" in record else "id" if "id" in record else None
    if key_field is None:
        raise ArtidError(
            f"{source}: {where} has no 'key' (or 'id') field naming the artwork's folder"
        )
    key = str(record[key_field]).strip()
    if not key:
        raise ArtidError(f"{source}: {where} has an empty {key_field!r}")
    fields = {
        str(k).strip().lower(): "" if v is None else str(v).strip()
        for k, v in record.items()
        if k != key_field and k is not None
    }
    return key, fields


def read_metadata(path: str | Path) -> dict[str, dict[str, str]]:
    """Read ``metadata.csv`` or ``metadata.json``: artwork key -> fields (all text).

    Raises:
        ArtidError: unreadable file, a record without a key, or a key given twice.
    """
    path = Path(path)
    records: list[tuple[str, dict[str, Any]]] = []
    try:
        if path.suffix.lower() == ".csv":
            with open(path, encoding="utf-8-sig", newline="") as f:
                reader = csv.DictReader(f)
                if not reader.fieldnames:
                    raise ArtidError(
                        f"{path}: empty CSV (expected a header row with a 'key' column)"
                    )
                records = [(f"row {i + 2}", row) for i, row in enumerate(reader)]
        elif path.suffix.lower() == ".json":
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if isinstance(data, dict):
                records = []
                for key, value in data.items():
                    if not isinstance(value, dict):
                        raise ArtidError(f"{path}: the value for {key!r} is not an object")
                    records.append((f"entry {key!r}", {"key": key, **value}))
            elif isinstance(data, list):
                for i, value in enumerate(data):
                    if not isinstance(value, dict):
                        raise ArtidError(f"{path}: entry {i} is not an object")
                    records.append((f"entry {i}", value))
            else:
                raise ArtidError(
                    f"{path}: expected a JSON list of objects or an object keyed by artwork"
                )
        else:
            raise ArtidError(f"{path}: metadata must be a .csv or .json file")
    except json.JSONDecodeError as exc:
        raise ArtidError(f"{path}: not valid JSON ({exc})") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ArtidError(f"{path}: cannot be read ({exc})") from None
    out: dict[str, dict[str, str]] = {}
    for where, record in records:
        key, fields = _clean_record(path, where, record)
        if key in out:
            raise ArtidError(f"{path}: artwork {key!r} is described twice ({where})")
        out[key] = fields
    return out


def find_metadata(root: Path) -> Path | None:
    """``root/metadata.csv`` or ``root/metadata.json`` (an error if both exist)."""
    found = [p for p in (root / "metadata.csv", root / "metadata.json") if p.is_file()]
    if len(found) > 1:
        raise ArtidError(f"{root} has both metadata.csv and metadata.json: keep one")
    return found[0] if found else None
