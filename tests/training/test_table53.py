"""The Table 5.3 runner's plan and table: seeds for the contrastive rows, SE and paired
differences."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from artid.errors import ArtidError
from artid.training.table53 import _plan, add_arguments, run
from artid.training.table53_scores import format_table, row_stats


def test_contrastive_rows_run_once_per_seed():
    plan = _plan(["untrained", "Con-Syn+Real", "SimSiam"], seeds=2, seed=0)
    assert plan == [
        ("untrained", "untrained", 0),
        ("Con-Syn+Real", "Con-Syn+Real", 0),
        ("Con-Syn+Real (seed 1)", "Con-Syn+Real", 1),
        ("SimSiam", "SimSiam", 0),
    ]


def test_table_marks_a_gain_only_beyond_three_paired_se():
    rng = np.random.default_rng(0)
    labels = np.where(rng.random(600) < 0.3, rng.integers(0, 100, 600), -1)
    keys = np.array([f"q{i:04d}" for i in range(600)])
    base = (np.where(rng.random(600) < 0.3, labels, 999), rng.normal(size=600))
    better = (np.where(rng.random(600) < 0.8, labels, base[0]), base[1] + 3 * (labels >= 0))
    same = (base[0].copy(), base[1] + 1e-9 * rng.normal(size=600))
    results = {
        "untrained": {"knn": row_stats(base, None, labels, keys, 200)},
        "trained": {
            "knn": row_stats(better, base, labels, keys, 200),
            "steps": 40,
            "best_epoch": 3,
            "minutes": 1.5,
        },
        "noop": {"knn": row_stats(same, base, labels, keys, 200)},
    }
    d = results["trained"]["knn"]["vs_untrained"]["gap"]
    assert d["value"] > 3 * d["se"] > 0
    table = format_table(results)
    lines = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert "**gain**" in lines["trained"] and "**gain**" not in lines["noop"]
    assert "| 40 | 3 | 1.5 |" in lines["trained"] and "| - | - |" in lines["untrained"]


def test_root_without_images_is_refused_clearly(met_root: Path, tmp_path: Path) -> None:
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(
        ["--root", str(met_root), "--out", str(tmp_path / "out"), "--device", "cpu"]
    )
    with pytest.raises(ArtidError, match="no image of the database split"):
        run(args)
