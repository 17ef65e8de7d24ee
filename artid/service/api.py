"""The HTTP API and web page of the recognition service (FastAPI).

Routes:
    ``GET /``                  the web page (upload a photo or take one with the phone camera)
    ``POST /recognize``        a photo (multipart field ``image``, or a raw ``image/*`` body)
                               -> JSON
    ``GET /health``            liveness and what is loaded
    ``GET /thumbnails/{name}`` an artwork's thumbnail, only names the bundle lists
    ``GET /static/...``        the page's script and style sheet

One :class:`~artid.service.recognizer.Recognizer` serves every request; with ``follow`` (what
``artid serve`` does) it is the recognizer of the bundle's current generation
(:class:`~artid.service.following.BundleFollower`): a request takes the one current when it starts
and finishes on it, and ``/health`` names the generation served. Decoding
and inference run in worker threads, at most ``workers`` at once (default: the
machine's CPU count); at most ``max_queue`` more requests wait (default
:data:`~artid.service.capacity.DEFAULT_QUEUE`), and any beyond that are answered 503
at once (with ``Retry-After``) instead of piling up. Every error is JSON:
``{"detail": "<message>", "status": <code>}``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from artid import __version__
from artid.errors import ArtidError
from artid.service.bundle import THUMBNAIL_RE, THUMBNAILS
from artid.service.capacity import DEFAULT_QUEUE, default_workers
from artid.service.following import BundleFollower
from artid.service.recognizer import Recognizer
from artid.service.upload import UploadError, UploadLimits, check_content_type, decode_image

__all__ = ["DEFAULT_QUEUE", "create_app", "default_workers"]

log = logging.getLogger(__name__)

#: Room for the multipart envelope around the image (boundaries, headers).
MULTIPART_OVERHEAD = 64 * 1024
STATIC_DIR = Path(str(resources.files("artid.service") / "static"))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message, "status": status}, status_code=status, headers=headers)


class _Admission:
    """Counts requests admitted to recognition; refuses beyond ``workers + max_queue``."""

    def __init__(self, workers: int, max_queue: int) -> None:
        self.limiter = anyio.CapacityLimiter(workers)
        self.capacity = workers + max_queue
        self.in_flight = 0
        self.handled = 0
        self.refused = 0

    def try_enter(self) -> bool:
        # one event loop: no other coroutine runs between the test and the increment
        if self.in_flight >= self.capacity:
            self.refused += 1
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1
        self.handled += 1


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadError(413, f"the request is {declared} bytes; at most {limit} are accepted")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise UploadError(413, f"the request exceeds {limit} bytes")
    return bytes(body)


async def _image_bytes(request: Request, limits: UploadLimits) -> bytes:
    """The uploaded photo's bytes from a multipart form (field ``image``) or a raw image body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _read_body(request, limits.max_bytes + MULTIPART_OVERHEAD)
    if ctype == "multipart/form-data":

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
        except (StarletteHTTPException, ValueError, KeyError) as exc:
            raise UploadError(
                400, f"malformed multipart form ({getattr(exc, 'detail', exc)})"
            ) from None
        part = form.get("image")
        if not isinstance(part, UploadFile):
            raise UploadError(422, "send the photo as a file in the multipart field 'image'")
        check_content_type(part.content_type)
        data = await part.read()
        await form.close()
        return data
    check_content_type(ctype)
    return body


