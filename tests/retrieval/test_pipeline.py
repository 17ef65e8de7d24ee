"""The one kNN pipeline: whitening that fits the data, auto choice on validation, concatenation,
save / load, and the settings it refuses."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from evaluate_helpers import _err, _sets, main

from artid.errors import ArtidError
from artid.evaluation.run import evaluate
from artid.retrieval.choosing import margin_choice
from artid.retrieval.pipeline import KNNPipeline, PipelineConfig
from artid.retrieval.projection import Projection, supported_dim


def test_whitening_dimension_is_capped_at_half_the_database(caplog):
    with caplog.at_level(logging.WARNING):
        assert supported_dim(512, 199, 1280) == 99
    assert "needs more data" in caplog.text and "199 database images" in caplog.text
    assert supported_dim(512, 397_121, 512) == 512
    assert supported_dim(64, 1000, 32) == 32


def test_auto_whitening_keeps_the_chosen_validation_candidate():
    database, val, test = _sets(classes=60, d=32)
    keys = np.array([e.path for e in val.entries])
    pipe = KNNPipeline(PipelineConfig(whiten="auto", dim=512)).fit(
        database.matrix, database.labels, val.matrix, val.labels, keys
    )
    kinds = [(c.whiten, c.projection["dims"]) for c in pipe.candidates]
    n = len(database.entries)
    top = min(32, n // 2)
    assert kinds == [(True, [top]), (True, [top // 2]), (False, [32])]
    # the one artid.retrieval.choosing picks from the candidates' val answers is built
    answers = []
    for c in pipe.candidates:
        cfg = PipelineConfig(whiten="pcaw" if c.whiten else "none", dim=max(1, c.dim))
        one = KNNPipeline(cfg).fit(database.matrix, database.labels, val.matrix, val.labels, keys)
        answers.append((one.val_answer.pred, one.val_answer.score))
    best = pipe.candidates[margin_choice(answers, np.asarray(val.labels), keys)[0]]
    assert pipe.projection.summary()["dims"] == best.projection["dims"]
    assert (pipe.k, pipe.tau) == (best.k, best.tau)
    assert pipe.tuned.best_gap == pytest.approx(best.val_gap)


def test_saved_pipeline_answers_the_same(tmp_path):
    database, val, test = _sets()
    pipe = KNNPipeline(PipelineConfig(whiten="pcaw", dim=8)).fit(
        database.matrix, database.labels, val.matrix, val.labels
    )
    before = pipe.predict(test.matrix)
    loaded = KNNPipeline.load(pipe.save(tmp_path / "pipe"))
    after = loaded.predict(test.matrix)
    np.testing.assert_array_equal(before.pred, after.pred)
    np.testing.assert_array_equal(before.score, after.score)
    assert (loaded.k, loaded.tau) == (pipe.k, pipe.tau)
    assert loaded.answer(test.matrix[:2], n_top=3)[1] == pipe.answer(test.matrix[:2], n_top=3)[1]
    (tmp_path / "pipe" / "pipeline.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(ArtidError, match="not an artid pipeline file"):
        KNNPipeline.load(tmp_path / "pipe")


def test_concatenation_normalises_each_part_first():
    database, val, test = _sets(d=16)
    a, b = database.matrix, 10 * database.matrix[:, ::-1]  # a second "model", wildly larger scale
    proj = Projection.fit([a, b], whiten=False)
    out = proj.transform([a, b])
    expected = np.concatenate([a, b / np.linalg.norm(b, axis=1, keepdims=True)], axis=1) / np.sqrt(
        2
    )
    np.testing.assert_allclose(out, expected, atol=1e-6)
    # the same descriptors twice answer exactly as once
    one = evaluate(database, val, test, config=PipelineConfig(whiten="none"), report=False)
    two = evaluate(
        [database, database],
        [val, val],
        [test, test],
        config=PipelineConfig(whiten="none"),
        report=False,
    )
    assert (two["k"], two["tau"]) == (one["k"], one["tau"])
    assert (
        two["test"]["gap"] == pytest.approx(one["test"]["gap"])
        and two["test"]["acc"] == one["test"]["acc"]
    )
    assert two["pipeline"]["projection"]["dims"] == [16, 16]


def test_concatenation_from_the_command_line(tmp_path, capsys):
    from artid.descriptors import save_descriptors

    database, val, test = _sets(d=16)
    for folder, scale in (("m1", 1.0), ("m2", 2.0)):
        for name, dset in (("database", database), ("val", val), ("test", test)):
            dset2 = type(dset)(
                dset.matrix[:, ::-1].copy() * scale if folder == "m2" else dset.matrix, dset.entries
            )
            save_descriptors(tmp_path / folder / name, dset2)
    run = tmp_path / "run"
    assert (
        main(
            [
                "evaluate",
                "--descriptors",
                str(tmp_path / "m1"),
                "--descriptors",
                str(tmp_path / "m2"),
                "--whiten",
                "pcaw",
                "--dim",
                "8",
                "--out",
                str(run),
                "--no-report",
            ]
        )
        == 0
    )
    results = json.loads((run / "results.json").read_text())
    assert results["pipeline"]["projection"]["dims"] == [8, 8]
    assert "PCAw 8+8" in capsys.readouterr().out


def test_nonsense_settings_are_refused(tmp_path, capsys):
    database, val, test = _sets()
    for bad in (
        {"tau": 0.0, "k": 3},
        {"tau": -1.0, "k": 3},
        {"k": 0, "tau": 1.0},
        {"whiten": "zca"},
        {"shrinkage": 2.0},
    ):
        with pytest.raises(ArtidError):
            PipelineConfig(**bad).check()
    (tmp_path / "d").mkdir()
    with pytest.raises(SystemExit):  # the parser refuses it, naming the option
        main(["evaluate", "--database", "x", "--test", "y", "--k", "3", "--tau", "0"])
    assert "--tau: must be a finite number > 0" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("x")
    from artid.descriptors import save_descriptors

    for name, dset in (("database", database), ("test", test)):
        save_descriptors(tmp_path / "d" / name, dset)
    err = _err(
        capsys,
        [
            "evaluate",
            "--database",
            str(tmp_path / "d" / "database"),
            "--test",
            str(tmp_path / "d" / "test"),
            "--k",
            "3",
            "--tau",
            "1",
            "--out",
            str(tmp_path / "a_file"),
        ],
    )
    assert "is an existing file" in err


def test_query_expansion_options_from_the_command_line(tmp_path, capsys):
    from artid.descriptors import save_descriptors

    database, val, test = _sets(d=16)
    for name, dset in (("database", database), ("val", val), ("test", test)):
        save_descriptors(tmp_path / "d" / name, dset)
    run = tmp_path / "run"
    assert (
        main(
            [
                "evaluate",
                "--descriptors",
                str(tmp_path / "d"),
                "--whiten",
                "none",
                "--qe",
                "2",
                "--dba",
                "auto",
                "--out",
                str(run),
                "--no-report",
            ]
        )
        == 0
    )
    config = json.loads((run / "results.json").read_text())["pipeline"]["config"]
    assert config["qe_n"] == 2 and config["dba_n"] is None
    with pytest.raises(SystemExit):
        main(["evaluate", "--descriptors", str(tmp_path / "d"), "--qe", "many"])
