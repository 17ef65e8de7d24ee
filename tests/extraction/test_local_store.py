"""The re-ranking store: the per-image features in three memory-mapped arrays, built in chunks
that a later run resumes, and a damaged store refused naming its file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scenes import _scene

from artid.errors import ArtidError
from artid.extraction import local
from artid.extraction.local import LocalFeatureSet, local_features
from artid.extraction.local_store import build_store, store_bytes


def _root(tmp_path: Path, n: int) -> tuple[Path, list[str]]:
    root = tmp_path / "images"
    root.mkdir()
    for i in range(n):
        cv2.imwrite(str(root / f"{i}.png"), _scene(i, size=120))
    return root, [f"{i}.png" for i in range(n)]


def test_store_equals_the_per_image_features_and_is_memory_mapped(tmp_path: Path) -> None:
    cv2.setNumThreads(1)
    root, rels = _root(tmp_path, 7)
    (root / "3.png").write_bytes(b"not an image")
    built = build_store(rels, root, tmp_path / "store", 500, 400, chunk=3)
    assert built.computed == 3 and list(built.unreadable) == ["3.png"]
    store = built.features
    assert isinstance(store.desc, np.memmap) and isinstance(store.xy, np.memmap)
    assert len(store) == 7 and len(store[3]) == 0
    for i, rel in enumerate(rels):
        if i != 3:
            f = local_features(root / rel, 500, 400)
            np.testing.assert_array_equal(store[i].xy, f.xy)
            np.testing.assert_array_equal(store[i].desc, f.desc)
    assert not (tmp_path / "store" / "chunks").exists()  # merged, then removed
    assert store_bytes(tmp_path / "store") == 8 * 8 + 136 * store.keypoints + 3 * 128
    # a budget: the strongest n of each image
    small = build_store(rels, root, tmp_path / "small", 20, 400).features
    assert all(len(small[i]) <= 20 for i in range(7))


def test_build_resumes_at_the_first_missing_chunk(tmp_path: Path, monkeypatch) -> None:
    cv2.setNumThreads(1)
    root, rels = _root(tmp_path, 6)
    folder = tmp_path / "store"
    calls = []
    real = local.local_features

    def interrupted(path, *args):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(path, *args)

    monkeypatch.setattr(local, "local_features", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_store(rels, root, folder, 500, 400, chunk=2)
    assert sorted(p.name for p in (folder / "chunks").iterdir()) == [
        "chunk_000000.npz",
        "chunk_000001.npz",
    ]
    counted: list[Path] = []
    monkeypatch.setattr(local, "local_features", lambda p, *a: counted.append(p) or real(p, *a))
    again = build_store(rels, root, folder, 500, 400, chunk=2)
    assert again.computed == 1 and [Path(p).name for p in counted] == ["4.png", "5.png"]
    # built: a later run only maps it; a changed image recomputes its chunk only
    counted.clear()
    assert build_store(rels, root, folder, 500, 400, chunk=2).computed == 0 and not counted
    cv2.imwrite(str(root / "2.png"), _scene(40, size=120))
    changed = build_store(rels, root, folder, 500, 400, chunk=2)
    assert changed.computed == 1  # the others are copied from the store
    for i in range(6):
        f = local_features(root / f"{i}.png", 500, 400)
        np.testing.assert_array_equal(changed.features[i].desc, f.desc)
        np.testing.assert_array_equal(changed.features[i].xy, f.xy)


def test_a_damaged_store_is_a_short_error_naming_the_file(tmp_path: Path) -> None:
    cv2.setNumThreads(1)
    root, rels = _root(tmp_path, 3)
    folder = tmp_path / "store"
    build_store(rels, root, folder, 500, 400)
    (folder / "local_desc.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ArtidError, match=r"local_desc\.npy: the local features") as err:
        LocalFeatureSet.load(folder)
    assert len(str(err.value)) < 300
    # a damaged store is rebuilt by the next build, not trusted
    rebuilt = build_store(rels, root, folder, 500, 400)
    assert rebuilt.computed == 1 and len(rebuilt.features[0]) > 0
    np.save(folder / "local_offsets.npy", np.array([0, 5], np.int64))
    with pytest.raises(ArtidError, match="offsets do not index"):
        LocalFeatureSet.load(folder)
