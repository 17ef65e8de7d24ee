"""Decoding workers leave with their parent: ``kill -9`` of an extraction leaves no process
behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

#: Decodes with 2 workers and then stops consuming, as an extraction busy with its network does:
#: the workers fill their queues (each image is larger than a pipe's buffer) and wait.
CONSUMER = """
import sys, time
from pathlib import Path
from artid.extraction.decode import decode_stream
files = sorted(Path(sys.argv[1]).glob("*.png"))
for item in decode_stream(list(range(len(files))), files, max_size=None, workers=2):
    print("decoded", item.index, flush=True)
    time.sleep(3600)
"""


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_exit_when_the_parent_is_killed(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(
            tmp_path / f"{i:02d}.png"
        )
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    parent = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    workers: list[int] = []
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().startswith(
            "decoded 0"
        )  # workers are running and have delivered
        workers = _children(parent.pid)
        assert len(workers) == 2
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 60  # generous: this checks that they go, not how fast
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [w for w in workers if _alive(w)] == []
    finally:
        parent.kill()
        for w in workers:  # never leave them behind, whatever happened
            if _alive(w):
                os.kill(w, signal.SIGKILL)
