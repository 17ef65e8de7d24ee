"""benchmarks/localisation.py --compare: recognition with and without the crop, paired."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
from evaluate_helpers import _sets

from artid.descriptors import DescriptorSet, save_descriptors

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "localisation.py"


def _script():
    spec = importlib.util.spec_from_file_location("localisation_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cropped_folder_without_database_uses_the_plain_one(tmp_path):
    database, val, test = _sets()
    plain, cam = tmp_path / "plain", tmp_path / "cam"
    for name, dset in (("database", database), ("val", val), ("test", test)):
        save_descriptors(plain / name, dset)
    # the crop only describes the query photos (`artid extract --splits val,test --crop cam`):
    # here the cropped test photos sit exactly on a studio photo of their class
    centre = {e.label: database.matrix[i] for i, e in enumerate(database.entries)}
    rows = zip(test.entries, test.matrix, strict=True)
    cropped = np.array([centre[e.label] if e.label >= 0 else row for e, row in rows])
    save_descriptors(cam / "val", val)
    save_descriptors(cam / "test", DescriptorSet(cropped.astype(np.float32), test.entries))
    out = tmp_path / "compare.json"

    results = _script().compare([str(plain), str(cam)], 200, str(out))

    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    entry = results["folders"][str(cam)]
    assert entry["database"] == str(plain)
    plain_gap = results["folders"][str(plain)]["test"]["gap"]["value"]
    assert entry["test"]["gap"]["value"] > plain_gap
    assert entry["minus_reference"]["gap"]["value"] > 0


def test_a_folder_compared_with_itself_differs_by_nothing(tmp_path):
    database, val, test = _sets(seed=1)
    plain = tmp_path / "plain"
    for name, dset in (("database", database), ("val", val), ("test", test)):
        save_descriptors(plain / name, dset)
    copy = tmp_path / "copy"
    save_descriptors(copy / "val", val)
    save_descriptors(copy / "test", test)

    results = _script().compare([str(plain), str(copy)], 200)

    diff = results["folders"][str(copy)]["minus_reference"]
    assert all(v["value"] == 0.0 for v in diff.values())
