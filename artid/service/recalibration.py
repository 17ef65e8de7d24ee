"""The validation photos a bundle keeps, and the thresholds recalibrated on them after an edit.

A prediction's score is the log-odds of a softmax over all N artworks of the bundle
(:mod:`artid.retrieval.knn`): the classes without a neighbour among the k nearest images join it
with score 0, so the score of the same photo moves when ``artid index add`` / ``remove`` changes N
(by about ``log(N_old / N_new)`` for a photo of nothing in the collection, at a small tau). A
threshold kept across an edit then means something else: on a re-ranking bundle of 30 artworks,
removing 3 took the accepted distractors from 1/24 to 24/24. What the threshold means is its rate:
at most ``target_false_accept`` of the validation distractors accepted. So a bundle keeps what its
thresholds were calibrated on, and every edit calibrates them again, with the same target, on the
edited pipeline's answers to the same photos (``benchmarks/bundle_edits.py`` measures this against
keeping the threshold, and against a softmax whose N is held at the build's).

Kept, below ``validation/<sha>/`` (named by content, shared by generations, written once)::

    queries.json     the photos' paths (the ranking's tie-break), and the key of the artwork each
                     shows (null: a distractor)
    part-<i>.npy     (Q, D_i) float32 descriptors of the photos, one per model of the bundle
    local_*.npy      their local features when the bundle re-ranks (packed, as the database's)

The photos are labelled by artwork key, not class label, at each recalibration: a photo of an
artwork removed since the build counts as a distractor (it shows nothing of the collection any
more), and one of an artwork added again under its key counts as a photo of it. A threshold given
with ``--threshold`` is kept as given (with a warning that its meaning moves with N), as is the
threshold of a bundle that keeps no validation photos (built before this version).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from artid.data.entries import DISTRACTOR
from artid.errors import ArtidError
from artid.extraction.local import LocalFeatureSet
from artid.files import atomic_path, save_npy, write_json
from artid.service.bundle_contents import BundleData
from artid.service.bundle_layout import VALIDATION
from artid.service.collection import Artwork
from artid.service.fitting import Validation, calibration_of

log = logging.getLogger(__name__)

FORMAT = "artid-validation/1"
QUERIES = "queries.json"


def store_validation(bundle: Path, val: Validation, artworks: list[Artwork]) -> dict[str, Any]:
    """Keep the validation photos' descriptors, local features and artworks in the bundle.

    Returns:
        The manifest's ``validation`` record: ``ref`` (``validation/<sha>``), ``queries``,
        ``distractors``.
    """
    key_of = {a.label: a.key for a in artworks}
    shows = [None if int(lab) == DISTRACTOR else key_of.get(int(lab)) for lab in val.labels]
    meta = {
        "format": FORMAT,
        "keys": [str(k) for k in val.keys],
        "artworks": shows,
        "parts": len(val.parts),
    }
    parts = [np.ascontiguousarray(p, dtype=np.float32) for p in val.parts]
    packed = LocalFeatureSet.pack(val.features) if val.features is not None else None
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for p in parts:
        h.update(f"{p.shape}".encode() + p.tobytes())
    if packed is not None:
        for a in (packed.offsets, packed.xy, packed.desc):
            h.update(np.ascontiguousarray(a).tobytes())
    ref = f"{VALIDATION}/{h.hexdigest()[:32]}"
    target = bundle / ref
    if not (target / QUERIES).is_file():
        with atomic_path(target) as tmp:
            tmp.mkdir(parents=True)
            for i, p in enumerate(parts):
                save_npy(tmp / f"part-{i}.npy", p)
            if packed is not None:
                packed.save(tmp)
            write_json(tmp / QUERIES, meta)  # last: a folder with it is whole
    return {"ref": ref, "queries": len(shows), "distractors": shows.count(None)}


def load_validation(bundle: Path, record: dict[str, Any], data: BundleData) -> Validation:
    """The kept validation photos, labelled by the contents' artworks (a photo of an artwork not
    in them is a distractor).

    Raises:
        ArtidError: naming the folder, when its files are missing or do not belong together.
    """
    ref = str(record.get("ref", ""))
    folder = bundle / ref
    if not ref.startswith(f"{VALIDATION}/") or ".." in ref:
        raise ArtidError(f"{bundle / 'bundle.json'}: validation ref {ref!r} is not in the bundle")
    try:
        meta = json.loads((folder / QUERIES).read_text(encoding="utf-8"))
        keys, shows = list(meta["keys"]), list(meta["artworks"])
        parts = [
            np.load(folder / f"part-{i}.npy", allow_pickle=False) for i in range(int(meta["parts"]))
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtidError(
            f"{folder}: the bundle's validation photos cannot be read ({exc})"
        ) from None
    if meta.get("format") != FORMAT or any(p.shape[0] != len(keys) for p in parts):
        raise ArtidError(f"{folder}: not validation photos of this artid ({FORMAT})")
    features = None
    if data.reranks:
        local = LocalFeatureSet.load(folder, mmap=True)
        if len(local) != len(keys):
            raise ArtidError(f"{folder}: local features of {len(local)} of {len(keys)} photos")
        features = [local[i] for i in range(len(local))]
    label_of = {a.key: a.label for a in data.artworks}
    labels = np.array(
        [DISTRACTOR if k is None else label_of.get(str(k), DISTRACTOR) for k in shows],
        dtype=np.int64,
    )
    return Validation(parts, labels, np.array(keys, dtype=str), folder, features)


def recalibrated(bundle: Path, data: BundleData) -> tuple[BundleData, str]:
    """The edited contents with their thresholds calibrated again on the kept validation photos
    (same target rate of accepted distractors), and a line saying what changed.

    Thresholds given by the user, and bundles without kept validation photos, keep theirs (with
    a warning).
    """
    cal = data.calibration
    if cal.source != "validation" or cal.target_false_accept is None:
        log.warning(
            "the acceptance threshold was given (--threshold) and is kept; scores move with the "
            "number of artworks (now %d), so it accepts more or fewer photos than before",
            data.n_classes,
        )
        return data, "threshold kept (given)"
    if not data.validation:
        log.warning(
            "this bundle keeps no validation photos (built by an older artid): the acceptance "
            "threshold is kept, and its rate of accepted distractors moves with the number of "
            "artworks; rebuild the bundle with `artid index build` to keep it calibrated"
        )
        return data, "threshold kept (no validation photos kept)"
    val = load_validation(bundle, data.validation, data)
    target = float(cal.target_false_accept)
    ans = data.pipeline.predict(val.parts, features=val.features, progress=False)
    decision = calibration_of(ans.score, ans.pred, val.labels, target)
    glob = None
    if data.reranks:
        g = ans.global_
        glob = calibration_of(g.score, g.pred, val.labels, target)
    note = (
        f"threshold recalibrated on {decision.n_queries + decision.n_distractors} validation "
        f"photos: {cal.threshold:.4g} -> {decision.threshold:.4g} (log-odds)"
    )
    log.info("%s", note)
    data.pipeline.calibration = decision.reliability  # the saved pipeline's confidence, the same
    return replace(data, calibration=decision, global_calibration=glob), note
