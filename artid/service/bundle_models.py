"""The networks and the attributes run a bundle keeps: which models it names, checkpoints copied
into it, and the refusal of an attributes run the bundle's network cannot feed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from artid.errors import ArtidError
from artid.service import bundle as bundles
from artid.service.describing import WORK


def check_attributes_run(run: Path, model: str) -> None:
    """Refuse an attributes run that cannot tag the photos of a bundle built with ``model``.

    The service describes a photo once with the bundle's network and gives that descriptor to the
    run's model too, so the run must be on the same backbone (a name without other weights, or the
    same checkpoint file); other image sizes and scales only cost a second pass of that network.

    Raises:
        ArtidError: naming ``--attributes``: not a servable run, or another backbone.
    """
    from artid.attributes.features import FeatureSpec
    from artid.attributes.tagger import servable_run
    from artid.models.checkpoint import file_sha256

    spec = FeatureSpec.from_json(servable_run(run)["features"])
    if Path(model).is_file() and Path(spec.model).is_file():
        same = file_sha256(Path(model)) == file_sha256(Path(spec.model))
    else:
        same = spec.model == model and spec.weights is None
    if not same:
        theirs = spec.model + (f" with weights {spec.weights}" if spec.weights else "")
        raise ArtidError(
            f"--attributes {run}: the run was trained on descriptors of {theirs}, the "
            f"bundle describes photos with {model}; one network must serve both: "
            f"train the run with --backbone {model} or build the bundle with "
            f"--model {spec.model}"
        )


def bundle_model(out: Path, i: int, name: str, weights: str | None) -> tuple[Any, str]:
    """The embedder of ``name`` and how the bundle names it (a checkpoint inside it when the
    network cannot be rebuilt from its name alone)."""
    from artid.models import build_embedder, save_checkpoint

    embedder = build_embedder(name, weights=weights)
    if Path(name).is_file():
        return embedder, bundles.store_model_file(out, Path(name))
    if name.startswith("random:") or weights is not None:
        # weights drawn once here, or read from a local file: the bundle keeps the network
        kept = save_checkpoint(out / WORK / f"model-{i}.pt", embedder, meta={"model": name})
        return embedder, bundles.store_model_file(out, kept)
    return embedder, name


def store_attributes(out: Path, run: Path, embedder: Any) -> dict[str, Any]:
    """Copy the attributes run into the bundle; the manifest's record of it."""
    from artid.attributes.tagger import Tagger

    ref = bundles.store_attributes(out, run)
    tagger = Tagger(out / ref)
    if tagger.dim != int(embedder.dim):
        raise ArtidError(
            f"--attributes {run}: its model takes {tagger.dim}-d descriptors, the "
            f"bundle's network gives {embedder.dim}-d ones"
        )
    return {"ref": ref, "source": str(run.resolve()), **tagger.summary()}
