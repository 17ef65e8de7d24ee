"""benchmarks/rerank.py: its --expansions values are parsed or refused with the value named."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "rerank.py"


def _script():
    spec = importlib.util.spec_from_file_location("rerank_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_expansion_pair_reads_qe_then_dba():
    assert _script().expansion_pair("0,5") == (0, 5)
    assert _script().expansion_pair("3,1") == (3, 1)


@pytest.mark.parametrize("text", ["5", "5,5,5", "a,1", "-1,2"])
def test_expansion_pair_refuses_with_the_value(text):
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text).replace("-", r"\-")):
        _script().expansion_pair(text)
