"""The local-feature cache cannot lie.

An entry is used only when it is this very image's (content hash) with these SIFT settings and
well formed; anything else is computed again and rewritten. Images that cannot be read are not
cached, are counted, and a run warns (or refuses past a share) before its slow part. Issue 19
items 1-4; the stale case reproduces the issue's measurement (a cache of other images under the
same relative paths gave test GAP 20.8 where a fresh one gives 28.5).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from scenes import _scene
from test_rerank import _benchmark, _cli

from artid.data.entries import Entry
from artid.descriptors import DescriptorSet, save_descriptors
from artid.errors import ArtidError
from artid.evaluation.queries import combine
from artid.evaluation.reranking import RerankSetup, database_features, query_features
from artid.evaluation.run import evaluate
from artid.extraction.local import FeatureCache, local_features
from artid.extraction.local_cache import read_entry
from artid.retrieval.pipeline import PipelineConfig
from artid.retrieval.rerank import RerankConfig


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _rewrite(path: Path, **change) -> None:
    """Write the entry again with some arrays changed (None: left out)."""
    arrays = {**_arrays(path), **change}
    np.savez_compressed(path, **{k: v for k, v in arrays.items() if v is not None})


#: Ways an entry goes bad; each must be recomputed, never used and never a traceback.
CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "random bytes": lambda p: p.write_bytes(os.urandom(700)),
    "empty file": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "missing desc": lambda p: _rewrite(p, desc=None),
    "missing key": lambda p: _rewrite(p, source=None),
    "short xy": lambda p: _rewrite(p, xy=_arrays(p)["xy"][:-3]),
    "64-column desc": lambda p: _rewrite(p, desc=_arrays(p)["desc"][:, :64]),
    "float64 xy": lambda p: _rewrite(p, xy=_arrays(p)["xy"].astype(np.float64)),
    "int desc": lambda p: _rewrite(p, desc=_arrays(p)["desc"].astype(np.int32)),
    "NaN xy": lambda p: _rewrite(p, xy=np.full_like(_arrays(p)["xy"], np.nan)),
    "1-D xy": lambda p: _rewrite(p, xy=_arrays(p)["xy"].ravel()),
    "other settings": lambda p: _rewrite(p, settings=np.array([100, 400])),
    "old format (path key only)": lambda p: _rewrite(p, source=None, settings=None),
    "pickled arrays": lambda p: np.savez(p, xy=np.array([None]), desc=np.array([None])),
    "a folder": lambda p: (p.unlink(), p.mkdir()),
}


@pytest.fixture
def image(tmp_path: Path) -> Path:
    cv2.setNumThreads(1)
    path = tmp_path / "root" / "img.png"
    path.parent.mkdir()
    cv2.imwrite(str(path), _scene(3))
    return path


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_bad_entry_is_recomputed_and_rewritten(image: Path, tmp_path: Path, corruption) -> None:
    fresh = local_features(image)
    cache = FeatureCache(tmp_path / "cache", image.parent)
    cache.get("img.png")
    entry = cache._file("img.png")
    CORRUPTIONS[corruption](entry)
    again = FeatureCache(tmp_path / "cache", image.parent)
    if corruption == "a folder":  # an entry that cannot be replaced is a clear error
        with pytest.raises(ArtidError, match="cannot write"):
            again.get("img.png")
        return
    got = again.get("img.png")
    np.testing.assert_array_equal(got.xy, fresh.xy)
    np.testing.assert_array_equal(got.desc, fresh.desc)
    assert again.recomputed == 1 and not again.unreadable
    assert read_entry(entry, _arrays(entry)["source"].item(), (500, 400), 128) is not None
    assert not list(entry.parent.glob(".*.tmp*"))  # written atomically, nothing left beside it


def test_other_images_under_the_same_names_are_not_read_from_the_cache(
    image: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    cv2.imwrite(str(other / "img.png"), _scene(4))
    stale = FeatureCache(tmp_path / "cache", other).get("img.png")
    cache = FeatureCache(tmp_path / "cache", image.parent)
    got = cache.get("img.png")
    np.testing.assert_array_equal(got.desc, local_features(image).desc)
    assert got.desc.shape != stale.desc.shape or np.any(got.desc != stale.desc)
    assert cache.recomputed == 1


@pytest.mark.parametrize("damage", ["missing", "truncated", "text"])
def test_an_unreadable_image_is_counted_and_not_cached(image: Path, tmp_path: Path, damage) -> None:
    good = image.read_bytes()
    if damage == "missing":
        image.unlink()
    elif damage == "truncated":
        image.write_bytes(good[: len(good) // 3])
    else:
        image.write_text("not an image")
    cache = FeatureCache(tmp_path / "cache", image.parent)
    assert len(cache.get("img.png")) == 0
    assert "img.png" in cache.unreadable and str(image) in cache.unreadable["img.png"]
    assert not list((tmp_path / "cache").glob("*.npz"))  # not cached as "no keypoints"
    assert cache.ensure(["img.png"]) == ["img.png"]
    image.write_bytes(good)  # the image is back: its features are computed
    assert len(cache.get("img.png")) > 20 and not cache.unreadable
    assert len(FeatureCache(tmp_path / "cache", image.parent).get("img.png")) > 20


def test_cache_folder_errors_are_clear(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtidError, match="is a file, not a folder"):
        FeatureCache(tmp_path / "file", tmp_path)
    with pytest.raises(ArtidError, match="cannot create the folder"):
        FeatureCache(tmp_path / "file" / "cache", tmp_path)


def _root_of(tmp_path: Path, n: int) -> Path:
    root = tmp_path / "root"
    (root / "db").mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(root / "db" / f"{i}.png"), _scene(i, size=120))
    return root


def _queries(n: int):
    rows = np.eye(n, dtype=np.float32)
    return combine(
        [DescriptorSet(rows, [Entry(f"db/{i}.png", i, "exhibit") for i in range(n)])], "database"
    )


def test_every_path_is_checked_and_missing_images_warned_or_refused(tmp_path: Path, caplog) -> None:
    cv2.setNumThreads(1)
    root = _root_of(tmp_path, 60)
    setup = RerankSetup(RerankConfig(top=3), root, tmp_path / "cache")
    db = _queries(60)
    # 2 of 60 unreadable (one missing, one truncated): warned with the count, not cached
    (root / "db" / "25.png").unlink()
    (root / "db" / "26.png").write_bytes(b"\x89PNG\r\n")
    with caplog.at_level(logging.WARNING):
        feats, record = database_features(setup, db)
    assert "2 of 60 database images" in caplog.text and "db/25.png" in caplog.text
    assert record["database_without_features"] == 2
    assert len(feats[25]) == len(feats[26]) == 0 and len(feats[24]) > 0
    assert not list((tmp_path / "cache").glob("*.npz"))  # the database: one store, no files
    assert len(list((tmp_path / "cache").glob("store-*/local_desc.npy"))) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        lookup = query_features(setup, db)
    assert "2 of 60 query images" in caplog.text
    assert len(lookup(25)) == 0 and len(lookup(3)) > 0

    # past the first 50: 10 of 60 missing (more than 10%) is a wrong root, refused at once
    for i in range(50, 60):
        (root / "db" / f"{i}.png").unlink()
    with pytest.raises(ArtidError, match=r"db/25.png is not there \(11 of 60 are missing\)"):
        database_features(setup, db)
    with pytest.raises(ArtidError, match="query images"):
        query_features(RerankSetup(RerankConfig(top=3), root, tmp_path / "cache"), db)
    # more than 10% present but not images: refused after reading them, naming the count
    for i in range(50, 60):
        (root / "db" / f"{i}.png").write_text("not an image")
    with pytest.raises(ArtidError, match="12 of 60 database images .* cannot be read"):
        database_features(setup, db)


def _permuted_copy(root: Path, out: Path) -> None:
    """Other images under the same relative paths (each file gets the next one's content)."""
    files = sorted(p.relative_to(root) for p in root.rglob("*.png"))
    for i, rel in enumerate(files):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / files[(i + 1) % len(files)], out / rel)


