"""The local features a re-ranking bundle needs, computed resumably under the bundle's ``.work/``.

The re-ranking stage itself is part of the pipeline (:mod:`artid.retrieval.rerank`, fitted and
saved by :class:`artid.retrieval.pipeline.KNNPipeline`); building or extending a bundle that
re-ranks only has to give it the SIFT features of the collection's images (and of the validation
photos, which tune its rule), read as :func:`artid.extraction.local.local_features` reads any image:
the collection's into a re-ranking store (:func:`store_of`), the validation photos' one file each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from artid.data.entries import Entry
from artid.errors import ArtidError
from artid.extraction.local import FeatureCache, LocalFeatures, LocalFeatureSet
from artid.extraction.local_store import build_store
from artid.retrieval.rerank import RerankConfig


def features_of(
    entries: Sequence[Entry] | Sequence[str],
    image_root: Path,
    work: Path,
    config: RerankConfig,
    name: str,
) -> list[LocalFeatures]:
    """SIFT features of images below ``image_root``, cached one file per image under ``work``.

    The cache folder is named after the root and the SIFT settings, so a build resumed on the
    same images reads what an interrupted one computed; an unreadable image has no keypoints.
    """
    root = Path(image_root)
    tag = f"{root.resolve()}|{config.max_keypoints}|{config.max_size}"
    folder = work / f"local-{name}-{hashlib.sha1(tag.encode()).hexdigest()[:12]}"
    cache = FeatureCache(folder, root, config.max_keypoints, config.max_size)
    paths = [e if isinstance(e, str) else e.path for e in entries]
    return cache.fill(paths, f"{name} local features")


def store_of(
    entries: Sequence[Entry] | Sequence[str],
    image_root: Path,
    work: Path,
    config: RerankConfig,
    name: str,
) -> LocalFeatureSet:
    """The SIFT features of a collection's images below ``image_root`` in a re-ranking store
    under ``work`` (:func:`artid.extraction.local_store.build_store`: memory-mapped arrays built
    in resumable chunks); an unreadable image has no keypoints."""
    root = Path(image_root)
    paths = [e if isinstance(e, str) else e.path for e in entries]
    tag = "\n".join([str(root.resolve()), str(config.max_keypoints), str(config.max_size), *paths])
    folder = work / f"store-{name}-{hashlib.sha1(tag.encode()).hexdigest()[:12]}"
    return build_store(
        paths, root, folder, config.max_keypoints, config.max_size, desc=f"{name} local features"
    ).features


def missing_features(top: int) -> ArtidError:
    """The error for re-ranking asked of a bundle built without it."""
    return ArtidError(
        f"--rerank {top}: this bundle has no local features to verify photos with; "
        f"rebuild it with `artid index build ... --rerank {top}` (50 is the usual K)"
    )
