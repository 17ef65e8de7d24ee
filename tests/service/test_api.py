"""The HTTP API: recognition, "not recognised", every refused request as JSON 4xx, the busy 503."""

from __future__ import annotations

import asyncio
import io
import threading

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from service_helpers import TITLES, artwork, built_bundle, distractor, jpeg_bytes, photo_of

from artid.service.api import create_app
from artid.service.recognizer import Recognizer
from artid.service.upload import UploadLimits

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    bundle, _ = built_bundle(tmp_path_factory)
    recognizer = Recognizer.from_bundle(bundle)
    app = create_app(
        recognizer, bundle, limits=UploadLimits(max_bytes=200_000, max_pixels=1_000_000)
    )
    with TestClient(app) as client:
        yield client, recognizer, bundle


def post_image(client, data: bytes, ctype: str = "image/jpeg", name: str = "photo.jpg"):
    return client.post("/recognize", files={"image": (name, data, ctype)})


def assert_healthy(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = post_image(client, jpeg_bytes(photo_of(artwork(4), 77)))
    assert r.status_code == 200 and r.json()["prediction"]["key"] == "art-4"


def test_recognises_a_photo_of_an_artwork(service):
    client, recognizer, _ = service
    r = post_image(client, jpeg_bytes(photo_of(artwork(2), 31)))
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] is True
    assert body["prediction"]["key"] == "art-2" and body["recognised"] == TITLES[2]
    assert (
        body["prediction"]["artist"] == "Painter 2"
        and body["prediction"]["url"] == "https://example.org/2"
    )
    assert body["score"] > body["threshold_score"] == pytest.approx(recognizer.threshold_score)
    assert (
        body["confidence"] >= body["threshold"] == recognizer.threshold
    )  # both may round to 1.0: the score decides
    assert len(body["matches"]) == 5 and body["matches"][0]["key"] == "art-2"
    assert {"read", "queue", "decode", "embed", "search", "total"} <= set(body["timing_ms"])
    thumb = client.get(body["prediction"]["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size[0] > 0


def test_raw_image_body_is_accepted(service):
    client, _, _ = service
    r = client.post(
        "/recognize",
        content=jpeg_bytes(photo_of(artwork(5), 8)),
        headers={"content-type": "image/jpeg"},
    )
    assert r.status_code == 200 and r.json()["prediction"]["key"] == "art-5"


def test_distractor_is_not_recognised(service):
    client, _, _ = service
    buf = io.BytesIO()
    distractor(77).save(buf, format="PNG")
    body = post_image(client, buf.getvalue(), "image/png", "street.png").json()
    assert body["accepted"] is False and body["recognised"] is None
    assert body["score"] <= body["threshold_score"] and body["confidence"] <= body["threshold"]
    assert len(body["matches"]) == 5  # the closest artworks are still listed


def _bomb_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (4000, 4000)).save(buf, format="PNG")  # 16 MP of zeros: a few kB on the wire
    return buf.getvalue()


@pytest.mark.parametrize(
    "make, ctype, status, words",
    [
        (lambda: b"", "image/jpeg", 400, "empty"),
        (lambda: b"hello, I am not a picture", "text/plain", 415, "content type"),
        (lambda: b"hello, I am not a picture" * 10, "image/jpeg", 415, "not an image"),
        (
            lambda: jpeg_bytes(photo_of(artwork(1), 1))[:300],
            "image/jpeg",
            400,
            "truncated",
        ),  # in the header
        (
            lambda: jpeg_bytes(photo_of(artwork(1), 1))[:2000],
            "image/jpeg",
            400,
            "truncated",
        ),  # in the pixels
        (lambda: b"\xff" * 300_000, "image/jpeg", 413, "bytes"),
        (_bomb_png, "image/png", 413, "pixels"),
    ],
)
def test_bad_uploads_get_json_4xx_and_the_service_stays_healthy(
    service, make, ctype, status, words
):
    client, _, _ = service
    r = post_image(client, make(), ctype)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["status"] == status and words in r.json()["detail"]
    assert_healthy(client)


def test_missing_field_and_wrong_body(service):
    client, _, _ = service
    r = client.post("/recognize", files={"photo": ("p.jpg", jpeg_bytes(artwork(0)), "image/jpeg")})
    assert r.status_code == 422 and "'image'" in r.json()["detail"]
    r = client.post("/recognize", json={"image": "x"})
    assert r.status_code == 415
    r = client.post(
        "/recognize", content=b"--x\r\ngarbage", headers={"content-type": "multipart/form-data"}
    )
    assert r.status_code == 400 and "malformed multipart" in r.json()["detail"]
    r = client.get("/recognize")
    assert r.status_code == 405 and r.json()["status"] == 405
    assert_healthy(client)


@pytest.mark.parametrize(
    "path",
    [
        "/thumbnails/..%2Fbundle.json",
        "/thumbnails/%2e%2e%2fbundle.json",
        "/thumbnails/..%2F..%2F..%2Fetc%2Fpasswd",
        "/thumbnails/bundle.json",
        "/thumbnails/0123456789abcdef0123456789abcdef.jpg",  # well-formed, but no artwork's
        "/thumbnails/../bundle.json",
        "/static/../bundle.json",
        "/static/..%2F..%2Fbundle.json",
    ],
)
def test_path_traversal_gets_404(service, path):
    client, _, _ = service
    r = client.get(path)
    assert r.status_code == 404
    assert b"generation" not in r.content and b"root:" not in r.content
    assert_healthy(client)


def test_web_page_and_assets(service):
    client, _, _ = service
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'accept="image/*"' in page.text and 'capture="environment"' in page.text
    assert "http" not in page.text.replace("https://", "").split("<body>")[0]  # nothing from a CDN
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    health = client.get("/health").json()
    assert health["artworks"] == 6 and health["images"] == 6


def test_busy_service_answers_503_instead_of_queueing(service):
    _, recognizer, bundle = service
    release = threading.Event()
    entered = threading.Event()

    class Slow:
        """The real recognizer, held up until the test releases it."""

        data, threshold = recognizer.data, recognizer.threshold

        def recognize(self, images):
            entered.set()
            release.wait(30)
            return recognizer.recognize(images)

    app = create_app(Slow(), bundle, workers=1, max_queue=1)
    photo = jpeg_bytes(photo_of(artwork(3), 5))

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            def send():
                return client.post("/recognize", files={"image": ("p.jpg", photo, "image/jpeg")})

            first = asyncio.create_task(send())
            second = asyncio.create_task(send())  # waits in the queue
            while not entered.is_set():
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            third = await send()  # capacity 2 is used up
            health = (await client.get("/health")).json()
            release.set()
            return third, health, await first, await second

    third, health, first, second = asyncio.run(scenario())
    assert third.status_code == 503 and third.headers["retry-after"] == "1"
    assert third.json()["status"] == 503
    assert health["in_flight"] == 2 and health["capacity"] == 2 and health["refused_busy"] == 1
    assert first.status_code == second.status_code == 200
    assert first.json()["prediction"]["key"] == "art-3"


def test_default_service_answers_a_burst_of_20_concurrent_photos(service):
    _, recognizer, bundle = service
    release = threading.Event()

    class Held:
        """The real recognizer, held up until every request of the burst is admitted or refused."""

        data, threshold = recognizer.data, recognizer.threshold

        def recognize(self, images):
            assert release.wait(60)
            return recognizer.recognize(images)

    app = create_app(Held(), bundle)  # the defaults `artid serve` uses
    photos = [jpeg_bytes(photo_of(artwork(i % 6), 200 + i)) for i in range(20)]
    with TestClient(app) as client:
        answers: list = [None] * 20

        def send(i: int) -> None:
            answers[i] = post_image(client, photos[i])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        admission = app.state.admission
        while admission.in_flight + admission.refused < 20 and any(t.is_alive() for t in threads):
            release.wait(0.01)  # every request is either waiting for a worker or refused
        release.set()
        for t in threads:
            t.join(60)
    assert [a.status_code for a in answers] == [200] * 20
    assert [a.json()["prediction"]["key"] for a in answers] == [f"art-{i % 6}" for i in range(20)]


def test_default_service_runs_one_recognition_per_cpu_and_queues_the_default_number(
    service, monkeypatch
):
    """`artid serve`'s defaults on a process allowed 2 CPUs: 2 recognitions at once, 64 waiting,
    the next request of a burst answered 503 at once, every admitted one answered."""
    from artid.service.api import DEFAULT_QUEUE

    _, recognizer, bundle = service
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 5}, raising=False)
    release, lock = threading.Event(), threading.Lock()
    running = {"now": 0, "most": 0}

    class Held:
        """The real recognizer, held up until the whole burst has been admitted or refused."""

        data, threshold = recognizer.data, recognizer.threshold

        def recognize(self, images):
            with lock:
                running["now"] += 1
                running["most"] = max(running["most"], running["now"])
            assert release.wait(60)
            with lock:
                running["now"] -= 1
            return recognizer.recognize(images)

    app = create_app(Held(), bundle)
    n = DEFAULT_QUEUE + 3
    photo = jpeg_bytes(photo_of(artwork(1), 9))
    with TestClient(app) as client:
        assert client.get("/health").json()["capacity"] == 2 + DEFAULT_QUEUE
        answers: list = [None] * n

        def send(i: int) -> None:
            answers[i] = post_image(client, photo)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        admission = app.state.admission
        while admission.in_flight + admission.refused < n or running["now"] < 2:
            assert any(t.is_alive() for t in threads)
            release.wait(0.01)
        release.wait(0.2)  # time for a third recognition to start, were the workers not 2
        held = dict(running)
        release.set()
        for t in threads:
            t.join(60)
        health = client.get("/health").json()
    assert held == {"now": 2, "most": 2}
    codes = [a.status_code for a in answers]
    assert codes.count(503) == 1 and codes.count(200) == n - 1
    assert {a.json()["prediction"]["key"] for a in answers if a.status_code == 200} == {"art-1"}
    assert health["handled"] == n - 1 and health["refused_busy"] == 1 and health["in_flight"] == 0


# ---------------------------------------------------------------- upload decoding (no model)


def test_decode_applies_exif_orientation_and_flattens_alpha():
    from artid.service.upload import decode_image

    img = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    out = decode_image(buf.getvalue(), UploadLimits())
    assert out.mode == "RGB" and out.size == (20, 40)
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(buf, format="PNG")
    assert decode_image(buf.getvalue(), UploadLimits()).getpixel((3, 3)) == (255, 255, 255)


@pytest.mark.parametrize(
    "ctype, ok",
    [
        ("image/jpeg", True),
        ("image/heic", True),
        ("application/octet-stream", True),
        ("text/html", False),
        ("application/pdf", False),
    ],
)
def test_content_types(ctype, ok):
    from artid.service.upload import UploadError, check_content_type

    if ok:
        check_content_type(ctype)
    else:
        with pytest.raises(UploadError) as err:
            check_content_type(ctype)
        assert err.value.status == 415


def test_bad_service_settings_are_artid_errors(service):
    from artid.errors import ArtidError

    _, recognizer, bundle = service
    with pytest.raises(ArtidError, match="at least 1 worker"):
        create_app(recognizer, bundle, workers=0)
