"""``artid serve``: the recognition service (HTTP API and web page) for one index bundle."""

from __future__ import annotations

import argparse

from artid.commands.argtypes import non_negative_int, positive_float, positive_int, tcp_port

HELP = "serve an index bundle over HTTP: POST /recognize, GET /health and a web page at /"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from artid.service.capacity import DEFAULT_QUEUE, default_workers

    parser.add_argument("--bundle", required=True, help="index bundle folder (`artid index build`)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0 to let phones on the network reach it)")
    parser.add_argument("--port", type=tcp_port, default=8000, help="TCP port (1-65535)")
    parser.add_argument("--workers", type=positive_int, default=default_workers(),
                        help="recognitions running at once (threads; the default is this machine's CPU count); "
                             "raise it on a bigger machine or a GPU")
    parser.add_argument("--queue", type=non_negative_int, default=DEFAULT_QUEUE,
                        help="recognitions that may wait for a worker; more at once get HTTP 503 with Retry-After "
                             "(raise it for larger bursts of visitors, at the cost of longer waits)")
    parser.add_argument("--max-upload-mb", type=positive_float, default=10.0, help="largest photo accepted, in MiB")
    parser.add_argument("--max-megapixels", type=positive_float, default=40.0,
                        help="largest photo accepted, in megapixels")
    parser.add_argument("--device", default="cpu", help="torch device for the model")
    parser.add_argument("--no-crop", action="store_true",
                        help="describe whole photos even when the bundle was built with --crop cam|centre (its "
                             "threshold was calibrated on cropped photos)")
    parser.add_argument("--rerank", type=non_negative_int, metavar="K",
                        help="verify each photo's K nearest database images with SIFT (none: the bundle's K; "
                             "0: off; needs a bundle built with `index build --rerank K`)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from artid.service.api import create_app
    from artid.service.recognizer import Recognizer
    from artid.service.upload import UploadLimits

    recognizer = Recognizer.from_bundle(args.bundle, device=args.device, crop=not args.no_crop, rerank=args.rerank)
    limits = UploadLimits(max_bytes=max(1, int(args.max_upload_mb * 1024 * 1024)),
                          max_pixels=max(1, int(args.max_megapixels * 1_000_000)))
    app = create_app(recognizer, args.bundle, limits=limits, workers=args.workers, max_queue=args.queue)
    print(f"serving {recognizer.data.n_classes} artworks on http://{args.host}:{args.port}/ with {args.workers} "
          f"worker(s) and a queue of {args.queue}"
          + (f", re-ranking the top {recognizer.reranker.top}" if recognizer.reranker is not None else "")
          + " (Ctrl+C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
