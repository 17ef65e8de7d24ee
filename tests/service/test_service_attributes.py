"""The service tags every photo with the bundle's attributes run: HTTP API, ``artid recognize``, ``artid index``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from service_helpers import (
    artwork,
    artwork_attributes,
    built_attributes_bundle,
    built_bundle,
    distractor,
    jpeg_bytes,
    photo_of,
    trained_attributes_run,
)

from artid.cli import main
from artid.errors import ArtidError
from artid.service.api import create_app
from artid.service.recognizer import Recognizer

pytestmark = pytest.mark.slow

KEYS = {"name", "group", "score", "predicted"}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    bundle, base = built_attributes_bundle(tmp_path_factory)
    recognizer = Recognizer.from_bundle(bundle)
    with TestClient(create_app(recognizer, bundle)) as client:
        yield client, recognizer, bundle, base


def _post(client, img) -> dict:
    r = client.post("/recognize", files={"image": ("photo.jpg", jpeg_bytes(img), "image/jpeg")})
    assert r.status_code == 200
    return r.json()


def _check_tags(tags: list[dict]) -> list[str]:
    """Well-formed tags, highest score first, at least one predicted; returns the predicted ``group::name``."""
    assert tags and all(set(t) == KEYS for t in tags)
    scores = [t["score"] for t in tags]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    predicted = [f"{t['group']}::{t['name']}" for t in tags if t["predicted"]]
    assert predicted, "the at-least-one rule gives every photo a predicted tag"
    return predicted


def test_a_recognised_photo_gets_its_artworks_attributes(service):
    client, recognizer, _, _ = service
    assert (
        recognizer.attribute_pass is None
    )  # the run was trained at the bundle's size: one pass per photo
    body = _post(client, photo_of(artwork(2), 31))
    assert body["accepted"] and body["prediction"]["key"] == "art-2"
    assert sorted(_check_tags(body["attributes"])) == sorted(artwork_attributes(2))


def test_a_photo_not_in_the_collection_still_gets_attributes(service):
    client, _, _, _ = service
    body = _post(client, distractor(77))
    assert body["accepted"] is False and body["recognised"] is None
    _check_tags(body["attributes"])


def test_a_bundle_without_attributes_answers_without_the_key(tmp_path_factory, capsys):
    bundle, _ = built_bundle(tmp_path_factory)
    recognizer = Recognizer.from_bundle(bundle)
    assert recognizer.tagger is None
    answer = recognizer.recognize([photo_of(artwork(1), 3)])[0]
    assert answer.accepted and answer.attributes is None and "attributes" not in answer.to_json()
    assert main(["index", "info", str(bundle)]) == 0
    assert "attributes   none" in capsys.readouterr().out


def _run_scores(run: Path, base: Path) -> tuple[list[str], np.ndarray, list[Path]]:
    """The run's labels, and its scores of its validation photos (its own extraction), and their paths."""
    from artid.attributes.runs import open_dataset, read_run, split_scores

    meta = read_run(run)
    dataset = open_dataset(base / "imet")
    val = dataset.split("val")
    return meta["labels"], split_scores(run, meta, dataset, val, progress=False), list(val.paths)


def _assert_service_scores(
    recognizer: Recognizer, labels: list[str], expected: np.ndarray, paths: list[Path]
) -> None:
    answers = recognizer.recognize_paths(list(paths))
    for row, answer in zip(expected, answers, strict=True):
        assert answer.attributes is not None and len(answer.attributes) == len(
            labels
        )  # 10 labels: all listed
        got = {t.label: t.score for t in answer.attributes}
        np.testing.assert_allclose([got[name] for name in labels], row, atol=1e-2)


def test_tags_score_as_the_run_scores_its_own_images(service):
    _, recognizer, _, base = service
    _assert_service_scores(recognizer, *_run_scores(trained_attributes_run(base, 128), base))


