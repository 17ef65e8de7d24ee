"""Re-ranking in an evaluation: where the images are and the cache of their local features.

The re-ranking stage itself is part of the pipeline (:mod:`artid.retrieval.rerank`, fitted by
:meth:`artid.retrieval.pipeline.KNNPipeline.fit`); an evaluation only has to give it the local
features of the database and query images, read from the dataset root the descriptor files' paths
are relative to: the database's in a re-ranking store under ``setup.cache``
(:mod:`artid.extraction.local_store`: three memory-mapped arrays built in resumable chunks), each
query photo's cached one file per image there (an interrupted run resumes; an entry of another
image or other settings is computed again).

Every image is checked before the slow part: a run whose images are mostly missing is refused at
once, and once the features are computed the run warns how many database and query images have
none, or refuses past :data:`artid.extraction.local_cache.MAX_UNREADABLE_SHARE` of them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from artid.errors import ArtidError
from artid.evaluation.queries import Queries
from artid.extraction.local import FeatureCache, LocalFeatures, LocalFeatureSet
from artid.extraction.local_cache import MAX_UNREADABLE_SHARE, check_coverage
from artid.extraction.local_store import build_store, store_bytes
from artid.retrieval.rerank import RerankConfig

log = logging.getLogger(__name__)


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
    _checked: dict[tuple[str, ...], list[str]] = field(default_factory=dict, repr=False)

    def check(self) -> None:
        """Refuse settings, an images root or a cache folder that cannot work (no image read)."""
        self.config.check()
        if not Path(self.images).is_dir():
            raise ArtidError(
                f"re-ranking reads the images: the images root {self.images} is not a folder"
            )
        self.feature_cache()

    def feature_cache(self) -> FeatureCache:
        return FeatureCache(
            self.cache, self.images, self.config.max_keypoints, self.config.max_size
        )

    def check_present(self, paths: Sequence[str], what: str) -> None:
        """Refuse, before any image is read, when too many of ``paths`` are not files."""
        root = Path(self.images)
        missing = [p for p in paths if not (root / p).is_file()]
        if len(missing) > MAX_UNREADABLE_SHARE * len(paths):
            raise ArtidError(
                f"re-ranking reads the {what} images under {root}, but {missing[0]} is not there "
                f"({len(missing)} of {len(paths)} are missing): give --images the root that was "
                "given to `artid extract`"
            )


def database_features(setup: RerankSetup, db: Queries) -> tuple[LocalFeatureSet, dict]:
    """The database images' local features, packed in row order, and a record of the run.

    Raises:
        ArtidError: the setup cannot work, or too many database images cannot be read.
    """
    setup.check()
    paths = [e.path for e in db.entries]
    setup.check_present(paths, "database")
    t = time.perf_counter()
    cfg = setup.config
    tag = "\n".join([str(Path(setup.images).resolve()), *paths])
    folder = Path(setup.cache) / f"store-{hashlib.sha1(tag.encode()).hexdigest()[:12]}"
    built = build_store(
        paths, setup.images, folder, cfg.max_keypoints, cfg.max_size, desc="database local features"
    )
    unreadable = [p for p in paths if p in built.unreadable]
    check_coverage(unreadable, len(paths), "database", Path(setup.images))
    record = {
        "database_feature_seconds": time.perf_counter() - t,
        "database_without_features": len(unreadable),
        "store_chunks_computed": built.computed,
        "store_bytes": store_bytes(folder),
        "cache": str(setup.cache),
        "store": str(folder),
        "images": str(setup.images),
    }
    return built.features, record


def query_features(
    setup: RerankSetup, queries: Queries, what: str = "query"
) -> Callable[[int], LocalFeatures]:
    """Query row -> its local features.

    Every query image's features are computed into the cache first (not kept in memory), so
    that unreadable photos are counted and warned about, or refused, before verification starts;
    the function returned reads them back from the cache.

    Raises:
        ArtidError: the setup cannot work, or too many query images cannot be read.
    """
    setup.check()
    paths = [e.path for e in queries.entries]
    cache = setup.feature_cache()
    key = tuple(paths)
    if key not in setup._checked:
        setup.check_present(paths, what)
        unreadable = cache.ensure(paths, f"{what} local features")
        check_coverage(unreadable, len(paths), what, Path(setup.images))
        setup._checked[key] = unreadable
    skip = set(setup._checked[key])
    return lambda row: LocalFeatures.empty() if paths[row] in skip else cache.get(paths[row])
