"""The pipeline's settings, and the whitening choices ``whiten="auto"`` tries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from artid.errors import ArtidError
from artid.retrieval.autotune import K_GRID, TAU_GRID
from artid.retrieval.expansion import check_settings
from artid.retrieval.projection import MIN_DIM, supported_dim
from artid.retrieval.rerank import RerankConfig

WHITEN_MODES = ("none", "pcaw", "auto")
#: ``index`` choices: exact search, faiss IVF-Flat, IVF-PQ fast-scan with exact re-scoring.
INDEX_KINDS = ("exact", "ivf", "ivfpq")
#: ``storage`` choices: the dtype the database rows are kept (and saved) in.
STORAGE_DTYPES = ("float32", "float16")


@dataclass
class PipelineConfig:
    """What the pipeline does; None for k and tau means "tune them on validation".

    Attributes:
        whiten: ``none`` (raw descriptors), ``pcaw`` (PCA-whitening to ``dim``, capped at what the
            database supports) or ``auto`` (whichever of raw, PCAw at the supported ``dim`` and
            at half of it scores the best validation GAP).
        dim: requested whitening dimension (the paper's 512).
        shrinkage: whitening shrinkage (1 full whitening, 0 plain PCA).
        k, tau: fixed classifier hyper-parameters, or None to tune both on validation.
        ks, taus: the tuning grid (the thesis' 9 x 12 by default).
        n_classes: N of the softmax (default: the distinct database labels).
        index: ``exact`` (the protocol), ``ivf`` (approximate faiss IVF-Flat) or ``ivfpq``
            (IVF-PQ fast-scan codes, the short list re-scored exactly:
            :mod:`artid.retrieval.compressed`).
        nprobe: IVF cells visited per query.
        rescore: ``ivfpq``'s short list, a multiple of the neighbours asked for.
        storage: ``float32``, or ``float16`` (database rows at half the memory and disk).
        use_gpu: search on the GPU; None = when faiss has one.
        qe_n, qe_alpha: alpha query expansion (:mod:`artid.retrieval.expansion`) with the top
            ``qe_n`` database neighbours weighted by similarity^``qe_alpha``; 0 = off (default),
            None = ``qe_n`` tuned on validation GAP over ``expansion.N_GRID`` (0 included).
        dba_n, dba_alpha: database-side augmentation, the same rule applied once to every
            database vector; 0 = off (default), None = tuned likewise (jointly with a None qe_n).
            Open ones are tuned after the whitening is chosen; fixed ones apply throughout.
        rerank: the re-ranking stage (:mod:`artid.retrieval.rerank`), or None for none.
    """

    whiten: str = "auto"
    dim: int = 512
    shrinkage: float = 1.0
    k: int | None = None
    tau: float | None = None
    ks: tuple[int, ...] = K_GRID
    taus: tuple[float, ...] = TAU_GRID
    n_classes: int | None = None
    index: str = "exact"
    nprobe: int = 32
    rescore: int = 4
    storage: str = "float32"
    use_gpu: bool | None = field(default=None, compare=False)
    qe_n: int | None = 0
    qe_alpha: float = 3.0
    dba_n: int | None = 0
    dba_alpha: float = 3.0
    rerank: RerankConfig | None = None

    def check(self) -> None:
        """Refuse settings that cannot work, naming the setting."""
        if self.whiten not in WHITEN_MODES:
            raise ArtidError(
                f"whiten must be one of {', '.join(WHITEN_MODES)}, got {self.whiten!r}"
            )
        if self.dim < 1:
            raise ArtidError(f"whitening dimension must be at least 1, got {self.dim}")
        if not 0.0 <= self.shrinkage <= 1.0:
            raise ArtidError(f"whitening shrinkage must be within [0, 1], got {self.shrinkage}")
        if (self.k is None) != (self.tau is None):
            raise ArtidError(
                "give both k and tau, or neither (then they are tuned on the validation queries)"
            )
        if self.k is not None and self.k < 1:
            raise ArtidError(f"k must be at least 1, got {self.k}")
        if self.tau is not None and not self.tau > 0:
            raise ArtidError(f"tau must be a positive temperature, got {self.tau}")
        if (
            any(t <= 0 for t in self.taus)
            or any(k < 1 for k in self.ks)
            or not self.ks
            or not self.taus
        ):
            raise ArtidError("the tuning grid needs k >= 1 and tau > 0 values")
        if self.index not in INDEX_KINDS:
            raise ArtidError(f"unknown index {self.index!r}: use one of {', '.join(INDEX_KINDS)}")
        if self.storage not in STORAGE_DTYPES:
            raise ArtidError(
                f"unknown storage {self.storage!r}: use one of {', '.join(STORAGE_DTYPES)}"
            )
        if self.nprobe < 1 or self.rescore < 1:
            raise ArtidError(
                f"nprobe and rescore must be at least 1: {self.nprobe}, {self.rescore}"
            )
        check_settings(self.qe_n, self.qe_alpha, self.dba_n, self.dba_alpha)
        if self.rerank is not None:
            self.rerank.check()

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("use_gpu")
        d["ks"], d["taus"] = list(self.ks), list(self.taus)
        return d

    @classmethod
    def from_json(cls, d: dict, use_gpu: bool | None = None) -> PipelineConfig:
        """The settings :meth:`to_json` wrote (TypeError / KeyError / ValueError on
        others)."""
        d = dict(d)
        d["ks"], d["taus"] = tuple(d["ks"]), tuple(d["taus"])
        if d.get("rerank") is not None:
            d["rerank"] = RerankConfig(**d["rerank"])
        return cls(**d, use_gpu=use_gpu)


@dataclass
class WhiteningChoice:
    """One whitening tried by ``auto``, its validation score and its paired z against the default
    (``val_z``: val GAP minus the default's in paired-bootstrap SEs; 0 for the default, None when
    there was nothing to compare; :func:`artid.retrieval.choosing.margin_choice`)."""

    whiten: bool
    dim: int
    val_gap: float | None = None
    val_z: float | None = None
    k: int | None = None
    tau: float | None = None
    projection: dict = field(default_factory=dict)


def whitening_candidates(config: PipelineConfig, parts: list[np.ndarray]) -> list[WhiteningChoice]:
    """The whitening choices to try: the configured one, or for ``auto`` PCAw at the supported
    dimension, at half of it, and raw descriptors, the default first (the one
    :func:`artid.retrieval.choosing.margin_choice` keeps unless another wins by its margin).

    The default is PCAw, unless the database is too small for the requested dimension (the cap
    of :func:`~artid.retrieval.projection.supported_dim` applies): then raw descriptors. Measured
    where the cap applied, raw descriptors won on test every time: a 211-image collection (raw
    7.9 against 6.0 GAP for PCAw at the 105-D cap), the issue's 199-image museum (23.0 against
    11.0 at 99-D), the 48-image test fixture (36.9 against 22.6); uncapped, on the demo (1,063
    images) and the real-image benchmark (1,712), PCAw 512 was the best fixed setting.
    """
    if config.whiten == "none":
        return [WhiteningChoice(False, 0)]
    n, width = parts[0].shape[0], min(p.shape[1] for p in parts)
    top = supported_dim(config.dim, n, width)
    if config.whiten == "pcaw":
        return [WhiteningChoice(True, top)]
    dims = [top] + ([top // 2] if top // 2 >= MIN_DIM else [])
    pcaw = [WhiteningChoice(True, d) for d in dims]
    if top < min(config.dim, width):  # capped by the number of database images
        return [WhiteningChoice(False, 0), *pcaw]
    return [*pcaw, WhiteningChoice(False, 0)]
