"""The compressed index (IVF-PQ fast-scan + exact re-scoring) and float16 storage in the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from artid.errors import ArtidError
from artid.retrieval.compressed import PQSearcher, encode_shard, merge_shards
from artid.retrieval.pipeline import KNNPipeline, PipelineConfig
from artid.retrieval.search import exact_search


def _clustered(seed: int, n: int, d: int = 32, centres: int = 40) -> np.ndarray:
    """Unit vectors around a few centres (what descriptors of a collection look like)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d))
    x = c[rng.integers(0, centres, n)] + 0.6 * rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def _data(seed: int = 0, n: int = 3000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    db = _clustered(seed, n)
    labels = np.arange(n) // 3
    rng = np.random.default_rng(seed + 1)
    queries = db[::11] + 0.05 * rng.normal(size=db[::11].shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return db, labels, queries


def test_recall_against_exact_search_on_clustered_data() -> None:
    db, _, queries = _data()
    searcher = PQSearcher.build(db, nprobe=8, progress=False)
    sims, idx = searcher.search(queries, 10, progress=False)
    exact_sims, exact_idx = exact_search(queries, db, 10, use_gpu=False, progress=False)
    recall1 = (idx[:, 0] == exact_idx[:, 0]).mean()
    recall10 = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(idx, exact_idx)])
    assert recall1 >= 0.95 and recall10 >= 0.9, (recall1, recall10)
    # re-scored: the similarities are exact inner products of the rows found, sorted
    np.testing.assert_allclose(sims, np.einsum("qkd,qd->qk", db[idx], queries), atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-6).all()


def test_an_ivfpq_pipeline_saves_loads_and_answers_the_same(tmp_path: Path) -> None:
    db, labels, queries = _data(2)
    config = PipelineConfig(whiten="none", k=3, tau=20.0, index="ivfpq", nprobe=16)
    pipe = KNNPipeline(config).fit(db, labels)
    ans = pipe.predict(queries, progress=False)
    for mmap in (False, True):
        back = KNNPipeline.load(pipe.save(tmp_path / "pq"), mmap=mmap)
        assert back.classifier is not None and isinstance(back.classifier.searcher, PQSearcher)
        again = back.predict(queries, progress=False)
        np.testing.assert_array_equal(again.idx, ans.idx)
        np.testing.assert_array_equal(again.score, ans.score)
    exact = KNNPipeline(PipelineConfig(whiten="none", k=3, tau=20.0)).fit(db, labels)
    assert (ans.pred == exact.predict(queries, progress=False).pred).mean() >= 0.95
    (tmp_path / "pq" / "index.faiss").write_bytes(b"not an index")
    with pytest.raises(ArtidError, match="index.faiss"):
        KNNPipeline.load(tmp_path / "pq")


def test_ivfpq_add_and_remove_without_training_again() -> None:
    db, labels, _ = _data(3, 2400)
    config = PipelineConfig(whiten="none", k=1, tau=20.0, index="ivfpq", nprobe=64)
    pipe = KNNPipeline(config).fit(db[:1800], labels[:1800])
    assert pipe.classifier is not None
    trained = pipe.classifier.searcher
    assert isinstance(trained, PQSearcher)
    pipe.add(db[1800:], labels[1800:])
    searcher = pipe.classifier.searcher
    assert isinstance(searcher, PQSearcher) and searcher.index.ntotal == 2400
    # the same quantizers (no new k-means): the coarse centroids are those trained on 1,800 rows
    np.testing.assert_array_equal(
        searcher.index.quantizer.reconstruct_n(0, 4), trained.index.quantizer.reconstruct_n(0, 4)
    )
    new = pipe.neighbours(db[1800::50], k=1, progress=False)[1][:, 0]
    np.testing.assert_array_equal(new, np.arange(1800, 2400, 50))  # a new row finds itself
    keep = np.flatnonzero(labels % 4 != 0)
    pipe.keep(keep)
    searcher = pipe.classifier.searcher
    assert isinstance(searcher, PQSearcher) and searcher.index.ntotal == len(keep)
    sims, got = pipe.neighbours(db[keep[::10]], k=1, progress=False)
    assert (got[:, 0] == np.arange(len(keep))[::10]).mean() >= 0.97  # a kept row finds itself
    # ids renumbered in step with the rows: each similarity is that of the row returned
    np.testing.assert_allclose(sims[:, 0], np.einsum("qd,qd->q", db[keep][got[:, 0]],
                                                      db[keep[::10]]), atol=1e-5)
    assert np.isin(pipe.predict(db[::13], progress=False).pred, labels[keep]).all()


