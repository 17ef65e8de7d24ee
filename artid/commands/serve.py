"""``artid serve``: the recognition service (HTTP API and web page) for one index bundle."""

from __future__ import annotations

import argparse

HELP = "serve an index bundle over HTTP: POST /recognize, GET /health and a web page at /"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, help="index bundle folder (`artid index build`)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0 to let phones on the network reach it)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    parser.add_argument("--workers", type=int, default=1, help="recognitions running at once (threads)")
    parser.add_argument("--queue", type=int, default=8, help="recognitions that may wait; more get HTTP 503")
    parser.add_argument("--max-upload-mb", type=float, default=10.0, help="largest photo accepted, in MiB")
    parser.add_argument("--max-megapixels", type=float, default=40.0, help="largest photo accepted, in megapixels")
    parser.add_argument("--device", default="cpu", help="torch device for the model")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from artid.service.api import create_app
    from artid.service.recognizer import Recognizer
    from artid.service.upload import UploadLimits

    recognizer = Recognizer.from_bundle(args.bundle, device=args.device)
    limits = UploadLimits(max_bytes=int(args.max_upload_mb * 1024 * 1024),
                          max_pixels=int(args.max_megapixels * 1_000_000))
    app = create_app(recognizer, args.bundle, limits=limits, workers=args.workers, max_queue=args.queue)
    print(f"serving {recognizer.data.n_classes} artworks on http://{args.host}:{args.port}/ (Ctrl+C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
