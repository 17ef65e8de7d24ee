"""Re-ranking in the recognition service: `index build --rerank K`, the recognizer's verified
answer, `--rerank 0`, the HTTP answer, bundle edits and a resumed build."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from scenes import _scene, _warp
from service_helpers import jpeg_bytes

from artid.cli import main
from artid.errors import ArtidError
from artid.extraction import local as verification
from artid.extraction import local_store
from artid.retrieval.pipeline import PipelineConfig
from artid.retrieval.rerank import DEFAULT_MIN_INLIERS, RerankConfig
from artid.service import builder
from artid.service.api import create_app
from artid.service.bundle import load_bundle
from artid.service.calibrate import calibrate_threshold
from artid.service.recognizer import Recognizer

CLASSES = 8
#: K of the tests' bundles: every database image is verified
TOP = CLASSES
OPTIONS = dict(max_size=128, scales=(1.0,), workers=0, threshold=0.5)


def _options(rerank: int = 0, **kw) -> builder.BuildOptions:
    config = PipelineConfig(whiten="none", rerank=RerankConfig(top=rerank) if rerank else None)
    return builder.BuildOptions(**{**OPTIONS, **kw}, pipeline=config)


def _collection(root: Path, classes: range = range(CLASSES)) -> Path:
    """``art-<c>/0.png``: the SIFT-rich scenes of test_verification, one artwork each."""
    for c in classes:
        (root / f"art-{c}").mkdir(parents=True)
        cv2.imwrite(str(root / f"art-{c}" / "0.png"), _scene(c))
    return root


def _photo(c: int) -> Image.Image:
    """A visitor's photo of artwork c (a perspective-warped copy)."""
    return Image.fromarray(_warp(_scene(c))).convert("RGB")


