"""The synthetic benchmark's settings: :class:`SynthConfig`, and the Met figures behind defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from artid.errors import ArtidError

#: The Met's validation set: 129 of its 1,132 Met queries (about 11%).
MET_VAL_QUERIES = 129
MET_VAL_SHARE = 0.1
#: The largest val share the default gives to small benchmarks (test keeps the majority).
MAX_AUTO_VAL_SHARE = 0.4


@dataclass(frozen=True)
class SynthConfig:
    """Size and shape of a synthetic benchmark.

    Attributes:
        classes: exhibits in the database (the Met has 224,408).
        seed: everything written is a function of the seed and the other content fields.
        image_size: longer side of every image in pixels (the Met ships 500). Measured with the
            offline EfficientNet-Lite0 (``artid demo`` defaults: 600 classes, 350 Met queries,
            8 distractors per query): at 256 px the paper's orderings hold (multi-scale and
            PCA-whitening help, k=1 halves GAP); at 192 px whitening gained nothing (the half
            scale leaves 96 px), so use 192 px for smoke runs only.
        met_queries: visitor photos of exhibits, val + test (default: 30% of the classes,
            at most 1,132 as in the Met).
        val_share: share of the query classes that go to val (the rest to test). Default: the
            Met's share (about 10%) where that gives val the Met's 129 Met queries, else as much
            as needed for 129, at most 40%: tuning k and tau on a few dozen queries is noise.
        distractor_ratio: distractors per Met query in each split (the Met test set: ~18).
        other_share: share of the distractors that are other artworks (the rest non-art).
        mini_share: share of the classes in the mini database (it always holds every query class).
        single_share: share of classes with a single studio photo (the Met: about 60%).
        workers: rendering processes (does not change the output).
        progress: show a progress bar.
    """

    classes: int = 1000
    seed: int = 0
    image_size: int = 500
    met_queries: int | None = None
    val_share: float | None = None
    distractor_ratio: float = 18.0
    other_share: float = 0.565
    mini_share: float = 0.15
    single_share: float = 0.6
    workers: int = 1
    progress: bool = True

    @property
    def n_met_queries(self) -> int:
        if self.met_queries is not None:
            return self.met_queries
        return min(1132, max(10, int(round(0.3 * self.classes))))

    @property
    def n_val_share(self) -> float:
        """The val share in use (``val_share``, or the default described above)."""
        if self.val_share is not None:
            return self.val_share
        return float(
            min(MAX_AUTO_VAL_SHARE, max(MET_VAL_SHARE, MET_VAL_QUERIES / self.n_met_queries))
        )

    def content(self) -> dict[str, Any]:
        """The fields that determine the output (everything but workers and progress)."""
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("workers", "progress")
        }
        out["met_queries"] = self.n_met_queries
        out["val_share"] = self.n_val_share
        return out

    def validate(self) -> None:
        """Raise ArtidError naming the first field out of range."""
        if self.classes < 10:
            raise ArtidError(
                f"classes must be at least 10 (val and test need classes of their own), "
                f"got {self.classes}"
            )
        if not 32 <= self.image_size <= 4096:
            raise ArtidError(
                f"image_size must be between 32 and 4096 pixels, got {self.image_size}"
            )
        if self.seed < 0:
            raise ArtidError(f"seed must be non-negative, got {self.seed}")
        if not 2 <= self.n_met_queries:
            raise ArtidError(
                "met_queries must be at least 2 (one for val, one for test), "
                f"got {self.n_met_queries}"
            )
        for name in ("val_share", "other_share", "mini_share", "single_share"):
            value = getattr(self, name)
            if value is None and name == "val_share":
                continue
            if not 0.0 <= value <= 1.0:
                raise ArtidError(f"{name} must be between 0 and 1, got {value}")
        if self.distractor_ratio < 0:
            raise ArtidError(f"distractor_ratio must be non-negative, got {self.distractor_ratio}")
        if self.workers < 1:
            raise ArtidError(f"workers must be at least 1, got {self.workers}")
