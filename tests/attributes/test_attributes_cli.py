"""``artid attributes train | predict | evaluate`` end to end on a tiny synthetic benchmark."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artid.attributes.imet import IMetDataset
from artid.cli import main

TINY = ["--max-size", "48", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-exhibit synthetic benchmark (48 px, no distractors), generated once for the module."""
    root = tmp_path_factory.mktemp("attr") / "bench"
    assert (
        main(
            [
                "synth",
                "--out",
                str(root),
                "--classes",
                "12",
                "--image-size",
                "48",
                "--distractor-ratio",
                "0",
                "--met-queries",
                "12",
                "--val-share",
                "0.4",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    return root / "imet"


@pytest.fixture(scope="module")
def desc(bench: Path) -> list[str]:
    """One descriptor folder shared by the frozen-backbone runs (extracted by the first, reused
    after)."""
    return ["--descriptors", str(bench.parent / "descriptors")]


@pytest.fixture(scope="module")
def shuffled(bench: Path) -> Path:
    """The benchmark with its training labels permuted among the training images: a model trained
    on it learns no image -> attribute relation (a random model), only the labels' frequencies.
    The images are the same files (``paths.csv`` is relative), so are the descriptors."""
    root = bench.parent / "imet_shuffled"
    root.mkdir()
    for name in ("labels.csv", "paths.csv", "val.csv", "test.csv"):
        (root / name).write_bytes((bench / name).read_bytes())
    with open(bench / "train.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    perm = np.random.default_rng(0).permutation(len(rows))
    with open(root / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows([header] + [[r[0], rows[j][1]] for r, j in zip(rows, perm)])
    return root


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
    assert (
        main(
            [
                "attributes",
                "predict",
                "--run",
                str(run),
                "--root",
                str(bench),
                "--out",
                str(sub),
                "--no-progress",
            ]
        )
        == 0
    )
    data = IMetDataset(bench)
    test = data.split("test")
    rows = _read_submission(sub)
    assert [r[0] for r in rows] == test.ids
    valid = {str(label.id) for label in data.labels}
    for _, ids in rows:  # at least one label per image (the at-least-one rule), all of them known
        assert ids.split() and set(ids.split()) <= valid
    assert (
        main(
            [
                "attributes",
                "evaluate",
                "--run",
                str(run),
                "--root",
                str(bench),
                "--resamples",
                "50",
                "--no-progress",
            ]
        )
        == 0
    )
    return json.loads((run / "report_test" / "metrics.json").read_text())


def _f2(true: set[str], pred: set[str]) -> float:
    tp = len(true & pred)
    return 0.0 if tp == 0 else 5 * tp / (4 * len(true) + len(pred))


def _check_plot(
    png: Path, size: tuple[int, int], colours: int, colour: tuple[int, int, int], pixels: int
) -> None:
    """A decodable PNG of that size with more than ``colours`` distinct colours and at least
    ``pixels`` pixels of ``colour`` (a curve or points, not only a legend's sample)."""
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == size, (png, img.size)
        rgb = np.asarray(img.convert("RGB")).reshape(-1, 3).astype(int)
    assert len(np.unique(rgb, axis=0)) > colours, png
    assert (np.abs(rgb - colour).sum(1) < 30).sum() >= pixels, png


def _check_multilabel_report(bench: Path, run: Path, metrics: dict) -> None:
    # the reported F2 is the mean per-image F2 of the submission's labels against the test labels
    with open(bench / "test.csv", newline="") as f:
        truth = {r["id"]: set(r["attribute_ids"].split()) for r in csv.DictReader(f)}
    said = {r[0]: set(r[1].split()) for r in _read_submission(run / "submission.csv")}
    f2 = float(np.mean([_f2(truth[i], said[i]) for i in truth]))
    assert metrics["f2"]["value"] == pytest.approx(f2, abs=1e-9)
    assert set(metrics["f2_by_mode"]) == {"global", "group", "label"}
    assert metrics["f2"]["value"] == metrics["f2_by_mode"]["group"]  # the run's default kind
    assert metrics["f2"]["se"] > 0
    # measured: the curve ~1000 pixels of matplotlib's C0 blue and ~500 colours; the scatter's
    # points (C0 at alpha 0.7) 130-220 pixels; the 4 x 2 grid of the 8 test images ~12,700 colours
    report = run / "report_test"
    _check_plot(report / "threshold_curve.png", (600, 400), 200, (31, 119, 180), 300)
    _check_plot(report / "label_f2.png", (600, 400), 100, (98, 160, 202), 60)
    _check_plot(report / "examples.png", (1440, 880), 2000, (255, 255, 255), 1000)


def _random_model(bench: Path, shuffled: Path, run: Path, extra: list[str]) -> dict:
    """The test metrics of the same model trained on the shuffled labels."""
    assert main(["attributes", "train", "--root", str(shuffled), "--out", str(run), *extra]) == 0
    assert (
        main(
            [
                "attributes",
                "evaluate",
                "--run",
                str(run),
                "--root",
                str(bench),
                "--resamples",
                "50",
                "--no-progress",
            ]
        )
        == 0
    )
    return json.loads((run / "report_test" / "metrics.json").read_text())


def _check_learnt(metrics: dict, random: dict) -> None:
    """Clearly better than the random model on F2 and on the threshold-free AUC-PR. Measured
    (trained / random): head F2 0.59 / 0.38, AUC-PR 0.76 / 0.34; knn 0.67 / 0.40, 0.73 / 0.28;
    bow-svm 0.45 / 0.16, 0.67 / 0.38."""
    assert metrics["f2"]["value"] >= random["f2"]["value"] + 0.15, (metrics["f2"], random["f2"])
    auc, random_auc = metrics["ranking"]["auc_pr_macro"], random["ranking"]["auc_pr_macro"]
    assert auc >= random_auc + 0.2, (auc, random_auc)


def test_head_end_to_end(bench: Path, shuffled: Path, desc: list[str], tmp_path: Path):
    run = tmp_path / "head"
    args = ["--model", "head", "--head-epochs", "30", *desc, *TINY]
    metrics = _train_predict_evaluate(bench, run, args)
    _check_multilabel_report(bench, run, metrics)
    _check_learnt(metrics, _random_model(bench, shuffled, tmp_path / "random", args))
    meta = json.loads((run / "run.json").read_text())
    assert meta["thresholds"]["label"]["fbeta"] >= meta["thresholds"]["global"]["fbeta"] - 1e-9


def test_knn_end_to_end_tunes_tau_on_val(
    bench: Path, shuffled: Path, desc: list[str], tmp_path: Path
):
    run = tmp_path / "knn"
    args = ["--model", "knn", "--k", "3", *desc, *TINY]
    metrics = _train_predict_evaluate(bench, run, args)
    _check_multilabel_report(bench, run, metrics)
    _check_learnt(metrics, _random_model(bench, shuffled, tmp_path / "random", args))
    s = json.loads((run / "run.json").read_text())["settings"]
    assert s["tau"] == max(s["tau_grid"], key=lambda g: (g["f2"], -g["tau"]))["tau"]


def test_bow_svm_end_to_end(bench: Path, shuffled: Path, tmp_path: Path):
    run = tmp_path / "bow"
    args = ["--model", "bow-svm", "--vocabulary", "16", "--cv", "2", *TINY]
    metrics = _train_predict_evaluate(bench, run, args)
    _check_multilabel_report(bench, run, metrics)
    _check_learnt(metrics, _random_model(bench, shuffled, tmp_path / "random", args))


def test_multiclass_end_to_end(bench: Path, desc: list[str], tmp_path: Path):
    run = tmp_path / "mc"
    metrics = _train_predict_evaluate(
        bench,
        run,
        [
            "--model",
            "multiclass",
            "--group",
            "department",
            "--class-weighting",
            "--head-epochs",
            "30",
            *desc,
            *TINY,
        ],
    )
    assert metrics["group"] == "department" and metrics["top5"] >= metrics["top1"]
    assert (run / "report_test" / "confusion.png").is_file()
    data = IMetDataset(bench)
    departments = {str(data.labels[c].id) for c in data.groups["department"]}
    for _, ids in _read_submission(run / "submission.csv"):  # exactly one department per image
        assert len(ids.split()) == 1 and ids in departments


def test_finetune_one_epoch_then_resumes(bench: Path, tmp_path: Path):
    run = tmp_path / "ft"
    args = [
        "--model",
        "finetune",
        "--size",
        "48",
        "--batch-size",
        "8",
        "--loss",
        "focal",
        "--gamma",
        "1.5",
        *TINY,
    ]
    # one epoch at 48 px learns nothing measurable (F2 0.30, the random model's 0.31): the
    # report's consistency and the resume are what is checked here
    _check_multilabel_report(
        bench, run, _train_predict_evaluate(bench, run, [*args, "--epochs", "1"])
    )
    first = (run / "log.jsonl").read_text().splitlines()
    assert len(first) == 1
    assert (
        main(
            ["attributes", "train", "--root", str(bench), "--out", str(run), *args, "--epochs", "2"]
        )
        == 0
    )
    log = (run / "log.jsonl").read_text().splitlines()
    assert log[0] == first[0] and [json.loads(x)["epoch"] for x in log] == [
        1,
        2,
    ]  # continued, not restarted
    assert (
        main(
            [
                "attributes",
                "train",
                "--root",
                str(bench),
                "--out",
                str(run),
                *args,
                "--epochs",
                "2",
                "--lr",
                "0.5",
            ]
        )
        == 2
    )  # other settings: refused, naming the file


def test_bad_input_is_a_message_not_a_traceback(
    bench: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    assert (
        main(["attributes", "evaluate", "--run", str(tmp_path / "nothing"), "--root", str(bench)])
        == 2
    )
    assert "not an attributes run" in capsys.readouterr().err
    assert (
        main(
            [
                "attributes",
                "train",
                "--root",
                str(bench),
                "--out",
                str(tmp_path / "x"),
                "--model",
                "multiclass",
                "--group",
                "nope",
                *TINY,
            ]
        )
        == 2
    )
    assert "no such label group" in capsys.readouterr().err
    assert (
        main(
            [
                "attributes",
                "train",
                "--root",
                str(bench),
                "--out",
                str(tmp_path / "x"),
                "--model",
                "multiclass",
                "--group",
                "motif",
                *TINY,
            ]
        )
        == 2
    )  # several motifs per image: not a multi-class group
    assert "exactly one" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "attributes",
                "train",
                "--root",
                str(bench),
                "--out",
                str(tmp_path / "x"),
                "--model",
                "svm",
            ]
        )
    assert exc.value.code == 2
