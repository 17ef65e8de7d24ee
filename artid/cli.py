"""The ``artid`` command: one entry point, sub-commands in :mod:`artid.commands`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from types import ModuleType
from typing import TextIO

from artid import __version__
from artid.commands import COMMANDS
from artid.commands.common import Parser
from artid.errors import ArtidError

#: Seconds between two refreshes of a progress bar when stderr is not a terminal.
LOG_PROGRESS_INTERVAL_S = 5


def quiet_progress_in_logs(stream: TextIO) -> None:
    """Let progress bars refresh every :data:`LOG_PROGRESS_INTERVAL_S` s when ``stream`` is a file.

    In a log (CI, nohup) every refresh of a tqdm bar is one more ``\\r``-separated line, ten a
    second by default. tqdm takes its defaults from ``TQDM_*`` environment variables, read when
    tqdm is imported, so this must run before any command module is loaded; a value the user
    set is kept.
    """
    if not stream.isatty():
        os.environ.setdefault("TQDM_MININTERVAL", str(LOG_PROGRESS_INTERVAL_S))


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"artid.commands.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"artid.commands.{module_name}":
            return None  # command not built yet in this checkout
        raise


def build_parser() -> argparse.ArgumentParser:
    """The ``artid`` parser; every (sub-)parser is a :class:`Parser`: no option is abbreviated."""
    parser = Parser(
        prog="artid",
        description="Recognise which artwork a photo shows: the Met dataset benchmark, "
        "descriptor extraction, kNN classification, training and a recognition service.",
    )
    parser.add_argument("--version", action="version", version=f"artid {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = _load(module_name)
        if module is None:
            continue
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_progress_in_logs(sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except ArtidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: finished work is kept; run the same command again to resume",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
