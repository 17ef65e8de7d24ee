"""How many recognitions the service runs at once and lets wait (defaults sized to the machine),
and how often it checks its bundle.

Kept free of heavy imports: ``artid serve --help`` shows these defaults.
"""

from __future__ import annotations

import os

#: Recognitions that may wait for a worker before more are answered 503 ("busy, retry"): a burst
#: of this many visitors' photos at once is absorbed. At the ~50 photos/s a 2-core CPU serves
#: (benchmarks/serve_load.py) the last of them waits about a second.
DEFAULT_QUEUE = 64


def default_workers() -> int:
    """Recognitions run at once by default: the CPUs this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: Seconds between two checks of the served bundle for a new generation (``artid serve
#: --follow``; :mod:`artid.service.following`).
FOLLOW_INTERVAL = 2.0
