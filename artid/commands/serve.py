"""``artid serve``: the recognition service (HTTP API and web page) for one index bundle.

The web service's libraries (FastAPI, Starlette, AnyIO, uvicorn, python-multipart) are the extra
``serve`` (``pip install 'artid[serve]'``); without them the command says so instead of failing
with a traceback.

The server follows its bundle (:mod:`artid.service.following`): ``artid index add`` / ``remove`` /
``build`` on the served bundle are served within ``--follow`` seconds, without a restart.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from artid.commands.argtypes import non_negative_int, positive_float, positive_int, tcp_port
from artid.commands.common import add_bundle_query_arguments
from artid.commands.runtime_options import add_runtime_arguments
from artid.errors import ArtidError

HELP = "serve an index bundle over HTTP: POST /recognize, GET /health and a web page at /"

#: Top-level modules of the ``serve`` extra -> the distribution that provides each.
SERVE_MODULES = {
    "fastapi": "fastapi",
    "starlette": "starlette",
    "anyio": "anyio",
    "uvicorn": "uvicorn",
    "python_multipart": "python-multipart",
}
EXTRA_MESSAGE = "artid serve needs the web service extra: pip install 'artid[serve]'"


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from artid.service.capacity import DEFAULT_QUEUE, FOLLOW_INTERVAL, default_workers

    add_bundle_query_arguments(parser)
    add_runtime_arguments(parser, served=True)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (0.0.0.0 to let phones on the network reach it)",
    )
    parser.add_argument("--port", type=tcp_port, default=8000, help="TCP port (1-65535)")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=default_workers(),
        help="recognitions running at once (threads; the default is this machine's CPU count); "
        "raise it on a bigger machine or a GPU",
    )
    parser.add_argument(
        "--queue",
        type=non_negative_int,
        default=DEFAULT_QUEUE,
        help="recognitions that may wait for a worker; more at once get HTTP 503 with "
        "Retry-After (raise it for larger bursts of visitors, at the cost of longer waits)",
    )
    parser.add_argument(
        "--follow",
        type=non_negative_float,
        default=FOLLOW_INTERVAL,
        metavar="SECONDS",
        help="check the bundle this often and serve each new generation (what index add / "
        "remove / build commit) without a restart; requests in flight finish on the old one "
        "(0: serve the generation loaded at start)",
    )
    parser.add_argument(
        "--max-upload-mb", type=positive_float, default=10.0, help="largest photo accepted, in MiB"
    )
    parser.add_argument(
        "--max-megapixels",
        type=positive_float,
        default=40.0,
        help="largest photo accepted, in megapixels",
    )


def import_web_service() -> tuple[Any, Any]:
    """``(create_app, uvicorn)``, or the extra to install when one of its modules is missing.

    Raises:
        ArtidError: a module of the ``serve`` extra cannot be imported; the message names it.
    """
    try:
        import python_multipart  # noqa: F401  (Starlette parses uploads with it, when one comes)
        import uvicorn

        from artid.service.api import create_app
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in SERVE_MODULES:
            raise
        raise ArtidError(
            f"{EXTRA_MESSAGE} (module {top!r} of {SERVE_MODULES[top]!r} is not installed)"
        ) from None
    return create_app, uvicorn


def run(args: argparse.Namespace) -> int:
    create_app, uvicorn = import_web_service()

    from artid.devices import resolve_device
    from artid.service.recognizer import Recognizer
    from artid.service.upload import UploadLimits

    device = str(resolve_device(args.device))
    recognizer = Recognizer.from_bundle(
        args.bundle, device=device, crop=not args.no_crop, rerank=args.rerank,
        runtime=args.runtime, precision=args.precision,
    )
    limits = UploadLimits(
        max_bytes=max(1, int(args.max_upload_mb * 1024 * 1024)),
        max_pixels=max(1, int(args.max_megapixels * 1_000_000)),
    )
    app = create_app(
        recognizer,
        args.bundle,
        limits=limits,
        workers=args.workers,
        max_queue=args.queue,
        follow=args.follow or None,
    )
    rerank = recognizer.reranker
    print(
        f"serving {recognizer.data.n_classes} artworks on http://{args.host}:{args.port}/ on "
        f"{device} with {args.workers} worker(s) and a queue of {args.queue}"
        + (f", re-ranking the top {rerank.top}" if rerank is not None else "")
        + (f"; following {args.bundle} every {args.follow:g} s" if args.follow else "")
        + " (Ctrl+C stops)"
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