def test_shards_encoded_apart_and_merged_answer_as_one_index() -> None:
    db, _, queries = _data(6, 2000)
    whole = PQSearcher.build(db, nprobe=8, progress=False)
    trained = whole.trained()
    shards = [encode_shard(trained, db[a:b], a, progress=False) for a, b in ((0, 700), (700, 2000))]
    merged = merge_shards(shards, db)
    merged.index.nprobe = 8
    for got, want in zip(merged.search(queries, 10, progress=False), whole.search(queries, 10)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ArtidError, match="2000"):
        merge_shards(shards[:1], db)


def test_shards_merge_where_a_list_holds_whole_blocks() -> None:
    """faiss' own merge_from writes past a fast-scan list whose size is a multiple of its block's
    bytes (64 here: 32 entries x 2 bytes; 4,096 for 512-d rows, met by 1M-row shards) and the
    process dies of heap corruption; the shards' lists are merged whole and right here."""
    db = _clustered(3, 300, d=8)
    whole = PQSearcher.build(db, nlist=1, nprobe=1, m=4, progress=False)
    trained = whole.trained()
    cuts = (0, 64, 96, 160, 170, 300)  # lists of 64 (whole bytes), 96 and 160 (whole blocks), 170
    shards = [encode_shard(trained, db[a:b], a, progress=False) for a, b in zip(cuts, cuts[1:])]
    merged = merge_shards(shards, db)
    assert [s.ntotal for s in shards] == [64, 32, 64, 10, 130]  # the shards are left as they were
    for got, want in zip(merged.search(db, 10, progress=False), whole.search(db, 10)):
        np.testing.assert_array_equal(got, want)


def test_float16_storage_halves_the_database_and_keeps_the_answers(tmp_path: Path) -> None:
    db, labels, queries = _data(4)
    half = KNNPipeline(PipelineConfig(whiten="none", k=3, tau=20.0, storage="float16"))
    half.fit(db, labels)
    full = KNNPipeline(PipelineConfig(whiten="none", k=3, tau=20.0)).fit(db, labels)
    a, b = half.predict(queries, progress=False), full.predict(queries, progress=False)
    assert (a.pred == b.pred).mean() >= 0.99
    np.testing.assert_allclose(a.sims, b.sims, atol=2e-3)
    folder = half.save(tmp_path / "half")
    full.save(tmp_path / "full")
    stored = np.load(folder / "database.npy")
    assert stored.dtype == np.float16
    size = (folder / "database.npy").stat().st_size / (tmp_path / "full/database.npy").stat().st_size
    assert size < 0.51
    back = KNNPipeline.load(folder, mmap=True)
    np.testing.assert_array_equal(back.predict(queries, progress=False).idx, a.idx)
    back.add(db[:5], labels[:5])
    assert back.classifier is not None and back.classifier.db.dtype == np.float16


def test_float16_exact_search_is_exact_on_the_stored_values() -> None:
    db, _, queries = _data(5, 700)
    stored = db.astype(np.float16)
    from artid.retrieval import search

    old = search.DB_BLOCK
    search.DB_BLOCK = 64  # several blocks, and a last one shorter than k
    try:
        sims, idx = exact_search(queries, stored, 70, use_gpu=False, progress=False)
    finally:
        search.DB_BLOCK = old
    want_sims, want_idx = exact_search(queries, stored.astype(np.float32), 70, use_gpu=False)
    np.testing.assert_allclose(sims, want_sims, atol=1e-6)
    assert (idx[:, :5] == want_idx[:, :5]).mean() > 0.99


def test_bad_compressed_index_settings_are_refused() -> None:
    with pytest.raises(ArtidError, match="index"):
        PipelineConfig(index="hnsw").check()
    with pytest.raises(ArtidError, match="storage"):
        PipelineConfig(storage="int8").check()
    with pytest.raises(ArtidError, match="divide"):
        PQSearcher.build(_clustered(0, 500, d=30), m=7, progress=False)
