"""``artid extract``: Met roots, folders and lists; failures recorded; resume; no mixed runs."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artid.commands import extract as extract_cmd
from artid.commands.pipeline_options import parse_scales
from artid.data.met import load_split
from artid.descriptors import load_descriptors
from artid.errors import ArtidError
from artid.extraction import (
    ExtractionSettings,
    embedding,
    extract_list,
    folder_source,
    list_source,
    met_sources,
)
from artid.extraction.batching import SizeBuckets
from artid.models import build_embedder

SIZES = [(48, 64), (64, 48), (48, 64), (40, 40)]


def _save(path: Path, h: int, w: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, quality=90)


def make_met_root(root: Path) -> Path:
    """A tiny Met-format root: 3 classes (6 images); val: a Met query, a broken and a cut file."""
    database, val = [], []
    for i in range(6):
        rel = f"MET/{i // 2}/{i % 2}.jpg"
        _save(root / rel, *SIZES[i % len(SIZES)], seed=i)
        database.append({"id": i // 2, "path": rel})
    _save(root / "test_met/q.jpg", 64, 48, seed=10)
    (root / "test_noart").mkdir(parents=True)
    (root / "test_noart/broken.jpg").write_bytes(b"no image here")
    _save(root / "test_other/cut.jpg", 48, 64, seed=11)
    data = (root / "test_other/cut.jpg").read_bytes()
    (root / "test_other/cut.jpg").write_bytes(data[: len(data) // 2])
    val = [
        {"path": "test_met/q.jpg", "MET_id": 1},
        {"path": "test_noart/broken.jpg"},
        {"path": "test_other/cut.jpg", "category": "x"},
    ]
    gt = root / "ground_truth"
    gt.mkdir()
    (gt / "MET_database.json").write_text(json.dumps(database))
    (gt / "mini_MET_database.json").write_text(json.dumps(database[:2]))
    (gt / "valset.json").write_text(json.dumps(val))
    (gt / "testset.json").write_text(json.dumps(val[:1]))
    return root


@pytest.fixture(scope="module")
def emb():
    return build_embedder("efficientnet_lite0")


@pytest.fixture
def met(tmp_path: Path) -> Path:
    return make_met_root(tmp_path / "met")


SETTINGS = ExtractionSettings(scales=(1.0, 0.5), batch_size=2, workers=0, shard_size=2)


def test_met_root_to_descriptor_files(met: Path, emb, tmp_path: Path):
    from artid.extraction import extract_lists

    out = tmp_path / "desc"
    extract_lists(met_sources(met, ["database", "val"]), emb, out, SETTINGS, progress=False)
    db = load_descriptors(out / "database")
    split = load_split(met, "database")
    assert db.entries == split.entries and db.matrix.shape == (6, 1280)
    np.testing.assert_allclose(np.linalg.norm(db.matrix, axis=1), 1.0, atol=1e-5)
    assert db.model == emb.spec
    assert db.settings == {"scales": [1.0, 0.5], "max_size": 500, "dtype": "float32"}
    val = load_descriptors(out / "val")
    assert [e.path for e in val.entries] == ["test_met/q.jpg"]
    assert [f["path"] for f in val.failures] == ["test_noart/broken.jpg", "test_other/cut.jpg"]
    assert "truncated" in val.failures[1]["error"] and "cut.jpg" in val.failures[1]["error"]
    assert not list(out.glob("*.parts"))


def test_rows_equal_single_image_extraction(met: Path, emb, tmp_path: Path):
    """Shards, size buckets and worker processes do not change any row (vs one image at a time)."""
    images = met_sources(met, ["database"])[0]
    settings = ExtractionSettings(scales=(1.0, 0.5), batch_size=4, workers=1, shard_size=4)
    batched = extract_list(images, emb, tmp_path / "a", settings, progress=False)
    one = ExtractionSettings(
        scales=(1.0, 0.5),
        batch_size=1,
        workers=0,
        shard_size=100,
        fold_bn=False,
        channels_last=False,
    )
    single = extract_list(images, emb, tmp_path / "b", one, progress=False)
    np.testing.assert_allclose(batched.matrix, single.matrix, atol=1e-5)


def test_interrupted_run_resumes_to_identical_bytes(met: Path, emb, tmp_path: Path, monkeypatch):
    images = met_sources(met, ["database"])[0]
    extract_list(images, emb, tmp_path / "full" / "database", SETTINGS, progress=False)

    calls = {"n": 0}
    original = embedding.embed_batch

    def crash_on_third_batch(model, images, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(model, images, *args)

    monkeypatch.setattr(embedding, "embed_batch", crash_on_third_batch)
    out = tmp_path / "resumed" / "database"
    with pytest.raises(KeyboardInterrupt):
        extract_list(images, emb, out, SETTINGS, progress=False)
    parts = out.with_name("database.parts")
    assert sorted(p.name for p in parts.glob("shard_*.json")) == ["shard_000000.json"]
    assert not out.with_name("database.npy").exists()
    done = []
    monkeypatch.setattr(
        embedding,
        "embed_batch",
        lambda model, images, *args: done.append(len(images)) or original(model, images, *args),
    )
    extract_list(images, emb, out, SETTINGS, progress=False)
    assert sum(done) == 4  # only the two unfinished shards were computed
    for suffix in (".npy", ".json"):
        full = (tmp_path / "full" / f"database{suffix}").read_bytes()
        assert out.with_name(f"database{suffix}").read_bytes() == full
    assert not parts.exists()


def test_resume_refuses_other_settings_and_models(met: Path, emb, tmp_path: Path, monkeypatch):
    images = met_sources(met, ["database"])[0]
    out = tmp_path / "database"
    monkeypatch.setattr(
        embedding, "embed_batch", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        extract_list(images, emb, out, SETTINGS, progress=False)
    other = ExtractionSettings(scales=(1.0,), batch_size=2, workers=0, shard_size=2)
    with pytest.raises(ArtidError, match="scales"):
        extract_list(images, emb, out, other, progress=False)
    with pytest.raises(ArtidError, match="arch"):
        extract_list(images, build_embedder("random:tv:resnet18"), out, SETTINGS, progress=False)


def test_finished_output_made_differently_is_refused(met: Path, emb, tmp_path: Path):
    images = met_sources(met, ["val"])[0]
    first = extract_list(images, emb, tmp_path / "val", SETTINGS, progress=False)
    again = extract_list(
        images, emb, tmp_path / "val", SETTINGS, progress=False
    )  # no work: same result
    np.testing.assert_array_equal(first.matrix, again.matrix)
    with pytest.raises(ArtidError, match="already exists"):
        extract_list(
            images,
            emb,
            tmp_path / "val",
            ExtractionSettings(max_size=32, workers=0),
            progress=False,
        )


def test_folder_and_list_sources(tmp_path: Path):
    _save(tmp_path / "imgs/b.jpg", 40, 40, 1)
    _save(tmp_path / "imgs/sub/a.png", 40, 40, 2)
    (tmp_path / "imgs/notes.txt").write_text("x")
    src = folder_source(tmp_path / "imgs")
    assert [e.path for e in src.entries] == ["b.jpg", "sub/a.png"] and src.name == "imgs"
    (tmp_path / "l.txt").write_text("# images\nimgs/b.jpg 7\n\nimgs/sub/a.png\n")
    lst = list_source(tmp_path / "l.txt")
    assert [(e.path, e.label, e.kind) for e in lst.entries] == [
        ("imgs/b.jpg", 7, "exhibit"),
        ("imgs/sub/a.png", -1, "other"),
    ]
    assert lst.path_of(lst.entries[0]).is_file()
    with pytest.raises(ArtidError, match="no image files"):
        folder_source(_empty(tmp_path))


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def test_size_buckets_group_by_exact_size():
    b = SizeBuckets(batch_size=2, max_pending=3)
    a, c = np.zeros((4, 5, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)
    assert b.add(0, a) == [] and b.add(1, c) == []
    assert [[i for i, _ in batch] for batch in b.add(2, a)] == [[0, 2]]  # a full batch of one size
    assert (
        b.add(3, np.zeros((6, 6, 3), np.uint8)) == []
        and b.add(4, np.zeros((7, 7, 3), np.uint8)) == []
    )
    # a fourth waiting image exceeds max_pending: the oldest of the largest groups leaves early
    assert [[i for i, _ in batch] for batch in b.add(5, np.zeros((8, 8, 3), np.uint8))] == [[1]]
    assert [[i for i, _ in batch] for batch in b.flush()] == [[3], [4], [5]]
    assert len(b) == 0


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    extract_cmd.add_arguments(parser)
    argv = []
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return parser.parse_args(argv)


def test_command_writes_requested_splits(met: Path, tmp_path: Path, capsys):
    out = tmp_path / "cmd"
    args = _args(root=met, out=out, splits="mini,val", scales="ss", workers=0, device="cpu")
    assert extract_cmd.run(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mini.json", "mini.npy", "val.json", "val.npy"]
    printed = capsys.readouterr().out
    assert "failed: test_noart/broken.jpg" in printed


def test_command_rejects_bad_options(met: Path, tmp_path: Path):
    with pytest.raises(ArtidError, match="unknown split"):
        extract_cmd.run(_args(root=met, out=tmp_path, splits="train", device="cpu"))
    with pytest.raises(ArtidError, match="float16 needs a GPU"):
        extract_cmd.run(_args(root=met, out=tmp_path, splits="mini", device="cpu", dtype="float16"))
    with pytest.raises(ArtidError, match="--scales"):
        parse_scales("1,big")


@pytest.mark.parametrize(
    "option, value",
    [
        ("max_size", -1),
        ("batch_size", 0),
        ("batch_size", -3),
        ("workers", -1),
        ("shard_size", 0),
        ("threads", -2),
        ("threads", 0),
    ],
)
def test_command_refuses_nonsensical_options(tmp_path: Path, option: str, value: object, capsys):
    """Refused by the parser, naming the option (``--max-size -1`` used to shrink images to 1x1)."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        _args(**{"root": tmp_path, "out": out, "device": "cpu", option: value})
    assert exc.value.code == 2
    assert f"argument --{option.replace('_', '-')}: must be" in capsys.readouterr().err
    assert not out.exists()


def test_command_refuses_empty_scales(met: Path, tmp_path: Path):
    out = tmp_path / "out"
    args = _args(root=met, out=out, splits="mini", scales=",", device="cpu")
    with pytest.raises(ArtidError, match="--scales"):
        extract_cmd.run(args)
    assert not out.exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("max_size", -1),
        ("batch_size", 0),
        ("workers", -1),
        ("shard_size", 0),
        ("scales", ()),
        ("scales", (1.0, -0.5)),
    ],
)
def test_settings_refuse_nonsense(field: str, value: object):
    with pytest.raises(ArtidError, match=field):
        ExtractionSettings(**{field: value})
