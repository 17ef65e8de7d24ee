"""Index bundles: collection folders and metadata, threshold calibration, atomic writes,
add/remove."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from service_helpers import (
    artwork,
    built_bundle,
    distractor,
    jpeg_bytes,
    make_collection,
    photo_of,
    small_bundle_data,
)

from artid.data.entries import Entry
from artid.errors import ArtidError
from artid.retrieval.pipeline import PipelineConfig
from artid.service import bundle as bundles
from artid.service.calibrate import ACCEPT_ALL, Calibration, calibrate_threshold, evaluate_threshold
from artid.service.collection import Artwork, read_collection, read_queries
from artid.service.metadata import read_metadata

#: The pipeline of builds without validation photos: nothing to choose a whitening on.
RAW = PipelineConfig(whiten="none")

# ---------------------------------------------------------------- calibration


def test_threshold_accepts_at_most_the_target_share_of_distractors():
    # 10 distractors, target 20% -> the 2 most confident may be accepted, the 3rd is refused
    dis = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    pos = np.array([0.99, 0.85, 0.75, 0.5])
    conf = np.concatenate([pos, dis])
    correct = np.array([True, True, False, True] + [False] * 10)
    distractor = np.array([False] * 4 + [True] * 10)
    cal = calibrate_threshold(conf, correct, distractor, target_false_accept=0.2)
    assert cal.threshold == pytest.approx(0.825)  # halfway from the 3rd (0.8) to 0.85 above it
    assert cal.false_accept == pytest.approx(0.2)
    # accepted: 0.99 (right), 0.85 (right), 0.95 and 0.9 (distractors); 0.8 itself is not accepted
    assert cal.precision == pytest.approx(2 / 4)
    assert cal.recall == pytest.approx(2 / 4)
    assert cal.accuracy == pytest.approx(3 / 4)
    assert (cal.n_queries, cal.n_distractors, cal.source) == (4, 10, "validation")
    assert evaluate_threshold(cal.threshold, conf, correct, distractor)["accepted"] == 4


def test_threshold_with_ties_never_exceeds_the_target():
    dis = np.array([0.9, 0.9, 0.9, 0.1])
    cal = calibrate_threshold(
        np.concatenate([[0.95], dis]),
        np.array([True] + [False] * 4),
        np.array([False] + [True] * 4),
        target_false_accept=0.5,
    )
    assert cal.false_accept == 0.0  # accepting one 0.9 would accept all three tied ones (75% > 50%)
    assert cal.recall == 1.0


def test_threshold_extremes_and_errors():
    conf = np.array([0.9, 0.2, 0.3])
    correct = np.array([True, False, False])
    distractor = np.array([False, True, True])
    assert calibrate_threshold(conf, correct, distractor, 1.0).threshold == ACCEPT_ALL
    assert calibrate_threshold(conf, correct, distractor, 0.0).threshold == pytest.approx(0.6)
    with pytest.raises(ArtidError, match="no distractor"):
        calibrate_threshold(conf[:1], correct[:1], distractor[:1])
    with pytest.raises(ArtidError, match="differ in length"):
        calibrate_threshold(conf, correct[:2], distractor)
    with pytest.raises(ArtidError, match=r"\[0, 1\]"):
        calibrate_threshold(conf, correct, distractor, 1.5)


def test_calibration_json_round_trip():
    cal = Calibration.given(0.42)
    assert cal.threshold == pytest.approx(
        np.log(0.42 / 0.58)
    ) and cal.threshold_confidence == pytest.approx(0.42)
    assert Calibration.from_json(json.loads(json.dumps(cal.to_json()))) == cal


def test_a_bundle_from_before_the_log_odds_score_keeps_its_threshold():
    old = {
        "threshold": 0.9,
        "target_false_accept": 0.05,
        "false_accept": 0.0,
        "precision": 1.0,
        "recall": 0.5,
        "accuracy": 0.6,
        "n_queries": 4,
        "n_distractors": 20,
        "source": "validation",
    }
    assert Calibration.from_json(old).threshold == pytest.approx(np.log(9.0))
    with pytest.raises(ArtidError, match=r"\[0, 1\)"):
        Calibration.given(1.0)


# ---------------------------------------------------------------- collections


def test_collection_folder_with_csv_metadata(tmp_path):
    root = make_collection(tmp_path / "c", n=3, photos_per_artwork=2)
    (root / "_ignored").mkdir()
    coll = read_collection(root, first_label=10)
    assert [a.key for a in coll.artworks] == ["art-0", "art-1", "art-2"]
    assert [a.label for a in coll.artworks] == [10, 11, 12]
    assert coll.artworks[1].title == "Portrait of a Lady" and coll.artworks[1].date == "1810"
    assert [e.path for e in coll.entries[:2]] == ["art-0/0.jpg", "art-0/1.jpg"]
    assert {e.label for e in coll.entries} == {10, 11, 12}


def test_metadata_json_forms_and_defaults(tmp_path):
    root = tmp_path / "c"
    for key in ("a", "b"):
        (root / key).mkdir(parents=True)
        artwork(0).save(root / key / "x.png")
    (root / "metadata.json").write_text(json.dumps({"a": {"title": "Alpha", "museum_room": "12"}}))
    coll = read_collection(root)
    assert coll.artworks[0].title == "Alpha" and coll.artworks[0].extra == {"museum_room": "12"}
    assert coll.artworks[1].title == "b"  # no metadata: the key
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([{"id": "b", "artist": "Bea"}]))
    assert read_metadata(listed) == {"b": {"artist": "Bea"}}


@pytest.mark.parametrize(
    "text, message",
    [
        ("title,artist\nX,Y\n", "no 'key'"),
        ("key,title\na,A\na,B\n", "described twice"),
    ],
)
def test_bad_metadata_names_the_file(tmp_path, text, message):
    path = tmp_path / "metadata.csv"
    path.write_text(text)
    with pytest.raises(ArtidError, match=message) as err:
        read_metadata(path)
    assert "metadata.csv" in str(err.value)


def test_artwork_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "c" / "empty").mkdir(parents=True)
    with pytest.raises(ArtidError, match="holds no images"):
        read_collection(tmp_path / "c")
    with pytest.raises(ArtidError, match="does not exist"):
        read_collection(tmp_path / "missing")


def test_validation_queries(tmp_path):
    root = tmp_path / "val"
    (root / "a").mkdir(parents=True)
    (root / "_distractors").mkdir()
    photo_of(artwork(1), 1).save(root / "a" / "p.jpg")
    distractor(1).save(root / "_distractors" / "d.jpg")
    q = read_queries(root, {"a": 4})
    assert [(e.path, e.label, e.kind) for e in q.entries] == [
        ("a/p.jpg", 4, "met"),
        ("_distractors/d.jpg", -1, "other"),
    ]
    (root / "zzz").mkdir()
    with pytest.raises(ArtidError, match="names no artwork"):
        read_queries(root, {"a": 4})


# ---------------------------------------------------------------- bundle storage (no model)

_data = small_bundle_data


def test_bundle_round_trip(tmp_path):
    data = _data(tmp_path)
    bundles.write_bundle(tmp_path, data, "test")
    back = bundles.load_bundle(tmp_path)
    np.testing.assert_array_equal(back.pipeline.classifier.db, data.pipeline.classifier.db)
    assert back.artworks == data.artworks and back.thumbnails == data.thumbnails
    assert back.entries == data.entries
    assert (back.pipeline.k, back.pipeline.tau, back.calibration) == (3, 10.0, data.calibration)
    queries = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)
    ans, again = data.pipeline.predict(queries, progress=False), back.pipeline.predict(queries)
    np.testing.assert_array_equal(again.pred, ans.pred)
    np.testing.assert_allclose(again.score, ans.score, rtol=1e-6)
    meta = bundles.read_manifest(tmp_path)
    assert meta["generation"] == "gen-000001" and meta["images"] == 8 and meta["artworks"] == 4
    assert (tmp_path / "gen-000001" / "pipeline" / "pipeline.json").is_file()  # the pipeline, whole


def test_add_and_remove_keep_the_rest(tmp_path):
    data = _data(tmp_path)
    bundles.write_bundle(tmp_path, data, "build")
    removed_thumb = data.thumbnails[1]
    bundles.write_bundle(
        tmp_path, bundles.without_artworks(bundles.load_bundle(tmp_path), ["k1"]), "remove"
    )
    back = bundles.load_bundle(tmp_path)
    assert [a.key for a in back.artworks] == ["k0", "k2", "k3"]
    db = np.asarray(data.pipeline.classifier.db)
    np.testing.assert_array_equal(back.pipeline.classifier.db, np.delete(db, [2, 3], axis=0))
    assert [e.path for e in back.entries] == [e.path for e in data.entries if e.label != 1]
    assert back.pipeline.n_classes == 3
    assert not (
        tmp_path / "thumbnails" / removed_thumb
    ).exists()  # files of removed artworks are collected
    assert sorted(p.name for p in tmp_path.glob("gen-*")) == ["gen-000002"]

    new = Artwork(key="new", label=bundles.next_label(back), title="New")
    assert new.label == 4
    vec = np.eye(1, 8, dtype=np.float32)
    thumb = bundles.store_thumbnail(tmp_path, jpeg_bytes(artwork(9).resize((32, 32))))
    added = bundles.with_artworks(
        back, [new], [vec], [Entry("new/0.jpg", 4, "exhibit")], {4: thumb}
    )
    assert back.pipeline.classifier.size == 6  # the contents read are not changed by the edit
    bundles.write_bundle(tmp_path, added, "add")
    back = bundles.load_bundle(tmp_path)
    assert back.artworks[-1] == new and back.pipeline.classifier.db.shape == (7, 8)
    np.testing.assert_array_equal(back.pipeline.classifier.db[-1], vec[0])
    assert back.pipeline.n_classes == 4
    assert back.pipeline.predict(vec, progress=False).pred.tolist() == [4]  # found in the index
    assert [h["operation"] for h in bundles.read_manifest(tmp_path)["history"]] == [
        "build",
        "remove",
        "add",
    ]
    with pytest.raises(ArtidError, match="already in the bundle"):
        bundles.with_artworks(back, [new], [vec], [Entry("new/0.jpg", 4, "exhibit")], {})
    with pytest.raises(ArtidError, match="no artwork 'nope'"):
        bundles.without_artworks(back, ["nope"])


def test_interrupted_write_leaves_the_old_bundle(tmp_path, monkeypatch):
    data = _data(tmp_path)
    bundles.write_bundle(tmp_path, data, "build")
    before = (tmp_path / "bundle.json").read_bytes()
    smaller = bundles.without_artworks(data, ["k0"])

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bundles, "fsync_dir", crash)  # killed with the new generation half-synced
    with pytest.raises(KeyboardInterrupt):
        bundles.write_bundle(tmp_path, smaller, "remove")
    monkeypatch.undo()
    assert (tmp_path / "bundle.json").read_bytes() == before
    assert len(bundles.load_bundle(tmp_path).artworks) == 4  # the old generation, complete
    assert not list(tmp_path.glob(".gen-*"))  # the half-written generation was removed
    stray = tmp_path / ".gen-000002.4242.tmp"  # one left by a process killed outright...
    (stray / "pipeline").mkdir(parents=True)
    bundles.write_bundle(tmp_path, smaller, "remove")
    assert not stray.exists()  # ...is removed by the next change
    assert sorted(p.name for p in tmp_path.glob("gen-*")) == ["gen-000003"]
    assert len(bundles.load_bundle(tmp_path).artworks) == 3


def test_second_writer_is_refused_while_one_holds_the_lock(tmp_path):
    data = _data(tmp_path)
    with bundles.bundle_lock(tmp_path):
        with pytest.raises(ArtidError, match="being changed by another process"):
            bundles.write_bundle(tmp_path, data, "build")
    bundles.write_bundle(tmp_path, data, "build")


def test_not_a_bundle_and_broken_bundle(tmp_path):
    with pytest.raises(ArtidError, match="not an index bundle"):
        bundles.load_bundle(tmp_path)
    bundles.write_bundle(tmp_path, _data(tmp_path), "build")
    os.remove(tmp_path / "gen-000001" / "pipeline" / "database.npy")
    with pytest.raises(ArtidError, match="database"):
        bundles.load_bundle(tmp_path)


def _old_format_bundle(path: Path) -> Path:
    """A bundle as artid wrote them before the pipeline was saved whole (format artid-bundle/1):
    whitened rows in database.npy/.json, whitening.npz, k and tau in the manifest."""
    gen = path / "gen-000001"
    gen.mkdir(parents=True)
    np.save(gen / "database.npy", np.eye(2, 4, dtype=np.float32))
    (gen / "database.json").write_text(
        json.dumps(
            {
                "entries": [
                    {"path": "a/0.jpg", "label": 0, "kind": "exhibit"},
                    {"path": "b/0.jpg", "label": 1, "kind": "exhibit"},
                ]
            }
        )
    )
    np.savez(gen / "whitening.npz", mean=np.zeros(4), proj=np.eye(4))
    (gen / "artworks.json").write_text(
        json.dumps([{"key": "a", "label": 0, "title": "A"}, {"key": "b", "label": 1, "title": "B"}])
    )
    (path / "bundle.json").write_text(
        json.dumps(
            {
                "format": "artid-bundle/1",
                "generation": "gen-000001",
                "whitened": True,
                "dim": 4,
                "model": {"ref": "efficientnet_lite0", "spec": {}},
                "classifier": {"k": 1, "tau": 30.0},
                "extraction": {"max_size": 500, "scales": [1.0]},
                "calibration": {"threshold": 0.0},
            }
        )
    )
    return path


def test_a_bundle_of_the_old_format_is_refused_with_the_way_to_rebuild_it(tmp_path, capsys):
    from artid.cli import main

    old = _old_format_bundle(tmp_path / "old")
    with pytest.raises(ArtidError, match=r"artid-bundle/1.*rebuild it with `artid index build`"):
        bundles.load_bundle(old)
    photo = tmp_path / "p.jpg"
    artwork(0).save(photo)
    assert main(["recognize", str(photo), "--bundle", str(old)]) == 2
    err = capsys.readouterr().err
    assert "rebuild it with `artid index build`" in err and "Traceback" not in err
    with pytest.raises(ArtidError, match="artid-bundle/1"):  # nor changed: add/remove refuse it
        bundles.write_bundle(old, _data(tmp_path / "other"), "build")


# ---------------------------------------------------------------- building with the model


@pytest.mark.slow
def test_built_bundle_recognises_its_artworks_and_rejects_distractors(tmp_path_factory):
    from artid.service.recognizer import Recognizer

    bundle, _ = built_bundle(tmp_path_factory)
    meta = bundles.read_manifest(bundle)
    cal = meta["calibration"]
    assert cal["source"] == "validation" and cal["n_queries"] == 12 and cal["n_distractors"] == 12
    assert cal["false_accept"] <= 0.05 and cal["recall"] == 1.0 and cal["precision"] == 1.0
    assert meta["artworks"] == 6 and len(list((bundle / "thumbnails").iterdir())) == 6
    rec = Recognizer.from_bundle(bundle)
    photos = [photo_of(artwork(i), 500 + i) for i in range(6)] + [
        distractor(300 + i) for i in range(3)
    ]
    results = rec.recognize(photos)
    assert [r.prediction.artwork.key for r in results[:6]] == [f"art-{i}" for i in range(6)]
    assert [r.accepted for r in results] == [True] * 6 + [False] * 3
    assert all(len(r.matches) == 5 for r in results)


@pytest.mark.slow
def test_add_then_remove_through_the_builder(tmp_path_factory, tmp_path):
    from artid.service.builder import add_to_bundle, remove_from_bundle
    from artid.service.recognizer import Recognizer

    source, _ = built_bundle(tmp_path_factory)
    bundle = tmp_path / "b"
    shutil.copytree(source, bundle)
    more = tmp_path / "more"
    (more / "newcomer").mkdir(parents=True)
    artwork(40).save(more / "newcomer" / "0.jpg")
    added = add_to_bundle(bundle, more, workers=0)
    assert [(a.key, a.label, a.title) for a in added.artworks] == [("newcomer", 6, "newcomer")]
    assert added.failures == []
    rec = Recognizer.from_bundle(bundle)
    assert rec.recognize([photo_of(artwork(40), 1)])[0].prediction.artwork.key == "newcomer"
    remove_from_bundle(bundle, ["newcomer", "art-0"])
    data = bundles.load_bundle(bundle)
    assert [a.key for a in data.artworks] == [f"art-{i}" for i in range(1, 6)]
    assert 0 not in set(data.labels.tolist()) and 6 not in set(data.labels.tolist())


def _met_root(root: Path) -> Path:
    """A 4-class Met-format root: MET/<id>/0.jpg, val queries (2 photos + 4 distractors), ground
    truth."""
    db, val = [], []
    for i, met_id in enumerate((11, 22, 33, 44)):
        (root / "MET" / str(met_id)).mkdir(parents=True)
        artwork(i).save(root / "MET" / str(met_id) / "0.jpg")
        db.append({"id": met_id, "path": f"MET/{met_id}/0.jpg"})
    (root / "test_met").mkdir()
    (root / "test_noart").mkdir()
    for i, met_id in ((0, 11), (2, 33)):
        photo_of(artwork(i), 60 + i).save(root / "test_met" / f"q{i}.jpg")
        val.append({"path": f"test_met/q{i}.jpg", "MET_id": met_id})
    for j in range(4):
        distractor(70 + j).save(root / "test_noart" / f"n{j}.jpg")
        val.append({"path": f"test_noart/n{j}.jpg"})
    (root / "ground_truth").mkdir()
    (root / "ground_truth" / "MET_database.json").write_text(json.dumps(db))
    (root / "ground_truth" / "valset.json").write_text(json.dumps(val))
    return root


@pytest.mark.slow
def test_build_from_a_met_root_and_recognize_command(tmp_path, capsys):
    from artid.commands import index, recognize
    from artid.commands.common import Parser

    def run(module, argv):
        parser = Parser()
        module.add_arguments(parser)
        return module.run(parser.parse_args(argv))

    root = _met_root(tmp_path / "met")
    out = tmp_path / "bundle"
    # single-scale: on 4 exhibits multi-scale descriptors whitened to 2 dimensions (all they
    # support) accept the street photo, whatever (k, tau) is chosen among the tied ones
    argv = [
        "build",
        str(root),
        "--out",
        str(out),
        "--max-size",
        "128",
        "--workers",
        "0",
        "--scales",
        "ss",
    ]
    assert run(index, argv) == 0
    meta = bundles.read_manifest(out)
    assert (
        meta["artworks"] == 4
        and meta["calibration"]["n_queries"] == 2
        and meta["calibration"]["n_distractors"] == 4
    )
    assert not (
        out / ".work"
    ).exists()  # the resumable work files are gone once the bundle is committed
    capsys.readouterr()
    photo = tmp_path / "visit.jpg"
    photo_of(artwork(3), 5).save(photo)
    other = tmp_path / "street.jpg"
    distractor(99).save(other)
    assert run(recognize, [str(photo), str(other), "--bundle", str(out), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (
        lines[0]["accepted"]
        and lines[0]["prediction"]["key"] == "44"
        and lines[0]["recognised"] == "Met object 44"
    )
    assert not lines[1]["accepted"] and lines[1]["recognised"] is None
    assert run(recognize, [str(other), "--bundle", str(out)]) == 0
    said = capsys.readouterr().out
    assert "not recognised" in said
    # the threshold is stated on the confidence's scale, the probability that an answer is right
    assert f"threshold {100 * lines[1]['threshold']:.1f}%" in said
    shown = Calibration.from_json(meta["calibration"]).shown_threshold
    assert shown == pytest.approx(lines[1]["threshold"])
    assert run(index, ["info", str(out)]) == 0
    assert f"as a confidence {100 * shown:.1f}%" in capsys.readouterr().out


@pytest.mark.slow
def test_interrupted_build_resumes_without_describing_finished_images(tmp_path, monkeypatch):
    import artid.extraction.decode as decode
    from artid.service import builder, describing

    coll = make_collection(tmp_path / "c", n=5)
    out = tmp_path / "b"
    monkeypatch.setattr(describing, "CHUNK", 2)
    real_load = decode.load_image
    calls: list[str] = []

    def load_then_stop(path, *args, **kwargs):
        calls.append(Path(path).parent.name)
        if len(calls) == 4:
            raise KeyboardInterrupt  # Ctrl+C during the second shard [art-2, art-3]
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(decode, "load_image", load_then_stop)
    options = builder.BuildOptions(max_size=96, threshold=0.5, workers=0, pipeline=RAW)
    with pytest.raises(KeyboardInterrupt):
        builder.build_bundle(coll, out, options)
    assert not (out / "bundle.json").exists()
    calls.clear()
    monkeypatch.setattr(
        decode,
        "load_image",
        lambda path, *a, **k: (calls.append(Path(path).parent.name), real_load(path, *a, **k))[1],
    )
    builder.build_bundle(coll, out, options)
    assert calls == ["art-2", "art-3", "art-4"]  # shard [art-0, art-1] was kept from the first run
    assert bundles.load_bundle(out).n_classes == 5
    assert bundles.read_manifest(out)["calibration"]["source"] == "given"
    assert not (out / ".work").exists()


@pytest.mark.slow
def test_a_checkpoint_model_is_copied_into_the_bundle(tmp_path):
    from artid.models import build_embedder, save_checkpoint
    from artid.service.builder import BuildOptions, build_bundle
    from artid.service.recognizer import Recognizer

    ckpt = tmp_path / "trained.pt"
    save_checkpoint(ckpt, build_embedder("efficientnet_lite0"), {"note": "test"})
    coll = make_collection(tmp_path / "c", n=3)
    out = tmp_path / "b"
    build_bundle(
        coll,
        out,
        BuildOptions(models=(str(ckpt),), max_size=96, threshold=0.5, workers=0, pipeline=RAW),
    )
    ref = bundles.read_manifest(out)["models"][0]["ref"]
    assert ref.startswith("models/") and (out / ref).is_file()
    ckpt.unlink()  # the bundle does not need the original file any more
    rec = Recognizer.from_bundle(out)
    assert rec.recognize([photo_of(artwork(2), 9)])[0].prediction.artwork.key == "art-2"


def test_a_bad_weights_file_is_refused_before_the_bundle_is_touched(tmp_path, capsys) -> None:
    from artid.cli import main

    make_collection(tmp_path / "collection", n=2)
    (tmp_path / "w.safetensors").write_bytes(b"not weights at all")
    out = tmp_path / "bundle"
    argv = [
        "index",
        "build",
        str(tmp_path / "collection"),
        "--out",
        str(out),
        "--threshold",
        "0.5",
        "--whiten",
        "none",
        "--weights",
        str(tmp_path / "w.safetensors"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "w.safetensors" in err and "Traceback" not in err and len(err.splitlines()) <= 3
    assert not out.exists()  # no folder, no lock file, nothing described
