"""The web page in a real browser: Debian's headless Chromium, driven by Selenium and chromedriver.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``) and the PyPI package ``selenium``; skipped, saying which is
missing, without them. The screenshot of the answer page is refreshed in
docs/screenshot_service.png (the README's) when ARTID_UPDATE_SCREENSHOT=1, so that a plain test
run leaves the working tree as it was. The bundle has an attributes run, so the page shows the
photo's predicted attributes as tags, for a recognised photo and for one that is not.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from service_helpers import (
    TITLES,
    artwork,
    artwork_attributes,
    built_attributes_bundle,
    distractor,
    photo_of,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot_service.png"

#: CI sets ARTID_REQUIRE_BROWSER=1 (.ci/run): there a missing browser is a failure, not a skip.
REQUIRED = os.environ.get("ARTID_REQUIRE_BROWSER") == "1"

if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
    _missing = f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
    if REQUIRED:
        raise RuntimeError(_missing)
    pytest.skip(_missing, allow_module_level=True)
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="needs the selenium package (make setup installs it)"
)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from artid.service.api import create_app
    from artid.service.recognizer import Recognizer

    bundle, _ = built_attributes_bundle(tmp_path_factory)
    app = create_app(Recognizer.from_bundle(bundle), bundle)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        if time.time() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1000,1400",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _upload(browser, server, path: Path) -> str:
    browser.get(server)
    WebDriverWait(browser, 20).until(
        EC.text_to_be_present_in_element((By.ID, "collection"), "6 artworks")
    )
    browser.find_element(By.ID, "photo").send_keys(str(path))
    title = WebDriverWait(browser, 60).until(
        EC.visibility_of_element_located((By.ID, "answer-title"))
    )
    return title.text


def _tags(browser) -> list[str]:
    """The attribute tags the page shows, as ``group::name``."""
    box = browser.find_element(By.ID, "attributes-box")
    assert box.is_displayed()
    return [
        f"{t.find_element(By.CLASS_NAME, 'group').text}::{t.find_element(By.CLASS_NAME, 'name').text}"
        for t in box.find_elements(By.CSS_SELECTOR, "li.tag")
    ]


def test_upload_shows_the_right_artwork(server, browser, tmp_path):
    photo = tmp_path / "visit.jpg"
    photo_of(artwork(1), 12).save(photo, quality=92)
    assert _upload(browser, server, photo) == TITLES[1]
    verdict = browser.find_element(By.ID, "verdict")
    assert verdict.text.upper().startswith("RECOGNISED") and "Painter 1" in verdict.text
    items = browser.find_elements(By.CSS_SELECTOR, "#matches li")
    assert len(items) == 5 and TITLES[1] in items[0].text
    assert sorted(_tags(browser)) == sorted(artwork_attributes(1))
    # every thumbnail loaded from the bundle
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('#matches img')].every(i => i.complete && i.naturalWidth > 0)"
        )
    )
    assert browser.execute_script("return document.getElementById('query').naturalWidth") > 0
    shot = tmp_path / "shot.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("ARTID_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def test_photo_of_something_else_is_not_recognised(server, browser, tmp_path):
    photo = tmp_path / "street.png"
    distractor(41).save(photo)
    _upload(browser, server, photo)
    assert browser.find_element(By.ID, "verdict").text.upper().startswith("NOT RECOGNISED")
    assert _tags(browser)  # the photo is still described: at least one predicted attribute


def test_a_file_that_is_no_image_shows_the_error(server, browser, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all" * 20)
    browser.get(server)
    browser.find_element(By.ID, "photo").send_keys(str(bad))
    status = WebDriverWait(browser, 30).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, "#status.error"))
    )
    assert "not an image" in status.text
    assert not browser.find_element(By.ID, "answer").is_displayed()
