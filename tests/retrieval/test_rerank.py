"""The re-ranking stage: verified matches overturn a wrong global answer, in the pipeline and in `artid evaluate`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from scenes import _scene, _warp

from artid.commands import evaluate as evaluate_command
from artid.data.entries import DISTRACTOR, Entry
from artid.descriptors import DescriptorSet, save_descriptors
from artid.errors import ArtidError
from artid.evaluation.reranking import RerankSetup
from artid.evaluation.run import evaluate
from artid.extraction import local
from artid.extraction.local import FeatureCache
from artid.retrieval.pipeline import KNNPipeline, PipelineConfig
from artid.retrieval.rerank import RerankConfig, Reranker

CLASSES = 8


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _benchmark(root: Path) -> tuple[DescriptorSet, DescriptorSet, DescriptorSet]:
    """Images on disk and descriptors that mislead the global search.

    Database: one image per class. A query of class c is a perspective-warped copy of class c's
    image whose descriptor is nearer class c+1's; a distractor (an unrelated image) has the
    descriptor of a database image. kNN alone gets every query wrong; spatial verification can
    tell them apart.
    """
    cv2.setNumThreads(1)
    basis = np.eye(CLASSES, dtype=np.float32)
    (root / "db").mkdir(parents=True)
    for c in range(CLASSES):
        cv2.imwrite(str(root / "db" / f"{c}.png"), _scene(c))
    db = DescriptorSet(basis, [Entry(f"db/{c}.png", c, "exhibit") for c in range(CLASSES)])
    sets = []
    for split, offset in (("val", 100), ("test", 200)):
        (root / split).mkdir()
        rows, entries = [], []
        for c in range(CLASSES):
            cv2.imwrite(str(root / split / f"q{c}.png"), _warp(_scene(c)))
            rows.append(0.8 * basis[(c + 1) % CLASSES] + 0.6 * basis[c])
            entries.append(Entry(f"{split}/q{c}.png", c, "met"))
        for i in range(4):
            cv2.imwrite(str(root / split / f"d{i}.png"), _scene(offset + i))
            rows.append(basis[i] + 0.9 * basis[(i + 3) % CLASSES])
            entries.append(Entry(f"{split}/d{i}.png", DISTRACTOR, "other"))
        sets.append(DescriptorSet(_unit(np.array(rows)), entries))
    return db, sets[0], sets[1]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DescriptorSet, DescriptorSet, DescriptorSet]:
    root = tmp_path_factory.mktemp("rerank")
    return (root, *_benchmark(root))


def test_verified_matches_overturn_the_global_answer(bench, tmp_path: Path) -> None:
    root, db, val, test = bench
    cache = FeatureCache(tmp_path / "cache", root)
    db_feats = cache.fill([e.path for e in db.entries])
    val_feats = [cache.get(e.path) for e in val.entries]
    test_feats = [cache.get(e.path) for e in test.entries]
    config = PipelineConfig(whiten="none", rerank=RerankConfig(top=3))
    pipe = KNNPipeline(config).fit(db.matrix, db.labels, val.matrix, val.labels,
                                   db_features=db_feats, val_features=val_feats)
    rr = pipe.reranker
    assert rr is not None and rr.w > 0 and rr.tuned is not None and rr.global_val_gap is not None
    assert rr.tuned.val_gap > rr.global_val_gap + 0.5

    glob = pipe.predict(test.matrix, rerank=False, progress=False)
    met = test.labels != DISTRACTOR
    assert not np.any(glob.pred[met] == test.labels[met])  # the descriptors mislead kNN on every query
    ans = pipe.predict(test.matrix, test_feats, progress=False)
    assert ans.counts is not None and ans.counts.shape == (len(test.entries), 3)
    np.testing.assert_array_equal(ans.pred[met], test.labels[met])
    np.testing.assert_array_equal(ans.global_.pred, glob.pred)  # the global answer rides along
    # the answer says how many points verified it; a distractor verifies nothing
    assert np.all(ans.inliers[met] >= rr.min_inliers)
    assert np.all(ans.inliers[~met] == 0)
    with pytest.raises(ArtidError, match="local features"):
        pipe.predict(test.matrix)

    # w = 0 is the global answer exactly, whatever the counts
    off = Reranker(RerankConfig(top=3, w=0.0), rr.database, pipe.tau)
    assert pipe.classifier is not None and pipe.k is not None
    same = off.decide(ans.sims, ans.idx, ans.counts, pipe.classifier, pipe.k).classified
    np.testing.assert_array_equal(same.pred, glob.pred)
    np.testing.assert_allclose(same.score, glob.score)

    # saved whole, the pipeline comes back with its rule and keypoints and answers the same
    back = KNNPipeline.load(pipe.save(tmp_path / "pipe"), mmap=True)
    assert back.reranker is not None
    assert (back.reranker.w, back.reranker.min_inliers, back.reranker.tau, back.reranker.top) == (
        rr.w, rr.min_inliers, rr.tau, 3)
    again = back.predict(test.matrix, test_feats, progress=False)
    np.testing.assert_array_equal(again.pred, ans.pred)
    np.testing.assert_array_equal(again.score, ans.score)
    np.testing.assert_array_equal(again.inliers, ans.inliers)
    answered, listed = back.answer(test.matrix, test_feats, n_top=3)
    np.testing.assert_array_equal(answered.pred, ans.pred)
    assert [c[0][0] for c in listed] == ans.pred.tolist()  # the decision heads the candidates


def test_evaluate_records_global_and_reranked_metrics_and_resumes_from_the_cache(bench, tmp_path: Path,
                                                                                 monkeypatch) -> None:
    root, db, val, test = bench
    setup = RerankSetup(RerankConfig(top=3), root, tmp_path / "local_features")
    res = evaluate(db, val, test, tmp_path / "run", config=PipelineConfig(whiten="none"), report=False,
                   rerank=setup)
    assert res["global"]["test"]["acc"] == 0.0
    assert res["test"]["acc"] == 1.0  # every exhibit right
    assert res["test"]["gap"] > 0.9 and res["global"]["test"]["gap"] == 0.0
    paired = res["rerank"]["paired"]["test"]["gap"]
    assert paired["value"] == pytest.approx(res["test"]["gap"] - res["global"]["test"]["gap"])
    assert paired["se"] >= 0
    assert res["rerank"]["top"] == 3 and res["rerank"]["val_gap"] > res["rerank"]["global_val_gap"]
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["rerank"]["w"] == res["rerank"]["w"]
    # the database in one re-ranking store, each query photo in its own file
    assert len(list((tmp_path / "local_features").glob("*.npz"))) == 2 * (CLASSES + 4)
    assert len(list((tmp_path / "local_features").glob("store-*/local_desc.npy"))) == 1

    # a second run reads every image's features from the cache (nothing is extracted again)
    def no_extraction(*args, **kwargs):
        raise AssertionError("local features extracted again")

    monkeypatch.setattr(local, "local_features", no_extraction)
    again = evaluate(db, val, test, None, config=PipelineConfig(whiten="none"), rerank=setup)
    assert again["test"]["gap"] == res["test"]["gap"]


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="artid evaluate")
    evaluate_command.add_arguments(parser)
    try:
        return evaluate_command.run(parser.parse_args(argv))
    except ArtidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def test_cli_reranks_and_names_what_is_missing(bench, tmp_path: Path, capsys) -> None:
    root, db, val, test = bench
    for name, dset in (("database", db), ("val", val), ("test", test)):
        save_descriptors(tmp_path / "d" / name, dset)
    base = ["--descriptors", str(tmp_path / "d"), "--whiten", "none", "--no-report"]
    assert _cli([*base, "--rerank", "3"]) == 2
    assert "--images ROOT" in capsys.readouterr().err
    assert _cli([*base, "--images", str(root)]) == 2
    assert "add --rerank K" in capsys.readouterr().err
    assert _cli([*base, "--rerank", "3", "--images", str(tmp_path / "nowhere")]) == 2
    assert "nowhere is not a folder" in capsys.readouterr().err
    assert _cli([*base, "--rerank", "3", "--images", str(tmp_path)]) == 2  # a root without the images
    assert "db/0.png is not there" in capsys.readouterr().err

    assert _cli([*base, "--rerank", "3", "--images", str(root), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "re-ranking (K=3) minus kNN only, test, paired: gap +" in out
    assert (tmp_path / "d" / "local_features").is_dir()  # the cache sits beside the descriptors by default