def create_app(
    recognizer: Recognizer,
    bundle_dir: str | Path,
    limits: UploadLimits | None = None,
    workers: int | None = None,
    max_queue: int = DEFAULT_QUEUE,
    follow: float | None = None,
) -> FastAPI:
    """Build the service around a loaded recognizer.

    Args:
        recognizer: the shared model + index (of the bundle's generation when it was loaded).
        bundle_dir: the bundle folder (thumbnails are served from its ``thumbnails/`` only).
        limits: upload limits (default :class:`UploadLimits`).
        workers: recognitions running at once (threads); None = :func:`default_workers`
            (the CPUs this process may use).
        max_queue: recognitions allowed to wait for a worker; more get 503.
        follow: check the bundle every ``follow`` seconds while the app runs (its lifespan) and
            serve each new generation; None: serve ``recognizer`` only.
    """
    if workers is None:
        workers = default_workers()
    if workers < 1 or max_queue < 0:
        raise ArtidError(
            f"the service needs at least 1 worker and a queue of 0 or more "
            f"(got workers={workers}, queue={max_queue})"
        )
    limits = limits or UploadLimits()
    thumbs_dir = (Path(bundle_dir) / THUMBNAILS).resolve()
    thumbnails = set(recognizer.data.thumbnails.values())
    admission = _Admission(workers, max_queue)
    started = time.time()
    follower = None if follow is None else BundleFollower(bundle_dir, recognizer, follow)

    def current() -> Any:
        return recognizer if follower is None else follower.recognizer

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if follower is not None:
            follower.start()
        try:
            yield
        finally:
            if follower is not None:
                follower.stop()

    app = FastAPI(
        title="artid recognition service",
        version=__version__,
        description="Recognise which artwork of the collection a photo shows.",
        lifespan=lifespan,
    )
    app.state.recognizer = recognizer
    app.state.follower = follower
    app.state.admission = admission

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return _error(422, f"invalid request: {where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(UploadError)
    async def upload_error(_: Request, exc: UploadError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        rec = current()
        data = rec.data
        generation = {"generation": data.generation, "follows_bundle": None}
        return {
            "status": "ok",
            "version": __version__,
            "artworks": data.n_classes,
            "images": data.n_images,
            "model": " + ".join(
                str(m.get("spec", {}).get("name", m.get("ref"))) for m in data.models
            ),
            "threshold": rec.threshold,
            "crop": crop.spec() if (crop := getattr(rec, "crop", None)) is not None else None,
            "rerank": rr.top if (rr := getattr(rec, "reranker", None)) is not None else None,
            "target_false_accept": data.calibration.target_false_accept,
            "in_flight": admission.in_flight,
            "capacity": admission.capacity,
            "handled": admission.handled,
            "refused_busy": admission.refused,
            "uptime_s": round(time.time() - started, 1),
            **(generation if follower is None else follower.health()),
        }

    @app.get("/thumbnails/{name}", name="thumbnail")
    async def thumbnail(name: str) -> FileResponse:
        served = thumbnails if follower is None else follower.thumbnails()
        if not THUMBNAIL_RE.match(name) or name not in served:
            raise StarletteHTTPException(404, f"no thumbnail {name!r}")
        path = (thumbs_dir / name).resolve()
        if path.parent != thumbs_dir or not path.is_file():
            raise StarletteHTTPException(404, f"no thumbnail {name!r}")
        return FileResponse(
            path, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"}
        )

    @app.post("/recognize")
    async def recognize(request: Request) -> JSONResponse:
        t0 = time.perf_counter()
        data = await _image_bytes(request, limits)
        if not admission.try_enter():
            return _error(503, "the service is busy; try again in a moment", {"Retry-After": "1"})
        rec = current()  # the request finishes on the generation it started with
        try:
            t1 = time.perf_counter()
            waited: dict[str, float] = {}

            def work() -> Any:
                t2 = time.perf_counter()
                waited["queue"] = 1000 * (t2 - t1)
                img = decode_image(data, limits)
                waited["decode"] = 1000 * (time.perf_counter() - t2)
                return rec.recognize([img])[0]

            result = await anyio.to_thread.run_sync(work, limiter=admission.limiter)
        finally:
            admission.leave()
        result.timing = {
            "read": 1000 * (t1 - t0),
            **waited,
            **result.timing,
            "total": 1000 * (time.perf_counter() - t0),
        }
        body = result.to_json(lambda n: app.url_path_for("thumbnail", name=n))
        body["generation"] = getattr(rec.data, "generation", None)
        return JSONResponse(body)

    return app
