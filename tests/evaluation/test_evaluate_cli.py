"""`artid evaluate` end to end on tiny descriptor files, and its error messages."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from evaluate_helpers import _err, _sets, _unit, main

from artid.descriptors import DescriptorSet, save_descriptors
from artid.evaluation.run import evaluate
from artid.retrieval.pipeline import PipelineConfig

RAW = PipelineConfig(whiten="none")


@pytest.fixture
def desc_dir(tmp_path: Path) -> Path:
    database, val, test = _sets()
    for name, dset in (("database", database), ("val", val), ("test", test)):
        save_descriptors(tmp_path / "desc" / name, dset)
    return tmp_path / "desc"


def test_evaluate_autotune_writes_run_folder(desc_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "evaluate",
                "--descriptors",
                str(desc_dir),
                "--out",
                str(run),
                "--dim",
                "8",
                "--whiten",
                "pcaw",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "GAP  GAP-" in out and "test set" in out and "val set" in out
    results = json.loads((run / "results.json").read_text())
    assert results["pipeline"]["projection"]["dims"] == [8] and results["settings"]["k"] is None
    assert len(results["autotune"]["grid"]) == 9 * 12
    assert (results["k"], results["tau"]) == (
        results["autotune"]["best_k"],
        results["autotune"]["best_tau"],
    )
    assert results["val"]["gap"] == pytest.approx(results["autotune"]["best_gap"])
    assert f"{100 * results['test']['gap']:.1f}" in out
    assert results["test"]["queries"] == {
        "total": 60,
        "M": 20,
        "unreadable": 0,
        "met": 20,
        "other": 20,
        "noart": 20,
    }
    assert sum(b["queries"] for b in results["test"]["accuracy_by_bucket"]) == 20
    assert len((run / "grid.csv").read_text().splitlines()) == 1 + 108
    assert len((run / "predictions_test.csv").read_text().splitlines()) == 1 + 60
    page = (run / "index.html").read_text()
    for png in ("pr_curve.png", "confidences.png", "accuracy_by_bucket.png", "grid.png"):
        assert f'src="{png}"' in page and (run / png).stat().st_size > 1000
    assert (run / "pipeline" / "whitening-0.npz").is_file()


def test_fixed_k_tau_without_whitening(desc_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "evaluate",
                "--database",
                str(desc_dir / "database.npy"),
                "--test",
                str(desc_dir / "test"),
                "--whiten",
                "none",
                "--k",
                "3",
                "--tau",
                "20",
                "--out",
                str(run),
                "--no-report",
            ]
        )
        == 0
    )
    results = json.loads((run / "results.json").read_text())
    assert (results["k"], results["tau"]) == (3, 20.0)
    assert "val" not in results and not (run / "pipeline" / "whitening-0.npz").exists()
    assert not (run / "index.html").exists()


def test_evaluate_function_matches_cli_and_is_repeatable(desc_dir, tmp_path):
    database, val, test = _sets()
    a = evaluate(database, val, test, config=RAW, name="a")
    b = evaluate(database, val, test, config=RAW, name="b")
    assert a["test"] == b["test"] and a["run_dir"] is None
    c = evaluate(database, val, test, config=PipelineConfig(whiten="none", k=a["k"], tau=a["tau"]))
    assert c["test"]["gap"] == a["test"]["gap"]


def test_dim_larger_than_the_database_supports_is_capped(desc_dir, tmp_path, caplog):
    run = tmp_path / "run"
    assert (
        main(
            [
                "evaluate",
                "--descriptors",
                str(desc_dir),
                "--out",
                str(run),
                "--no-report",
                "--whiten",
                "pcaw",
            ]
        )
        == 0
    )
    # 16-D descriptors: at most 16 dimensions, whatever --dim says (default 512)
    assert json.loads((run / "results.json").read_text())["pipeline"]["projection"]["dims"] == [16]
    assert "needs more data" in caplog.text


def test_official_pickle_end_to_end(met_root, tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = {
        key: _unit(rng.normal(size=(n, 4)))
        for key, n in (("train_descriptors", 4), ("val_descriptors", 3), ("test_descriptors", 3))
    }
    (tmp_path / "descriptors.pkl").write_bytes(pickle.dumps(data))
    assert (
        main(
            [
                "evaluate",
                "--official-pickle",
                str(tmp_path / "descriptors.pkl"),
                "--ground-truth",
                str(met_root),
                "--whiten",
                "none",
                "--out",
                str(tmp_path / "run"),
                "--no-report",
            ]
        )
        == 0
    )
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["pipeline"]["n_classes"] == 3 and results["test"]["queries"]["met"] == 2


def test_errors_are_clean_messages(desc_dir, tmp_path, capsys, met_root):
    assert "exactly one of" in _err(capsys, ["evaluate"])
    assert "both --k and --tau" in _err(
        capsys, ["evaluate", "--descriptors", str(desc_dir), "--k", "3"]
    )
    assert "not found" in _err(capsys, ["evaluate", "--descriptors", str(tmp_path / "nope")])
    assert "needs --ground-truth" in _err(capsys, ["evaluate", "--official-pickle", "x.pkl"])
    (met_root / "ground_truth" / "testset.json").unlink()
    (tmp_path / "d.pkl").write_bytes(
        pickle.dumps(
            {
                k: np.eye(4)[:n]
                for k, n in (
                    ("train_descriptors", 4),
                    ("val_descriptors", 3),
                    ("test_descriptors", 3),
                )
            }
        )
    )
    assert "testset.json not found" in _err(
        capsys,
        ["evaluate", "--official-pickle", str(tmp_path / "d.pkl"), "--ground-truth", str(met_root)],
    )


def test_bad_descriptor_files_are_named(desc_dir, tmp_path, capsys):
    manifest = json.loads((desc_dir / "val.json").read_text())
    manifest["entries"] = manifest["entries"][:-1]
    (desc_dir / "val.json").write_text(json.dumps(manifest))
    err = _err(capsys, ["evaluate", "--descriptors", str(desc_dir), "--out", str(tmp_path / "r")])
    assert "val.npy has 45 rows but its manifest val.json lists 44 entries" in err
    matrix = np.load(desc_dir / "test.npy")
    matrix[3] = np.nan
    np.save(desc_dir / "test.npy", matrix)
    err = _err(
        capsys,
        [
            "evaluate",
            "--database",
            str(desc_dir / "database"),
            "--test",
            str(desc_dir / "test"),
            "--k",
            "1",
            "--tau",
            "1",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert "test.npy" in err and "NaN" in err and "row 3" in err
    matrix[3] = 0
    np.save(desc_dir / "test.npy", matrix)
    err = _err(
        capsys,
        [
            "evaluate",
            "--database",
            str(desc_dir / "database"),
            "--test",
            str(desc_dir / "test"),
            "--k",
            "1",
            "--tau",
            "1",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert "zero norm" in err and "row 3" in err


def test_dimension_mismatch_is_refused(tmp_path, capsys):
    database, val, test = _sets()
    save_descriptors(tmp_path / "database", database)
    save_descriptors(tmp_path / "test", DescriptorSet(test.matrix[:, :8] * 1.0, test.entries))
    err = _err(
        capsys,
        [
            "evaluate",
            "--database",
            str(tmp_path / "database"),
            "--test",
            str(tmp_path / "test"),
            "--k",
            "1",
            "--tau",
            "1",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert "dimension 8 but the database has 16" in err


def test_ivf_index_option(desc_dir, tmp_path):
    run = tmp_path / "run"
    assert (
        main(
            [
                "evaluate",
                "--descriptors",
                str(desc_dir),
                "--out",
                str(run),
                "--no-report",
                "--index",
                "ivf",
                "--nprobe",
                "4",
            ]
        )
        == 0
    )
    results = json.loads((run / "results.json").read_text())
    assert results["settings"]["index"] == "ivf" and results["settings"]["nprobe"] == 4


def test_val_distractor_ratio_keeps_met_queries_and_a_share_of_distractors(desc_dir, tmp_path):
    run = tmp_path / "run"
    assert (
        main(
            [
                "evaluate",
                "--descriptors",
                str(desc_dir),
                "--out",
                str(run),
                "--no-report",
                "--val-distractor-ratio",
                "0.2",
                "--distractor-ratio",
                "0.3",
            ]
        )
        == 0
    )
    results = json.loads((run / "results.json").read_text())
    assert results["val"]["queries"]["met"] == 15 and results["val"]["queries"]["total"] == 15 + 6
    assert results["test"]["queries"]["total"] == 60 and list(
        results["test"]["gap_at_distractor_ratio"]
    ) == ["0.3"]
