"""The end-to-end demo at a tiny size: every Table 5.1 row, the report folders, the example picture, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from artid.cli import main
from artid.demo import ROWS, DemoConfig, run_demo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = DemoConfig(out=out, classes=16, image_size=48, met_queries=12, distractor_ratio=2.0, dim=16, workers=1)
    return cfg, run_demo(cfg)


def test_demo_prints_every_ablation_row_with_its_report(demo):
    cfg, summary = demo
    assert [r["name"] for r in summary["rows"]] == [name for name, *_ in ROWS]
    for row in summary["rows"]:
        assert all(0.0 <= row["test"][m] <= 1.0 for m in ("gap", "gap_minus", "acc"))
        run_dir = Path(row["run_dir"])
        assert run_dir.parent == cfg.out / "runs" and (run_dir / "index.html").is_file()
        assert json.loads((run_dir / "results.json").read_text())["name"] == row["name"]
    reranked = json.loads((Path(summary["rows"][-1]["run_dir"]) / "results.json").read_text())
    assert reranked["rerank"]["top"] == 10 and "gap" in reranked["rerank"]["paired"]["test"]
    assert reranked["global"]["test"]["gap"] == pytest.approx(summary["rows"][3]["test"]["gap"])  # = row 4
    assert len(list((cfg.out / "local_features").glob("*.npz"))) > 0
    k1 = next(r for r in summary["rows"] if "k=1" in r["name"])
    assert k1["k"] == 1
    assert (cfg.out / "examples.png").stat().st_size > 10_000
    assert summary["table"].splitlines()[0].strip() == "test set"
    assert (cfg.out / "table.txt").read_text().strip() == summary["table"].strip()


def test_demo_rerun_resumes_from_its_files(demo, capsys):
    cfg, summary = demo
    argv = ["demo", "--out", str(cfg.out), "--classes", "16", "--image-size", "48", "--met-queries", "12",
            "--distractor-ratio", "2", "--dim", "16", "--workers", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    again = json.loads((cfg.out / "demo.json").read_text())
    assert [r["test"] for r in again["rows"]] == [r["test"] for r in summary["rows"]]
    assert again["seconds"]["extract_ms"] < 5  # descriptors were read back, not extracted again
    assert "1  SS" in out and "examples.png" in out
