"""Re-ranking in an evaluation: the fitted kNN pipeline's answers re-ranked by spatial verification.

:func:`rerank_splits` builds the :class:`artid.retrieval.rerank.Reranker` stage on the evaluation's
database, reads the local features of the database and query images (cached one file per image
under ``setup.cache``, so an interrupted run resumes), tunes the fusion rule on the validation
queries and answers every split. The global (kNN only) answer is kept beside it, so that the run
records what re-ranking added, paired on the same queries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from artid.errors import ArtidError
from artid.evaluation.queries import Queries
from artid.extraction.local import FeatureCache
from artid.retrieval.knn import Classified
from artid.retrieval.pipeline import KNNPipeline
from artid.retrieval.rerank import RerankConfig, Reranker


@dataclass
class RerankSetup:
    """Re-ranking of an evaluation.

    Attributes:
        config: the stage's settings (K, the rule's open or fixed parameters).
        images: the dataset root the descriptor files' entry paths are relative to.
        cache: folder of the cached local features (one compressed file per image).
    """

    config: RerankConfig
    images: Path
    cache: Path

    def check(self) -> None:
        self.config.check()
        if not Path(self.images).is_dir():
            raise ArtidError(f"re-ranking reads the images: the images root {self.images} is not a folder")


def rerank_splits(pipe: KNNPipeline, db: Queries, splits: dict[str, Queries],
                  setup: RerankSetup) -> tuple[dict[str, Classified], dict[str, Classified], dict]:
    """Re-ranked and global answers of each split, and a JSON-able record of the stage.

    Returns:
        (reranked, global) answers per split (rows = the split's readable entries), and a dict
        with the rule chosen, validation GAPs, the verification time per query and the time the
        database's local features took.
    """
    setup.check()
    cache = FeatureCache(setup.cache, setup.images, setup.config.max_keypoints, setup.config.max_size)
    missing = [e.path for e in db.entries[:50] if not (Path(setup.images) / e.path).is_file()]
    if missing:
        raise ArtidError(f"re-ranking reads the database images under {setup.images}, but {missing[0]} is not "
                         "there: give --images the root that was given to `artid extract`")
    t = time.perf_counter()
    db_paths = [e.path for e in db.entries]
    db_feats = cache.fill(db_paths, "database local features")
    record: dict = {"database_feature_seconds": time.perf_counter() - t, "cache": str(setup.cache),
                    "images": str(setup.images)}
    rr = Reranker(pipe, lambda r: db_feats[r], setup.config)
    reranked: dict[str, Classified] = {}
    glob: dict[str, Classified] = {}
    timings: dict[str, float | None] = {}
    for split in (s for s in ("val", "test") if s in splits):
        q = splits[split]
        paths = [e.path for e in q.entries]
        features = lambda row, paths=paths: cache.get(paths[row])  # noqa: E731
        if split == "val":
            ans = rr.fit(q.parts, features, q.labels, q.keys).val_answer
            assert ans is not None
        else:
            ans = rr.predict(q.parts, features)
        timings[split] = rr.ms_per_query
        assert pipe.k is not None and pipe.tau is not None and pipe.classifier is not None
        glob[split] = pipe.classifier.classify(ans.sims, ans.idx, min(pipe.k, ans.sims.shape[1]), pipe.tau)
        reranked[split] = ans.classified
    record.update(rr.describe())
    record["ms_per_query"] = timings
    return reranked, glob, record

