"""``artid attributes train | predict | evaluate`` end to end on a tiny synthetic benchmark."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from artid.attributes.imet import IMetDataset
from artid.cli import main

TINY = ["--max-size", "48", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-exhibit synthetic benchmark (48 px, no distractors), generated once for the module."""
    root = tmp_path_factory.mktemp("attr") / "bench"
    assert main(["synth", "--out", str(root), "--classes", "12", "--image-size", "48", "--distractor-ratio", "0",
                 "--met-queries", "12", "--val-share", "0.4", "--workers", "1", "--no-progress"]) == 0
    return root / "imet"


@pytest.fixture(scope="module")
def desc(bench: Path) -> list[str]:
    """One descriptor folder shared by the frozen-backbone runs (extracted by the first, reused after)."""
    return ["--descriptors", str(bench.parent / "descriptors")]


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)


def _read_submission(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "attribute_ids"]
    return rows[1:]


def _train_predict_evaluate(bench: Path, run: Path, extra: list[str]) -> dict:
    assert main(["attributes", "train", "--root", str(bench), "--out", str(run), *extra]) == 0
    sub = run / "submission.csv"
    assert main(["attributes", "predict", "--run", str(run), "--root", str(bench), "--out", str(sub),
                 "--no-progress"]) == 0
    data = IMetDataset(bench)
    test = data.split("test")
    rows = _read_submission(sub)
    assert [r[0] for r in rows] == test.ids
    valid = {str(label.id) for label in data.labels}
    for _, ids in rows:  # at least one label per image (the at-least-one rule), all of them known
        assert ids.split() and set(ids.split()) <= valid
    assert main(["attributes", "evaluate", "--run", str(run), "--root", str(bench), "--resamples", "50",
                 "--no-progress"]) == 0
    return json.loads((run / "report_test" / "metrics.json").read_text())


def _check_multilabel_report(run: Path, metrics: dict) -> None:
    assert 0 <= metrics["f2"]["value"] <= 1 and metrics["f2"]["se"] >= 0
    assert set(metrics["f2_by_mode"]) == {"global", "group", "label"}
    assert metrics["f2"]["value"] == metrics["f2_by_mode"]["group"]  # the run's default kind
    assert 0 <= metrics["f2_at_0.5"] <= 1 and 0 < metrics["ranking"]["auc_pr_macro"] <= 1
    for png in ("threshold_curve.png", "label_f2.png", "examples.png"):
        assert (run / "report_test" / png).stat().st_size > 1000


def test_head_end_to_end(bench: Path, desc: list[str], tmp_path: Path):
    run = tmp_path / "head"
    metrics = _train_predict_evaluate(bench, run, ["--model", "head", "--head-epochs", "30", *desc, *TINY])
    _check_multilabel_report(run, metrics)
    meta = json.loads((run / "run.json").read_text())
    assert meta["thresholds"]["label"]["fbeta"] >= meta["thresholds"]["global"]["fbeta"] - 1e-9


def test_knn_end_to_end_tunes_tau_on_val(bench: Path, desc: list[str], tmp_path: Path):
    run = tmp_path / "knn"
    metrics = _train_predict_evaluate(bench, run, ["--model", "knn", "--k", "3", *desc, *TINY])
    _check_multilabel_report(run, metrics)
    s = json.loads((run / "run.json").read_text())["settings"]
    assert s["tau"] == max(s["tau_grid"], key=lambda g: (g["f2"], -g["tau"]))["tau"]


def test_bow_svm_end_to_end(bench: Path, tmp_path: Path):
    run = tmp_path / "bow"
    metrics = _train_predict_evaluate(bench, run, ["--model", "bow-svm", "--vocabulary", "16", "--cv", "2", *TINY])
    _check_multilabel_report(run, metrics)


def test_multiclass_end_to_end(bench: Path, desc: list[str], tmp_path: Path):
    run = tmp_path / "mc"
    metrics = _train_predict_evaluate(bench, run, ["--model", "multiclass", "--group", "department",
                                                   "--class-weighting", "--head-epochs", "30", *desc, *TINY])
    assert metrics["group"] == "department" and metrics["top5"] >= metrics["top1"]
    assert (run / "report_test" / "confusion.png").is_file()
    data = IMetDataset(bench)
    departments = {str(data.labels[c].id) for c in data.groups["department"]}
    for _, ids in _read_submission(run / "submission.csv"):  # exactly one department per image
        assert len(ids.split()) == 1 and ids in departments


def test_finetune_one_epoch_then_resumes(bench: Path, tmp_path: Path):
    run = tmp_path / "ft"
    args = ["--model", "finetune", "--size", "48", "--batch-size", "8", "--loss", "focal", "--gamma", "1.5", *TINY]
    _check_multilabel_report(run, _train_predict_evaluate(bench, run, [*args, "--epochs", "1"]))
    first = (run / "log.jsonl").read_text().splitlines()
    assert len(first) == 1
    assert main(["attributes", "train", "--root", str(bench), "--out", str(run), *args, "--epochs", "2"]) == 0
    log = (run / "log.jsonl").read_text().splitlines()
    assert log[0] == first[0] and [json.loads(x)["epoch"] for x in log] == [1, 2]  # continued, not restarted
    assert main(["attributes", "train", "--root", str(bench), "--out", str(run), *args, "--epochs", "2",
                 "--lr", "0.5"]) == 2  # other settings: refused, naming the file


def test_bad_input_is_a_message_not_a_traceback(bench: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    assert main(["attributes", "evaluate", "--run", str(tmp_path / "nothing"), "--root", str(bench)]) == 2
    assert "not an attributes run" in capsys.readouterr().err
    assert main(["attributes", "train", "--root", str(bench), "--out", str(tmp_path / "x"), "--model", "multiclass",
                 "--group", "nope", *TINY]) == 2
    assert "no such label group" in capsys.readouterr().err
    assert main(["attributes", "train", "--root", str(bench), "--out", str(tmp_path / "x"), "--model", "multiclass",
                 "--group", "motif", *TINY]) == 2  # several motifs per image: not a multi-class group
    assert "exactly one" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["attributes", "train", "--root", str(bench), "--out", str(tmp_path / "x"), "--model", "svm"])
    assert exc.value.code == 2
