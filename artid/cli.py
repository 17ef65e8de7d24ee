"""The ``artid`` command: one entry point, sub-commands in :mod:`artid.commands`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType

from artid import __version__
from artid.commands import COMMANDS
from artid.errors import ArtidError


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"artid.commands.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"artid.commands.{module_name}":
            return None  # command not built yet in this checkout
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except ArtidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
