"""evaluate's confidence: the calibrated probability in predictions_test.csv, the report's
reliability diagram and calibration error, all from the pipeline the run folder keeps."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from evaluate_helpers import _sets

from artid.evaluation.run import evaluate
from artid.metrics.calibration import expected_calibration_error
from artid.retrieval.knn import confidence
from artid.retrieval.pipeline import KNNPipeline, PipelineConfig


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, object]:
    database, val, test = _sets()
    out = tmp_path_factory.mktemp("calibrated") / "run"
    results = evaluate(database, val, test, out, config=PipelineConfig(whiten="none"))
    return out, (results, test)


def test_predictions_hold_the_saved_pipelines_calibrated_confidence(run) -> None:
    out, (results, test) = run
    with open(out / "predictions_test.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {"confidence", "softmax", "score"} <= set(rows[0])
    pipe = KNNPipeline.load(out / "pipeline")
    assert pipe.calibration is not None and pipe.calibration.n_queries == 45  # every val query
    ans = pipe.predict(test.matrix, progress=False)
    by_path = {r["path"]: r for r in rows}
    ordered = [by_path[e.path] for e in test.entries]
    shown = np.array([float(r["confidence"]) for r in ordered])
    assert shown == pytest.approx(pipe.calibration(ans.score), rel=1e-5)
    assert [float(r["softmax"]) for r in ordered] == pytest.approx(confidence(ans.score), rel=1e-5)
    # the probability is not the softmax: it reads the share of right answers, not 1 / N
    assert not np.allclose(shown, [float(r["softmax"]) for r in ordered], atol=0.05)
    order = np.argsort([float(r["score"]) for r in ordered], kind="stable")
    assert np.all(np.diff(shown[order]) >= 0)
    right = np.array([r["correct"] == "1" for r in ordered])
    assert results["test"]["ece"] == pytest.approx(expected_calibration_error(shown, right), 1e-4)


def test_report_states_the_calibration(run) -> None:
    out, _ = run
    saved = json.loads((out / "results.json").read_text())
    assert saved["calibration"]["method"] == "isotonic"  # 45 validation answers
    assert 0 <= saved["test"]["ece"] <= 1 and 0 <= saved["val"]["ece"] <= 1
    assert sum(b["queries"] for b in saved["test"]["reliability"]) == 60
    assert (out / "reliability.png").stat().st_size > 1000
    page = (out / "index.html").read_text()
    assert "reliability.png" in page and "calibration error (ECE)" in page