def test_recognize_command_prints_the_attributes(service, tmp_path, capsys):
    _, _, bundle, _ = service
    photo, other = tmp_path / "visit.jpg", tmp_path / "street.jpg"
    photo_of(artwork(3), 5).save(photo)
    distractor(99).save(other)
    capsys.readouterr()
    assert main(["recognize", str(photo), str(other), "--bundle", str(bundle)]) == 0
    out = capsys.readouterr().out.split("\n")
    lines = [x for x in out if x.strip().startswith("attributes:")]
    assert len(lines) == 2  # the photo that is not recognised gets its line too
    assert "medium: tempera" in lines[0] and "motif: m3" in lines[0]
    assert main(["recognize", str(other), "--bundle", str(bundle), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["accepted"] is False
    _check_tags(answer["attributes"])


def test_index_info_and_changes_keep_the_attributes(service, tmp_path, capsys):
    _, _, bundle, _ = service
    capsys.readouterr()
    assert main(["index", "info", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "attributes   knn run from" in out and "10 labels (medium, motif)" in out
    assert "the recognition pass's" in out
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    assert main(["index", "remove", str(copy), "art-5"]) == 0
    meta = json.loads((copy / "bundle.json").read_text())
    assert (copy / meta["attributes"]["ref"] / "run.json").is_file()  # kept by the new generation
    answer = Recognizer.from_bundle(copy).recognize([photo_of(artwork(1), 4)])[0]
    assert answer.attributes is not None and {
        t.label for t in answer.attributes if t.predicted
    } == set(artwork_attributes(1))


def test_build_with_a_run_at_another_image_size_describes_twice(service, tmp_path, capsys):
    _, _, _, base = service
    run = trained_attributes_run(base, 96)
    expected = _run_scores(run, base)
    out = tmp_path / "bundle"
    assert (
        main(
            [
                "index",
                "build",
                str(base / "collection"),
                "--out",
                str(out),
                "--max-size",
                "128",
                "--threshold",
                "0",
                "--workers",
                "0",
                "--attributes",
                str(run),
                "--whiten",
                "none",
            ]
        )
        == 0
    )
    assert "a second pass of the network per photo" in capsys.readouterr().out
    shutil.rmtree(run)  # the bundle holds its own copy
    recognizer = Recognizer.from_bundle(out)
    assert recognizer.attribute_pass == (96, (1.0,))
    answer = recognizer.recognize([photo_of(artwork(4), 9)])[0]
    assert "embed_attributes" in answer.timing and answer.attributes is not None
    assert {t.label for t in answer.attributes if t.predicted} == set(artwork_attributes(4))
    _assert_service_scores(recognizer, *expected)


def _edited_run(service, tmp_path: Path, **changes) -> Path:
    _, _, _, base = service
    run = tmp_path / "run"
    shutil.copytree(trained_attributes_run(base, 128), run)
    meta = json.loads((run / "run.json").read_text())
    for key, value in changes.items():
        if key == "backbone":
            meta["features"]["model"] = value
        else:
            meta[key] = value
    (run / "run.json").write_text(json.dumps(meta))
    return run


def test_build_refuses_runs_it_cannot_serve(service, tmp_path, capsys):
    from artid.service.builder import BuildOptions, build_bundle

    _, _, _, base = service
    other = _edited_run(service, tmp_path / "a", backbone="resnet50")
    with pytest.raises(
        ArtidError,
        match=r"--attributes .*resnet50.*train the run with --backbone efficientnet_lite0",
    ):
        build_bundle(
            base / "collection", tmp_path / "b1", BuildOptions(attributes=other, threshold=0.0)
        )
    finetuned = _edited_run(service, tmp_path / "b", model="finetune")
    with pytest.raises(ArtidError, match=r"--attributes .*'finetune' run cannot tag photos"):
        build_bundle(
            base / "collection", tmp_path / "b2", BuildOptions(attributes=finetuned, threshold=0.0)
        )
    assert (
        main(
            [
                "index",
                "build",
                str(base / "collection"),
                "--out",
                str(tmp_path / "b3"),
                "--threshold",
                "0",
                "--attributes",
                str(tmp_path / "nowhere"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "--attributes" in err and "nowhere" in err and "not an attributes run" in err
    assert (
        not (tmp_path / "b1" / "bundle.json").exists()
        and not (tmp_path / "b3" / "bundle.json").exists()
    )
