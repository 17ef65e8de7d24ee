"""`artid serve` follows its bundle: `index remove` / `index add` on the served bundle are served
without a restart, requests in flight finish on the generation they started with, and the
generation a server may still read (and its thumbnails) is not collected under it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from service_helpers import artwork, built_bundle, jpeg_bytes, photo_of

from artid.service import builder
from artid.service import bundle as bundles
from artid.service.api import create_app
from artid.service.following import BundleFollower
from artid.service.readers import LEASES, lease_path, leased_generations
from artid.service.recognizer import Recognizer

#: Seconds a test waits for the server to start or to follow a change (never reached when well).
PATIENCE = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _newcomer(folder: Path) -> Path:
    (folder / "newcomer").mkdir(parents=True)
    artwork(40).save(folder / "newcomer" / "0.jpg", quality=92)
    return folder


def _post(client, img) -> dict:
    r = client.post("/recognize", files={"image": ("p.jpg", jpeg_bytes(img), "image/jpeg")})
    assert r.status_code == 200, r.text
    return r.json()


def _wait_for(client, generation: str) -> dict:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        health = client.get("/health").json()
        if health.get("generation") == generation:
            return health
        time.sleep(0.1)
    raise AssertionError(f"the server still serves {health.get('generation')}, not {generation}")


@pytest.fixture
def bundle(tmp_path_factory, tmp_path: Path) -> Path:
    source, _ = built_bundle(tmp_path_factory)
    shutil.copytree(source, tmp_path / "bundle")
    return tmp_path / "bundle"


def test_a_running_artid_serve_follows_a_remove_and_an_add(bundle: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "artid", "serve", "--bundle", str(bundle), "--port", str(port)]
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        deadline = time.monotonic() + PATIENCE
        while True:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            try:
                health = client.get("/health").json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        first = bundles.read_manifest(bundle)["generation"]
        assert health["generation"] == first and health["artworks"] == 6
        before = _post(client, photo_of(artwork(2), 11))
        assert before["prediction"]["key"] == "art-2" and before["generation"] == first
        thumbnail = before["prediction"]["thumbnail"]
        assert client.get(thumbnail).status_code == 200

        builder.remove_from_bundle(bundle, ["art-2"])
        second = bundles.read_manifest(bundle)["generation"]
        assert (bundle / first).is_dir()  # the server's lease keeps what it may still read
        health = _wait_for(client, second)
        assert health["artworks"] == 5 and health["reload_error"] is None
        after = _post(client, photo_of(artwork(2), 11))
        assert after["generation"] == second
        assert "art-2" not in [m["key"] for m in after["matches"]]
        # a page shown from the answer before still gets its thumbnails
        r = client.get(thumbnail)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"

        builder.add_to_bundle(bundle, _newcomer(tmp_path / "more"), workers=0)
        third = bundles.read_manifest(bundle)["generation"]
        assert _wait_for(client, third)["artworks"] == 6
        added = _post(client, photo_of(artwork(40), 12))
        assert added["prediction"]["key"] == "newcomer" and added["accepted"]
        assert client.get(added["prediction"]["thumbnail"]).status_code == 200
    finally:
        server.terminate()
        server.wait(30)
    assert not lease_path(bundle, server.pid).exists()  # a server that stops gives it back


def test_a_request_in_flight_finishes_on_the_generation_it_started_with(bundle: Path) -> None:
    rec = Recognizer.from_bundle(bundle, optimize=False)
    entered, release = threading.Event(), threading.Event()
    real = rec.recognize

    def held(images):
        entered.set()
        assert release.wait(PATIENCE)
        return real(images)

    rec.recognize = held  # type: ignore[method-assign]
    first = rec.data.generation
    answers: dict = {}
    with TestClient(create_app(rec, bundle, follow=0.05)) as client:
        thread = threading.Thread(
            target=lambda: answers.update(_post(client, photo_of(artwork(2), 11)))
        )
        thread.start()
        assert entered.wait(PATIENCE)
        builder.remove_from_bundle(bundle, ["art-2"])
        second = bundles.read_manifest(bundle)["generation"]
        _wait_for(client, second)
        new = _post(client, photo_of(artwork(2), 11))  # the new generation, not held
        release.set()
        thread.join(PATIENCE)
    assert answers["generation"] == first and answers["prediction"]["key"] == "art-2"
    assert new["generation"] == second and new["prediction"]["key"] != "art-2"


def test_a_replaced_generation_is_kept_for_the_grace_period_only(bundle: Path) -> None:
    rec = Recognizer.from_bundle(bundle, optimize=False)
    first = str(rec.data.generation)
    removed = rec.data.thumbnails[rec.data.artwork_by_label()[2].label]
    follower = BundleFollower(bundle, rec, interval=60, grace=0.5)
    follower.start()  # the thread checks only every 60 s: the test calls refresh()
    try:
        builder.remove_from_bundle(bundle, ["art-2"])
        second = bundles.read_manifest(bundle)["generation"]
        assert follower.refresh() and follower.generation == second
        assert leased_generations(bundle) == {first, second}
        assert removed in follower.thumbnails()
        builder.remove_from_bundle(bundle, ["art-3"])  # the server still serves `second`
        third = bundles.read_manifest(bundle)["generation"]
        assert (bundle / first).is_dir() and (bundle / second).is_dir()
        assert (bundle / bundles.THUMBNAILS / removed).is_file()
        time.sleep(0.6)
        assert follower.refresh() and follower.generation == third
        assert removed not in follower.thumbnails()  # past the grace period
        assert leased_generations(bundle) == {second, third}
        builder.remove_from_bundle(bundle, ["art-4"])
        assert not (bundle / first).exists()
        assert not (bundle / bundles.THUMBNAILS / removed).exists()
    finally:
        follower.stop()
    assert not any((bundle / LEASES).iterdir())


def test_leases_of_processes_gone_or_lapsed_protect_nothing(bundle: Path, monkeypatch) -> None:
    from artid.files import write_json
    from artid.service import readers

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = readers._host()
    write_json(
        bundle / LEASES / f"{host}-{dead.pid}.json",
        {"host": host, "pid": dead.pid, "generations": ["gen-000001"], "time": 0},
    )
    old = bundle / LEASES / "elsewhere-1.json"
    write_json(old, {"host": "elsewhere", "pid": 1, "generations": ["gen-000002"], "time": 0})
    live = bundle / LEASES / "elsewhere-2.json"
    write_json(live, {"host": "elsewhere", "pid": 2, "generations": ["gen-000003"], "time": 0})
    (bundle / LEASES / "broken.json").write_text("{", encoding="utf-8")
    os.utime(old, (time.time() - readers.LEASE_TTL - 1,) * 2)
    assert leased_generations(bundle) == {"gen-000003"}
    assert sorted(p.name for p in (bundle / LEASES).iterdir()) == ["elsewhere-2.json"]
