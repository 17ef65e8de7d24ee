"""Re-ranking in an evaluation: where the images are and the cache of their local features.

The re-ranking stage itself is part of the pipeline (:mod:`artid.retrieval.rerank`, fitted by
:meth:`artid.retrieval.pipeline.KNNPipeline.fit`); an evaluation only has to give it the local
features of the database and query images, read from the dataset root the descriptor files' paths
are relative to and cached one file per image under ``setup.cache`` (an interrupted run resumes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from artid.errors import ArtidError
from artid.evaluation.queries import Queries
from artid.extraction.local import FeatureCache, LocalFeatures, LocalFeatureSet
from artid.retrieval.rerank import RerankConfig


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
            raise ArtidError(
                f"re-ranking reads the images: the images root {self.images} is not a folder"
            )

    def feature_cache(self) -> FeatureCache:
        return FeatureCache(
            self.cache, self.images, self.config.max_keypoints, self.config.max_size
        )


def database_features(setup: RerankSetup, db: Queries) -> tuple[LocalFeatureSet, dict]:
    """The database images' local features, packed in row order, and a record of the run."""
    setup.check()
    missing = [e.path for e in db.entries[:50] if not (Path(setup.images) / e.path).is_file()]
    if missing:
        raise ArtidError(
            f"re-ranking reads the database images under {setup.images}, but "
            f"{missing[0]} is not there: give --images the root that was given to "
            "`artid extract`"
        )
    t = time.perf_counter()
    feats = setup.feature_cache().fill([e.path for e in db.entries], "database local features")
    record = {
        "database_feature_seconds": time.perf_counter() - t,
        "cache": str(setup.cache),
        "images": str(setup.images),
    }
    return LocalFeatureSet.pack(feats), record


def query_features(setup: RerankSetup, queries: Queries) -> Callable[[int], LocalFeatures]:
    """Query row -> its local features (read from the cache or computed when first asked for)."""
    cache = setup.feature_cache()
    paths = [e.path for e in queries.entries]
    return lambda row: cache.get(paths[row])