def _distractor(i: int) -> Image.Image:
    return Image.fromarray(_scene(100 + i)).convert("RGB")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a bundle built with --rerank TOP, one built without), both from the same collection."""
    cv2.setNumThreads(1)
    base = tmp_path_factory.mktemp("service-rerank")
    coll = _collection(base / "collection")
    builder.build_bundle(coll, base / "rerank", _options(TOP))
    builder.build_bundle(coll, base / "plain", _options())
    return base / "rerank", base / "plain"


def _misleading(rec: Recognizer, n: int = CLASSES) -> np.ndarray:
    """Descriptors of the photos of artworks 0..n-1 that the global search puts nearer the next
    artwork."""
    db = np.asarray(rec.data.pipeline.classifier.db)
    rows = np.stack([0.53 * db[(c + 1) % CLASSES] + 0.47 * db[c] for c in range(n)])
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _answer(rec: Recognizer, images: list[Image.Image], desc: np.ndarray, monkeypatch) -> list:
    monkeypatch.setattr(rec, "describe", lambda imgs, *a, **kw: desc[: len(imgs)])
    return rec.recognize(images)


def test_verified_points_overturn_misleading_descriptors(bundles, monkeypatch) -> None:
    bundle, _ = bundles
    data = load_bundle(bundle)
    local = data.pipeline.local
    assert local is not None and len(local) == CLASSES and local.keypoints > 0
    assert data.pipeline.reranker is not None and data.pipeline.reranker.top == TOP
    assert (bundle / str(data.generation) / "pipeline" / "local_desc.npy").is_file()

    rec = Recognizer.from_bundle(bundle, optimize=False)
    assert (
        rec.reranker is not None and rec.reranker.min_inliers == DEFAULT_MIN_INLIERS
    )  # untuned: the defaults
    desc = _misleading(rec)
    glob = rec.pipeline.predict(desc, rerank=False, progress=False).pred
    labels = {a.key: a.label for a in rec.data.artworks}
    assert not np.any(
        glob == [labels[f"art-{c}"] for c in range(CLASSES)]
    )  # kNN alone is wrong on every photo

    answers = _answer(rec, [_photo(c) for c in range(CLASSES)], desc, monkeypatch)
    for c, r in enumerate(answers):
        assert r.prediction.artwork.key == f"art-{c}", (c, r.to_json())
        assert r.verified_inliers >= rec.reranker.min_inliers
        assert r.matches[0] == r.prediction
        out = r.to_json()
        assert out["verified_inliers"] == r.verified_inliers and len(out["matches"]) >= 1
        assert {"local_features", "verify"} <= set(out["timing_ms"])

    # a photo of no artwork verifies nothing, whatever its descriptor says
    db = np.asarray(rec.data.pipeline.classifier.db)
    other = _answer(rec, [_distractor(0)], db[:1], monkeypatch)[0]
    assert other.verified_inliers == 0


def test_rerank_zero_is_the_global_answer(bundles, monkeypatch) -> None:
    bundle, _ = bundles
    rec = Recognizer.from_bundle(bundle, optimize=False, rerank=0)
    assert rec.reranker is None
    desc = _misleading(rec)
    answers = _answer(rec, [_photo(c) for c in range(CLASSES)], desc, monkeypatch)
    glob = rec.pipeline.predict(desc, rerank=False, progress=False)
    assert [r.prediction.artwork.label for r in answers] == list(glob.pred)
    assert all("verified_inliers" not in r.to_json() for r in answers)
    global_threshold = load_bundle(bundle).global_calibration
    assert global_threshold is not None and rec.threshold_score == global_threshold.threshold

    # another K at run time
    fewer = Recognizer.from_bundle(bundle, optimize=False, rerank=2)
    assert fewer.reranker is not None and fewer.reranker.top == 2


def test_rerank_needs_a_bundle_with_local_features(bundles, tmp_path: Path, capsys) -> None:
    _, plain = bundles
    assert load_bundle(plain).pipeline.local is None
    with pytest.raises(ArtidError, match=r"rebuild it with `artid index build \.\.\. --rerank 50`"):
        Recognizer.from_bundle(plain, optimize=False, rerank=50)
    assert Recognizer.from_bundle(plain, optimize=False).reranker is None  # off by default
    path = tmp_path / "p.jpg"
    _photo(1).save(path)
    assert main(["recognize", str(path), "--bundle", str(plain), "--rerank", "5"]) == 2
    assert "index build ... --rerank 5" in capsys.readouterr().err


def test_cli_and_http_answers_say_how_many_points_verified(bundles, tmp_path: Path, capsys) -> None:
    bundle, _ = bundles
    path = tmp_path / "p.png"
    _photo(3).save(path)
    assert main(["recognize", str(path), "--bundle", str(bundle)]) == 0
    assert "verified by" in capsys.readouterr().out
    assert main(["index", "info", str(bundle)]) == 0
    assert f"re-ranking   K={TOP}" in capsys.readouterr().out

    rec = Recognizer.from_bundle(bundle, optimize=False)
    with TestClient(create_app(rec, bundle)) as client:
        assert client.get("/health").json()["rerank"] == TOP
        r = client.post(
            "/recognize", files={"image": ("p.jpg", jpeg_bytes(_photo(3)), "image/jpeg")}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (
            body["prediction"]["key"] == "art-3" and body["verified_inliers"] >= DEFAULT_MIN_INLIERS
        )
        r = client.post(
            "/recognize", files={"image": ("d.jpg", jpeg_bytes(_distractor(1)), "image/jpeg")}
        )
        assert r.json()["verified_inliers"] == 0


def test_validation_photos_tune_the_rule_and_its_threshold(tmp_path: Path) -> None:
    coll = _collection(tmp_path / "collection", range(4))
    val = tmp_path / "val"
    for c in range(4):
        (val / f"art-{c}").mkdir(parents=True)
        _photo(c).save(val / f"art-{c}" / "v.png")
    (val / "_distractors").mkdir()
    for i in range(4):
        _distractor(i).save(val / "_distractors" / f"d{i}.png")
    builder.build_bundle(coll, tmp_path / "b", _options(3, threshold=None), val=val)
    data = load_bundle(tmp_path / "b")
    stage = data.pipeline.reranker
    assert stage is not None and stage.tuned is not None and stage.global_val_gap is not None
    assert data.calibration.source == "validation"
    assert data.global_calibration is not None and data.global_calibration.source == "validation"
    meta = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert meta["pipeline"]["rerank"]["top"] == 3
    # the thresholds calibrate the served pipeline's own validation answers: the re-ranked
    # scores for the decision, the kNN-only scores for --rerank 0
    _check_thresholds(tmp_path / "b", val)
    # and so they do after each edit, the photo of a removed artwork counted as a distractor
    builder.remove_from_bundle(tmp_path / "b", ["art-0"])
    _check_thresholds(tmp_path / "b", val)
    builder.add_to_bundle(tmp_path / "b", _collection(tmp_path / "new", range(50, 52)))
    _check_thresholds(tmp_path / "b", val)
    assert load_bundle(tmp_path / "b").calibration.n_distractors == 5


def _check_thresholds(bundle: Path, val: Path) -> None:
    """The bundle's thresholds are those its served pipeline's answers to the validation photos
    calibrate to (labelled by the artworks the bundle holds now)."""
    data = load_bundle(bundle)
    rec = Recognizer.from_bundle(bundle, optimize=False)
    photos = sorted(val.rglob("*.png"))
    images = [Image.open(p).convert("RGB") for p in photos]
    known = {a.key: a.label for a in data.artworks}
    labels = np.array([known.get(p.parent.name, -1) for p in photos])
    ans = data.pipeline.predict(
        rec.describe(images), features=rec.local_features(images), progress=False
    )
    assert data.global_calibration is not None
    for scores, pred, cal in (
        (ans.score, ans.pred, data.calibration),
        (ans.global_.score, ans.global_.pred, data.global_calibration),
    ):
        again = calibrate_threshold(scores, (pred == labels) & (labels >= 0), labels < 0, 0.05)
        assert cal.threshold == pytest.approx(again.threshold, abs=1e-4)


def test_edits_keep_the_local_features_in_step(bundles, tmp_path: Path) -> None:
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(bundles[0], bundle)
    new = _collection(tmp_path / "new", range(50, 52))
    builder.add_to_bundle(bundle, new)
    data = load_bundle(bundle)
    local = data.pipeline.local
    assert local is not None and len(local) == len(data.labels) == CLASSES + 2
    label = {a.key: a.label for a in data.artworks}["art-50"]
    row = int(np.flatnonzero(data.labels == label)[0])
    expected = verification.local_features(new / "art-50" / "0.png").desc
    np.testing.assert_array_equal(local[row].desc, expected)

    builder.remove_from_bundle(bundle, ["art-0", "art-51"])
    data = load_bundle(bundle)
    local = data.pipeline.local
    assert local is not None and len(local) == len(data.labels) == CLASSES
    row = int(np.flatnonzero(data.labels == label)[0])
    np.testing.assert_array_equal(local[row].desc, expected)

    rec = Recognizer.from_bundle(bundle, optimize=False)
    answer = rec.recognize([Image.fromarray(_warp(_scene(50))).convert("RGB")])[0]
    assert (
        answer.prediction.artwork.key == "art-50" and answer.verified_inliers >= DEFAULT_MIN_INLIERS
    )


def test_an_interrupted_build_resumes_from_the_cached_features(tmp_path: Path, monkeypatch) -> None:
    coll = _collection(tmp_path / "collection")
    real = verification.local_features
    calls: list[str] = []

    def counted(image, *args, **kwargs):
        calls.append(str(image))
        if len(calls) > 5 and interrupt:
            raise KeyboardInterrupt
        return real(image, *args, **kwargs)

    monkeypatch.setattr(verification, "local_features", counted)
    monkeypatch.setattr(local_store, "DEFAULT_CHUNK", 2)  # the store is written 2 images a chunk
    interrupt = True
    with pytest.raises(KeyboardInterrupt):
        builder.build_bundle(coll, tmp_path / "b", _options(TOP))
    assert len(calls) == 6
    done = set(calls[:4])  # the chunks written before the interruption
    calls.clear()
    interrupt = False
    builder.build_bundle(coll, tmp_path / "b", _options(TOP))
    assert len(calls) == CLASSES - 4 and not done & set(calls)  # only the images not stored before
    assert not (tmp_path / "b" / ".work").exists()
    assert len(load_bundle(tmp_path / "b").pipeline.local or []) == CLASSES
