"""A server that follows its bundle: each new generation is served without a restart.

``artid index add`` / ``remove`` / ``build`` commit a new generation of a bundle while ``artid
serve`` runs on it. A :class:`BundleFollower` checks the bundle's ``bundle.json`` every
``interval`` seconds (a thread; ``artid serve --follow SECONDS``) and, when it names another
generation, loads it beside the one being served and then swaps them: a request takes the
recognizer of the moment it starts and finishes on it, so requests in flight finish on the
generation they started with, and every request after the swap gets the new one. The models
(and the attributes run) are kept when the new generation names the same ones, so a swap costs
the reading of the pipeline's files (memory-mapped), not a model load. A generation that cannot
be loaded is logged and reported by ``/health`` (``reload_error``), and the old one is served
until a later one loads.

What the follower may still read is protected from the bundle's garbage collection by its reader
lease (:mod:`artid.service.readers`): the generation it serves, the one it is loading, and, for
:data:`GRACE` seconds after a swap, the one it served before, whose thumbnails it keeps serving
for that long (a page shown from an answer of the old generation still fetches them: the page
loads thumbnails lazily, as it scrolls).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from artid.errors import ArtidError
from artid.service.bundle import load_bundle, read_manifest
from artid.service.bundle_runtime import recorded
from artid.service.capacity import FOLLOW_INTERVAL
from artid.service.readers import LEASE_REFRESH, drop_lease, write_lease
from artid.service.recognizer import Recognizer
from artid.service.serving import load_models, load_tagger, serving_pipeline

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = FOLLOW_INTERVAL
#: Seconds the generation served before a swap (and its thumbnails) stays readable.
GRACE = 600.0


def reloaded(rec: Recognizer, bundle: Path) -> Recognizer:
    """A recognizer of the bundle's current generation with ``rec``'s settings, sharing its models
    and attributes run when the generation names the same ones."""
    data = load_bundle(bundle)
    asked = rec.asked
    serving_pipeline(data, asked["rerank"])
    embedders: Any = rec.embedders
    if data.models != rec.data.models:
        embedders = load_models(bundle, data, rec.device, bool(asked.get("optimize", True)))
    tagger = rec.tagger if data.attributes == rec.data.attributes else load_tagger(bundle, data)
    new = Recognizer(
        data,
        embedders,
        device=rec.device,
        top=asked["top"],
        tagger=tagger,
        crop=asked["crop"],
        rerank=asked["rerank"],
    )
    new.asked = dict(asked)
    if embedders is rec.embedders and recorded(data.extraction) == recorded(rec.data.extraction):
        new.inference, new.runtime = rec.inference, rec.runtime
    else:
        new.use_runtime(bundle, asked.get("runtime"), asked.get("precision"))
    return new


class BundleFollower:
    """The recognizer of a bundle's current generation, kept current by a thread.

    Args:
        bundle: the bundle folder.
        recognizer: the recognizer loaded at start (of the bundle's generation then).
        interval: seconds between checks of ``bundle.json``.
        grace: seconds a replaced generation and its thumbnails stay readable.
    """

    def __init__(
        self,
        bundle: str | Path,
        recognizer: Recognizer,
        interval: float = DEFAULT_INTERVAL,
        grace: float = GRACE,
    ) -> None:
        if not interval > 0:
            raise ArtidError(f"the bundle is checked every interval > 0 seconds, got {interval}")
        self.bundle = Path(bundle)
        self.interval, self.grace = float(interval), float(grace)
        self._current = recognizer
        #: (generation, its thumbnails, when it was replaced), most recent last
        self._replaced: list[tuple[str, frozenset[str], float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lease: tuple[str, ...] = ()
        self._lease_time = 0.0
        self.error: str | None = None
        self.loaded_at = time.time()
        self.swaps = 0

    @property
    def recognizer(self) -> Recognizer:
        """The recognizer a request starting now uses."""
        return self._current

    @property
    def generation(self) -> str | None:
        return self._current.data.generation

    def thumbnails(self) -> set[str]:
        """The thumbnails served: the current generation's and those of generations replaced less
        than ``grace`` seconds ago."""
        now = time.time()
        names = set(self._current.data.thumbnails.values())
        for _, thumbs, when in list(self._replaced):
            if now - when < self.grace:
                names |= thumbs
        return names

    def _renew(self, loading: str | None = None, force: bool = False) -> None:
        """Rewrite the lease when what it names changed, or every :data:`LEASE_REFRESH` s."""
        now = time.time()
        self._replaced = [r for r in self._replaced if now - r[2] < self.grace]
        gens = [g for g in (self.generation, loading) if g] + [g for g, _, _ in self._replaced]
        names = tuple(sorted(set(gens)))
        if force or names != self._lease or now - self._lease_time > LEASE_REFRESH:
            write_lease(self.bundle, list(names))
            self._lease, self._lease_time = names, now

    def refresh(self) -> bool:
        """Check the bundle once; swap to its current generation when it names another one.

        Returns:
            Whether a new generation is now served.
        """
        with self._lock:
            failed = None
            for _ in range(3):  # a generation replaced while it was being loaded: the next one
                try:
                    gen = str(read_manifest(self.bundle).get("generation"))
                except ArtidError as exc:
                    self.error = str(exc)
                    self._renew()
                    return False
                if gen == failed:
                    break
                if gen == self.generation:
                    self.error = None
                    self._renew()
                    return False
                self._renew(loading=gen)  # before reading it: no collection takes it meanwhile
                try:
                    new = reloaded(self._current, self.bundle)
                except Exception as exc:  # keep serving the old generation, say why
                    self.error = f"generation {gen} could not be loaded: {exc}"
                    failed = gen
                    continue
                old = self._current
                replaced = frozenset(old.data.thumbnails.values())
                self._replaced.append((str(old.data.generation), replaced, time.time()))
                self._current, self.error = new, None
                self.loaded_at, self.swaps = time.time(), self.swaps + 1
                self._renew(force=True)
                log.info("serving %s of %s (was %s)", gen, self.bundle, old.data.generation)
                return True
            log.error("bundle %s: %s; still serving %s", self.bundle, self.error, self.generation)
            self._renew()
            return False

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # the thread must outlive any one failed check
                log.exception("bundle %s: checking for a new generation failed", self.bundle)

    def start(self) -> None:
        """Take the lease and start checking the bundle every ``interval`` seconds."""
        with self._lock:
            self._renew(force=True)
        if not (self.bundle / str(self.generation)).is_dir():
            self.refresh()  # collected between its loading and the lease: serve the current one
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bundle-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop checking and give the lease back."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(5.0, 2 * self.interval))
            self._thread = None
        drop_lease(self.bundle)

    def health(self) -> dict[str, Any]:
        """What ``/health`` says of the generation served."""
        return {
            "generation": self.generation,
            "follows_bundle": self.interval,
            "generation_loaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
            "generations_swapped": self.swaps,
            "reload_error": self.error,
        }
