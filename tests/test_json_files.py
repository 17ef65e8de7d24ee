"""artid.files.write_json writes standard JSON: a number that is not finite becomes null (Python
wrote NaN / Infinity, which strict parsers refuse: ``--crop-margin inf`` put Infinity into
bundle.json, an undefined metric NaN into a run's results)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from artid.files import write_json


def _strict(text: str):
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float64("nan")])
def test_numbers_that_are_not_finite_are_written_as_null(tmp_path, bad) -> None:
    obj = {"value": bad, "nested": {"list": [1.5, bad, (bad, 2)]}, "ok": 0.25, "n": 3}
    path = write_json(tmp_path / "out.json", obj)
    back = _strict(path.read_text())
    assert back == {"value": None, "nested": {"list": [1.5, None, [None, 2]]}, "ok": 0.25, "n": 3}


def test_finite_values_are_written_unchanged(tmp_path) -> None:
    obj = {"a": [0.1, -2.0, 1e300, 5e-324], "b": "nan", "c": None, "d": True}
    assert _strict(write_json(tmp_path / "x.json", obj).read_text()) == obj
