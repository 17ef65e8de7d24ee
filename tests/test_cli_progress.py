"""Progress bars in a log file (CI, nohup): a refresh every few seconds, not thousands of them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from artid.cli import LOG_PROGRESS_INTERVAL_S


def test_bars_refresh_rarely_when_stderr_is_a_file(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    start = time.monotonic()
    with open(log, "w") as err:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "artid.cli",
                "synth",
                "--out",
                str(tmp_path / "bench"),
                "--classes",
                "20",
                "--image-size",
                "64",
                "--workers",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=Path(__file__).resolve().parents[1],
        )
    elapsed = time.monotonic() - start
    assert done.returncode == 0
    text = log.read_bytes().decode("utf-8")  # read_text would turn each \r into a newline
    bars = text.count(
        "\n"
    )  # each bar ends with one newline when it closes (log lines add a few more)
    # Per bar: the first display, one refresh per interval at most, and the final one on closing.
    allowed = bars * 2 + elapsed / LOG_PROGRESS_INTERVAL_S
    assert 0 < text.count("\r") <= allowed, text.replace("\r", "\n")[-2000:]
