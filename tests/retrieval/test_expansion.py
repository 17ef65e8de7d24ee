"""alpha query expansion and database-side augmentation (artid.retrieval.expansion) and their pipeline hooks."""

from __future__ import annotations

import numpy as np
import pytest
from evaluate_helpers import _sets

from artid.errors import ArtidError
from artid.retrieval.choosing import MARGIN_SE
from artid.retrieval.expansion import N_GRID, database_augmentation, query_expansion, weighted_sum
from artid.retrieval.knn import KNNClassifier
from artid.retrieval.pipeline import KNNPipeline, PipelineConfig
from artid.retrieval.projection import Projection


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_query_expansion_with_no_neighbour_is_the_identity():
    rng = np.random.default_rng(0)
    q, db = _unit(rng.normal(size=(4, 8))), _unit(rng.normal(size=(10, 8)))
    sims, idx = KNNClassifier(db, np.arange(10), use_gpu=False).search(q, 3, progress=False)
    assert query_expansion(q, db, sims, idx, 0, 3.0) is q


def test_query_expansion_with_one_neighbour_by_hand():
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    db = np.array([[0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    sims, idx = np.array([[0.6, 0.0]], dtype=np.float32), np.array([[0, 1]])
    # q + 0.6^2 * (0.6, 0.8) = (1.216, 0.288), then L2-normalised
    want = np.array([1.216, 0.288]) / np.hypot(1.216, 0.288)
    np.testing.assert_allclose(query_expansion(q, db, sims, idx, 1, 2.0)[0], want, rtol=1e-6)
    np.testing.assert_allclose(
        query_expansion(q, db, sims, idx, 1, 0.0)[0],
        np.array([1.6, 0.8]) / np.hypot(1.6, 0.8),
        rtol=1e-6,
    )
    with pytest.raises(ArtidError, match="at least 3 neighbours"):
        query_expansion(q, db, sims, idx, 3, 2.0)


def test_negative_similarities_weigh_nothing():
    x = np.array([[1.0, 0.0]], dtype=np.float32)
    out = weighted_sum(x, np.array([[-0.5]]), np.array([[[-1.0, 0.0]]]), 3.0)
    np.testing.assert_array_equal(out, x)


def test_database_augmentation_keeps_rows_normalised_and_excludes_self():
    rng = np.random.default_rng(1)
    db = _unit(rng.normal(size=(50, 16)))
    assert database_augmentation(db, 0, 3.0) is db
    out = database_augmentation(db, 2, 3.0, use_gpu=False, chunk=7)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    # by hand for row 0: its two nearest OTHER rows
    s = db @ db[0]
    s[0] = -np.inf
    top = np.argsort(-s)[:2]
    want = db[0] + (s[top, None] ** 3 * db[top]).sum(axis=0)
    np.testing.assert_allclose(out[0], want / np.linalg.norm(want), rtol=1e-5, atol=1e-6)
    # a one-row database has no neighbour: unchanged
    assert database_augmentation(db[:1], 3, 3.0) is not None
    np.testing.assert_array_equal(database_augmentation(db[:1], 3, 3.0), db[:1])


def test_options_off_leave_results_bit_identical():
    database, val, test = _sets(classes=40)
    keys = [e.path for e in val.entries]
    pipe = KNNPipeline(PipelineConfig(whiten="pcaw", dim=8, use_gpu=False)).fit(
        database.matrix, database.labels, val.matrix, val.labels, keys
    )
    assert not pipe.expansion.active
    # the pre-expansion computation: projection -> classifier -> predict at the tuned (k, tau)
    proj = Projection.fit([database.matrix], True, 8, 1.0)
    clf = KNNClassifier(proj.transform(database.matrix), database.labels, use_gpu=False)
    np.testing.assert_array_equal(pipe.classifier.db, clf.db)
    a, b = (
        pipe.predict(test.matrix, progress=False),
        clf.predict(proj.transform(test.matrix), pipe.k, pipe.tau),
    )
    np.testing.assert_array_equal(a.pred, b.pred)
    np.testing.assert_array_equal(a.score, b.score)
    explicit = KNNPipeline(
        PipelineConfig(whiten="pcaw", dim=8, use_gpu=False, qe_n=0, dba_n=0)
    ).fit(database.matrix, database.labels, val.matrix, val.labels, keys)
    np.testing.assert_array_equal(explicit.predict(test.matrix, progress=False).score, a.score)


def test_pipeline_with_qe_and_dba_saves_loads_and_answers_the_same(tmp_path):
    database, val, test = _sets(classes=40)
    cfg = PipelineConfig(whiten="none", use_gpu=False, qe_n=2, qe_alpha=3.0, dba_n=1, dba_alpha=3.0)
    pipe = KNNPipeline(cfg).fit(database.matrix, database.labels, val.matrix, val.labels)
    plain = KNNPipeline(PipelineConfig(whiten="none", use_gpu=False)).fit(
        database.matrix, database.labels, val.matrix, val.labels
    )
    assert not np.array_equal(pipe.classifier.db, plain.classifier.db)  # DBA applied
    np.testing.assert_allclose(np.linalg.norm(pipe.classifier.db, axis=1), 1.0, rtol=1e-5)
    before = pipe.predict(test.matrix, progress=False)
    loaded = KNNPipeline.load(pipe.save(tmp_path / "pipe"))
    assert loaded.expansion == pipe.expansion
    after = loaded.predict(test.matrix, progress=False)
    np.testing.assert_array_equal(before.pred, after.pred)
    np.testing.assert_array_equal(before.score, after.score)
    assert loaded.answer(test.matrix[:2], n_top=3)[1] == pipe.answer(test.matrix[:2], n_top=3)[1]


def test_open_settings_keep_no_expansion_on_a_noisy_validation_win():
    # 45 val queries (15 of them exhibits): DBA 2 scores the best val GAP (83.8 against 81.1
    # without expansion), which the old rule (best val GAP) took; 0.6 paired SEs is within the
    # margin, so no expansion is kept
    database, val, test = _sets(classes=40)
    keys = [e.path for e in val.entries]
    pipe = KNNPipeline(
        PipelineConfig(
            whiten="none", use_gpu=False, qe_n=None, dba_n=None, ks=(1, 3), taus=(10.0, 50.0)
        )
    ).fit(database.matrix, database.labels, val.matrix, val.labels, keys)
    grid = pipe.expansion_grid
    assert [(p["dba_n"], p["qe_n"]) for p in grid] == [(d, q) for d in N_GRID for q in N_GRID]
    best = max(grid, key=lambda p: p["val_gap"])
    assert (best["dba_n"], best["qe_n"]) == (2, 0) and best["val_gap"] > grid[0]["val_gap"] + 0.02
    assert 0 < best["z"] < MARGIN_SE and grid[0]["z"] == 0.0
    assert [p["chosen"] for p in grid] == [True] + [False] * (len(grid) - 1)
    assert (pipe.expansion.qe_n, pipe.expansion.dba_n) == (0, 0)
    # the chosen point is rebuilt: its (k, tau) and val GAP, the database not augmented
    assert pipe.tuned.best_gap == pytest.approx(grid[0]["val_gap"])
    assert (pipe.k, pipe.tau) == (grid[0]["k"], grid[0]["tau"])
    assert pipe.classifier is not None and pipe.projection is not None
    np.testing.assert_array_equal(pipe.classifier.db, pipe.projection.transform(database.matrix))
    assert pipe.summary()["expansion_grid"] == grid


def test_bad_settings_are_refused():
    with pytest.raises(ArtidError, match="qe_n"):
        KNNPipeline(PipelineConfig(qe_n=-1))
    with pytest.raises(ArtidError, match="dba_alpha"):
        KNNPipeline(PipelineConfig(dba_alpha=-1.0))
    database, val, _ = _sets()
    with pytest.raises(ArtidError, match="validation"):
        KNNPipeline(PipelineConfig(whiten="none", k=1, tau=10.0, qe_n=None)).fit(
            database.matrix, database.labels
        )
