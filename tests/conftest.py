"""Shared fixtures: tiny Met-format ground truth written into a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_met_ground_truth(root: Path, in_subfolder: bool = True) -> Path:
    """Write a 3-class Met-format ground truth (no images) and return the JSON folder."""
    gt = root / "ground_truth" if in_subfolder else root
    gt.mkdir(parents=True, exist_ok=True)
    database = [
        {"id": 7, "path": "MET/7/0.jpg"},
        {"id": 7, "path": "MET/7/1.jpg"},
        {"id": 9, "path": "MET/9/0.jpg"},
        {"id": 12, "path": "MET/12/0.jpg"},
    ]
    val = [
        {"path": "test_met/a.jpg", "MET_id": 7, "photographer": "x"},
        {"path": "test_other/b.jpg", "category": "other"},
        {"path": "test_noart/c.jpg", "category": "noart"},
    ]
    test = [
        {"path": "test_met/d.jpg", "MET_id": 9},
        {"path": "test_met/e.jpg", "MET_id": 12},
        {"path": "test_noart/f.jpg"},
    ]
    for name, data in [("MET_database.json", database), ("mini_MET_database.json", database[2:]),
                       ("valset.json", val), ("testset.json", test)]:
        (gt / name).write_text(json.dumps(data))
    return gt


@pytest.fixture
def write_gt():
    """The ground-truth writer, for tests that need it at the dataset root."""
    return write_met_ground_truth


@pytest.fixture
def met_root(tmp_path: Path) -> Path:
    write_met_ground_truth(tmp_path)
    return tmp_path
