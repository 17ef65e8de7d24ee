"""The pipeline saved and loaded whole: the IVF index, edits, formats (artid.retrieval.storage)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from artid.errors import ArtidError
from artid.retrieval.index import IVFSearcher
from artid.retrieval.pipeline import KNNPipeline, PipelineConfig


def _unit(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _data(seed: int = 0, n: int = 2400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    db = _unit(rng, n)
    labels = np.arange(n) // 3
    queries = db[::7] + 0.3 * _unit(rng, len(db[::7]))
    return db, labels, queries


def test_an_ivf_pipeline_reloads_as_ivf_and_answers_the_same(tmp_path: Path) -> None:
    db, labels, queries = _data()
    config = PipelineConfig(whiten="none", k=3, tau=20.0, index="ivf", nprobe=1)
    pipe = KNNPipeline(config).fit(db, labels)
    exact = KNNPipeline(PipelineConfig(whiten="none", k=3, tau=20.0)).fit(db, labels)
    ivf_ans = pipe.predict(queries, progress=False)
    # with one probed cell of ~50, approximate search misses some queries' true neighbours
    assert (ivf_ans.idx[:, 0] != exact.predict(queries, progress=False).idx[:, 0]).sum() > 10
    for mmap in (False, True):
        back = KNNPipeline.load(pipe.save(tmp_path / "ivf"), mmap=mmap)
        assert back.classifier is not None and isinstance(back.classifier.searcher, IVFSearcher)
        again = back.predict(queries, progress=False)
        np.testing.assert_array_equal(again.idx, ivf_ans.idx)
        np.testing.assert_array_equal(again.score, ivf_ans.score)
    assert (tmp_path / "ivf" / "index.faiss").is_file()


@pytest.mark.parametrize("index", ["exact", "ivf"])
def test_adding_and_removing_rows_answers_like_a_pipeline_of_those_rows(index: str) -> None:
    db, labels, queries = _data(1, 1200)
    config = PipelineConfig(whiten="none", k=5, tau=30.0, index=index, nprobe=4)
    pipe = KNNPipeline(config).fit(db[:800], labels[:800])
    pipe.add(db[800:], labels[800:])
    keep = np.flatnonzero(labels % 5 != 0)
    pipe.keep(keep)
    assert pipe.n_classes == len(np.unique(labels[keep]))
    # the same rows fitted at once; IVF keeps the cells trained on the first 800 rows, so
    # compare it with an exact search over the same rows only where the cells hold the answer
    fresh = KNNPipeline(PipelineConfig(whiten="none", k=5, tau=30.0)).fit(db[keep], labels[keep])
    got, want = pipe.predict(queries, progress=False), fresh.predict(queries, progress=False)
    if index == "exact":
        np.testing.assert_array_equal(got.pred, want.pred)
        np.testing.assert_allclose(got.score, want.score)
    else:
        assert np.isin(got.pred, labels[keep]).all()  # removed classes are never answered
        assert (got.pred == want.pred).mean() > 0.8


def test_a_format_1_folder_is_read_and_an_unknown_one_refused(tmp_path: Path) -> None:
    db, labels, queries = _data(2, 300)
    pipe = KNNPipeline(PipelineConfig(whiten="none", k=3, tau=20.0)).fit(db, labels)
    folder = pipe.save(tmp_path / "p")
    meta = json.loads((folder / "pipeline.json").read_text())
    meta["format"] = "artid-pipeline/1"
    for key in ("rerank",):
        meta.pop(key)
    meta["config"].pop("rerank")
    (folder / "pipeline.json").write_text(json.dumps(meta))
    old = KNNPipeline.load(folder)
    np.testing.assert_array_equal(old.predict(queries, progress=False).pred,
                                  pipe.predict(queries, progress=False).pred)
    meta["format"] = "artid-pipeline/9"
    (folder / "pipeline.json").write_text(json.dumps(meta))
    with pytest.raises(ArtidError, match="artid-pipeline/9.*fit and save the pipeline again"):
        KNNPipeline.load(folder)