def test_a_stale_cache_gives_the_fresh_answer(tmp_path: Path) -> None:
    root = tmp_path / "bench"
    db, val, test = _benchmark(root)
    _permuted_copy(root, tmp_path / "other")
    config = PipelineConfig(whiten="none")

    def run(images: Path, cache: str) -> dict:
        setup = RerankSetup(RerankConfig(top=3), images, tmp_path / cache)
        return evaluate(db, val, test, None, config=config, rerank=setup)

    run(tmp_path / "other", "stale")  # a cache made from other images under the same paths
    stale, fresh = run(root, "stale"), run(root, "fresh")
    assert fresh["test"]["gap"] > 0.9
    assert stale["test"]["gap"] == fresh["test"]["gap"]
    # the database store of other images: its one chunk computed again
    assert stale["rerank"]["store_chunks_computed"] == 1
    assert run(root, "stale")["rerank"]["store_chunks_computed"] == 0  # then reused


def test_cli_names_a_cache_that_is_a_file(tmp_path: Path, capsys) -> None:
    root = tmp_path / "bench"
    db, val, test = _benchmark(root)
    for name, dset in (("database", db), ("val", val), ("test", test)):
        save_descriptors(tmp_path / "d" / name, dset)
    (tmp_path / "file").write_text("x")
    base = ["--descriptors", str(tmp_path / "d"), "--whiten", "none", "--no-report"]
    argv = [*base, "--rerank", "3", "--images", str(root), "--local-features"]
    assert _cli([*argv, str(tmp_path / "file")]) == 2
    assert "file: is a file, not a folder" in capsys.readouterr().err
    assert _cli([*argv, str(tmp_path / "file" / "sub")]) == 2
    assert "cannot create the folder" in capsys.readouterr().err
