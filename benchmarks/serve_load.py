"""Load test of the recognition service on loopback, against the recognizer called in-process.

A server (``artid serve``'s app under uvicorn) runs in a child process on 127.0.0.1; C
concurrent clients post photos to ``POST /recognize`` for a fixed time (and at most a fixed
number of requests), then the script reports throughput, p50/p95/p99 latency and how many
requests failed. The baseline, measured first in this process with the same photos, is the
recognizer called directly (decode + describe + search, no HTTP): the ratio shows what HTTP,
multipart parsing and the admission queue cost.

    python benchmarks/serve_load.py --bundle BUNDLE [--photos DIR] [--clients 4] [--seconds 20]

Without ``--photos`` the bundle's own thumbnails are the photos. Traffic never leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import sys
import time
from pathlib import Path

import numpy as np

from artid.service.capacity import DEFAULT_QUEUE, default_workers

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _serve(bundle: str, port: int, workers: int, queue: int) -> None:
    import logging

    import uvicorn

    from artid.service.api import create_app
    from artid.service.recognizer import Recognizer

    logging.basicConfig(level=logging.WARNING)
    app = create_app(Recognizer.from_bundle(bundle), bundle, workers=workers, max_queue=queue)
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


def _photos(bundle: Path, folder: str | None, limit: int) -> list[bytes]:
    from artid.service.collection import IMAGE_SUFFIXES

    if folder:
        paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        paths = sorted((bundle / "thumbnails").glob("*.jpg"))
    if not paths:
        sys.exit(f"no photos found in {folder or bundle / 'thumbnails'}")
    return [p.read_bytes() for p in paths[:limit]]


def _summary(latencies: list[float], seconds: float, failed: int) -> dict:
    lat = np.asarray(latencies) * 1000
    return {
        "requests": len(latencies) + failed,
        "ok": len(latencies),
        "failed": failed,
        "seconds": round(seconds, 2),
        "throughput_rps": round(len(latencies) / seconds, 2) if seconds else 0.0,
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
        "p95_ms": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
    }


def baseline(bundle: Path, photos: list[bytes], seconds: float, max_requests: int) -> dict:
    """The recognizer called in-process, one photo after another: decode + recognise."""
    from artid.service.recognizer import Recognizer
    from artid.service.upload import UploadLimits, decode_image

    rec = Recognizer.from_bundle(bundle)
    limits = UploadLimits()
    for data in photos:  # warm-up: the first pass over each image size is slower
        rec.recognize([decode_image(data, limits)])
    latencies = []
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds and i < max_requests:
        t = time.perf_counter()
        rec.recognize([decode_image(photos[i % len(photos)], limits)])
        latencies.append(time.perf_counter() - t)
        i += 1
    return _summary(latencies, time.perf_counter() - start, 0)


async def load(url: str, photos: list[bytes], clients: int, seconds: float, max_requests: int) -> dict:
    """C clients posting photos in a loop until the time or the request budget is spent."""
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    start = time.perf_counter()

    async def client(c: int, http: httpx.AsyncClient) -> None:
        nonlocal sent
        i = c
        while time.perf_counter() - start < seconds and sent < max_requests:
            sent += 1
            t = time.perf_counter()
            try:
                photo = photos[i % len(photos)]
                r = await http.post(f"{url}recognize", files={"image": ("p.jpg", photo, "image/jpeg")})
                ok = r.status_code == 200 and "prediction" in r.json()
                key = str(r.status_code)
            except httpx.HTTPError as exc:
                ok, key = False, type(exc).__name__
            if ok:
                latencies.append(time.perf_counter() - t)
            else:
                errors[key] = errors.get(key, 0) + 1
            i += clients

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        for data in photos:  # warm-up, as for the baseline
            await http.post(f"{url}recognize", files={"image": ("p.jpg", data, "image/jpeg")})
        start = time.perf_counter()
        await asyncio.gather(*(client(c, http) for c in range(clients)))
    out = _summary(latencies, time.perf_counter() - start, sum(errors.values()))
    out["errors"] = errors
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True, help="index bundle folder")
    parser.add_argument("--photos", help="folder of query photos (default: the bundle's thumbnails)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each measurement")
    parser.add_argument("--max-requests", type=int, default=5000, help="request budget of each measurement")
    parser.add_argument("--max-photos", type=int, default=50, help="distinct photos used (cycled)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="server: recognitions at once (default: `artid serve`'s, the CPU count)")
    parser.add_argument("--queue", type=int, default=DEFAULT_QUEUE,
                        help="server: waiting room (default: `artid serve`'s)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    bundle = Path(args.bundle)
    photos = _photos(bundle, args.photos, args.max_photos)
    print(f"{len(photos)} photos, {args.clients} clients, {args.seconds:g} s per measurement, loopback only")

    base = baseline(bundle, photos, args.seconds, args.max_requests)
    print(f"in-process recognizer : {base['throughput_rps']:7.2f} photos/s  p50 {base['p50_ms']} ms  "
          f"p95 {base['p95_ms']} ms  p99 {base['p99_ms']} ms  ({base['ok']} photos)")

    port = _free_port()
    ctx = mp.get_context("spawn")
    print(f"server: {args.workers} worker(s), queue {args.queue}")
    server = ctx.Process(target=_serve, args=(str(bundle), port, args.workers, args.queue), daemon=True)
    server.start()
    url = f"http://{HOST}:{port}/"
    try:
        import httpx

        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{url}health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or not server.is_alive():
                print("the server did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)
        http = asyncio.run(load(url, photos, args.clients, args.seconds, args.max_requests))
    finally:
        server.terminate()
        server.join(10)
    print(f"HTTP, {args.clients} clients      : {http['throughput_rps']:7.2f} photos/s  p50 {http['p50_ms']} ms  "
          f"p95 {http['p95_ms']} ms  p99 {http['p99_ms']} ms  ({http['ok']} ok, {http['failed']} failed "
          f"{http['errors'] or ''})")
    ratio = http["throughput_rps"] / base["throughput_rps"] if base["throughput_rps"] else float("nan")
    print(f"throughput ratio HTTP / in-process: {ratio:.2f}")
    print("no request failed" if http["failed"] == 0 else f"{http['failed']} request(s) FAILED")
    if args.json:
        Path(args.json).write_text(json.dumps({"baseline": base, "http": http, "ratio": ratio,
                                               "clients": args.clients, "photos": len(photos)}, indent=1))
    return 0 if http["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
