"""``type=`` validators for command-line options that refuse nonsense before anything runs.

argparse prints a refused value as ``error: argument --top: must be an integer >= 1, got '0'``
(naming the option) and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_at_least(low: int) -> Callable[[str], int]:
    """An integer option's type: whole numbers ``>= low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a whole number >= {low}, got {text!r}"
            ) from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {low}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def finite_float(
    low: float = -math.inf,
    high: float = math.inf,
    *,
    above: bool = False,
    below: bool = False,
) -> Callable[[str], float]:
    """A number option's type: finite (no ``nan`` / ``inf``, which would slip past every range
    check and end up in JSON files as ``NaN``), ``>= low`` (``> low`` when ``above``) and
    ``<= high`` (``< high`` when ``below``)."""
    if low > -math.inf and high < math.inf:
        rule = f"a finite number in {'(' if above else '['}{low:g}, {high:g}{')' if below else ']'}"
    elif low > -math.inf:
        rule = f"a finite number {'>' if above else '>='} {low:g}"
    elif high < math.inf:
        rule = f"a finite number {'<' if below else '<='} {high:g}"
    else:
        rule = "a finite number"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (value > low if above else value >= low)
        if not (ok and (value < high if below else value <= high)):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value

    parse.__name__ = rule
    return parse


positive_float = finite_float(0.0, above=True)
non_negative_float = finite_float(0.0)
#: A share: a number in [0, 1].
fraction = finite_float(0.0, 1.0)


def tcp_port(text: str) -> int:
    """A TCP port number, 1..65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port number from 1 to 65535, got {text!r}")
    return value
