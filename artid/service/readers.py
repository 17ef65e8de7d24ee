"""Reader leases: how a bundle's garbage collection knows which old generations a server still
reads.

Every change commits a new generation and then collects what no generation uses
(:func:`artid.service.bundle_layout.collect_garbage`). A running ``artid serve`` may still read the
generation it served before (a request that started on it, the thumbnails a page shown from it
fetches a moment later), so each server keeps a lease, ``bundle/.readers/<host>-<pid>.json``,
naming the generations it may still read; it rewrites the lease whenever that list changes and at
least every :data:`LEASE_REFRESH` seconds, and removes it when it stops. A collection keeps every
generation named by a live lease, and the thumbnails those generations list.

A lease is live while its file is younger than :data:`LEASE_TTL` seconds and, when it was written
on this host, its process still runs; any other lease is removed by the next collection. So a
server killed without removing its lease holds its generations for at most :data:`LEASE_TTL`
seconds on another host, and not at all on the same one. Leases rather than a grace period for
every old generation: a bundle with no server keeps no old generation (a generation is a whole
copy of the database rows), and a server that keeps serving one generation for days keeps it
for as long as it does.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from artid.files import write_json

LEASES = ".readers"
#: Seconds after its last rewrite at which a lease lapses (its server presumed gone).
LEASE_TTL = 120.0
#: Seconds between the rewrites of an unchanged lease (well inside :data:`LEASE_TTL`).
LEASE_REFRESH = 30.0


def _host() -> str:
    return socket.gethostname().replace("/", "_") or "localhost"


def lease_path(bundle: Path, pid: int | None = None) -> Path:
    """This process's lease file in ``bundle``."""
    return Path(bundle) / LEASES / f"{_host()}-{os.getpid() if pid is None else pid}.json"


def write_lease(bundle: Path, generations: list[str]) -> Path:
    """Say that this process may read these generations of ``bundle`` (atomic rewrite)."""
    record = {
        "host": _host(),
        "pid": os.getpid(),
        "generations": sorted(set(generations)),
        "time": time.time(),
    }
    return write_json(lease_path(bundle), record)


def drop_lease(bundle: Path) -> None:
    """Remove this process's lease (the server stops reading the bundle)."""
    lease_path(bundle).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def leased_generations(bundle: Path, now: float | None = None) -> set[str]:
    """The generations live leases name; lapsed or unreadable leases are removed."""
    folder = Path(bundle) / LEASES
    if not folder.is_dir():
        return set()
    now = time.time() if now is None else now
    out: set[str] = set()
    for lease in folder.glob("*.json"):
        try:
            age = now - lease.stat().st_mtime
            record = json.loads(lease.read_text(encoding="utf-8"))
            host, pid = str(record["host"]), int(record["pid"])
            generations = [str(g) for g in record["generations"]]
        except FileNotFoundError:
            continue  # its server removed it meanwhile
        except (OSError, ValueError, KeyError, TypeError):
            lease.unlink(missing_ok=True)
            continue
        if age > LEASE_TTL or (host == _host() and not _alive(pid)):
            lease.unlink(missing_ok=True)
            continue
        out.update(generations)
    return out
