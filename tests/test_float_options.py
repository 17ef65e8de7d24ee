"""Every number option of every command refuses nan and inf at the parser, naming the option
(``float`` let them through every range check: ``index build --threshold nan``, ``evaluate
--shrinkage inf``, ``synth --val-share nan`` ran, the last two into JSON files as NaN)."""

from __future__ import annotations

import argparse

import pytest

from artid.cli import build_parser

#: Options whose numbers are checked later, by the settings they fill (training's RunSpec: a
#: method's own settings are declared in artid.training, below the commands' argument types).
LATER = {(("train", "dnet"), "--scale")}


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _number_options() -> list[tuple[tuple[str, ...], str]]:
    out = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if not action.option_strings or action.type is None or action.nargs is not None:
                continue
            for sample in ("0.5", "2"):
                try:
                    value = action.type(sample)  # type: ignore[operator]
                except (argparse.ArgumentTypeError, ValueError, TypeError):
                    continue
                if isinstance(value, float):
                    out.append((path, action.option_strings[-1]))
                break
    return out


OPTIONS = [(p, o) for p, o in _number_options() if (p, o) not in LATER]
PARSER = build_parser()


def test_the_options_of_the_issue_are_all_checked() -> None:
    named = {(" ".join(p), o) for p, o in OPTIONS}
    for wanted in [
        ("index build", "--threshold"),
        ("index build", "--shrinkage"),
        ("evaluate", "--shrinkage"),
        ("evaluate", "--distractor-ratio"),
        ("evaluate", "--val-distractor-ratio"),
        ("demo", "--distractor-ratio"),
        ("synth", "--val-share"),
        ("synth", "--distractor-ratio"),
        ("synth", "--other-share"),
        ("synth", "--mini-share"),
        ("synth", "--single-share"),
        ("synth", "--holdout-share"),
    ]:
        assert wanted in named


@pytest.mark.parametrize(
    "path, option", OPTIONS, ids=lambda x: " ".join(x) if isinstance(x, tuple) else x
)
def test_a_number_that_is_not_finite_is_refused_naming_the_option(path, option, capsys) -> None:
    parser = PARSER
    for value in ("nan", "inf", "-inf", "NaN", "Infinity"):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([*path, f"{option}={value}"])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {option}: must be" in err and f"got '{value}'" in err, err
        assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv, field, value",
    [
        (["index", "build", "c", "--out", "b", "--threshold", "0.5"], "threshold", 0.5),
        (["index", "build", "c", "--out", "b", "--shrinkage", "0"], "shrinkage", 0.0),
        (["synth", "--out", "s", "--distractor-ratio", "18"], "distractor_ratio", 18.0),
        (["synth", "--out", "s", "--holdout-share", "0"], "holdout_share", 0.0),
        (["demo", "--distractor-ratio", "0"], "distractor_ratio", 0.0),
        (
            ["evaluate", "--distractor-ratio", "0.1", "--distractor-ratio", "1"],
            "distractor_ratio",
            [0.1, 1.0],
        ),
    ],
)
def test_numbers_in_range_still_parse(argv, field, value) -> None:
    assert getattr(build_parser().parse_args(argv), field) == value


@pytest.mark.parametrize(
    "argv",
    [
        ["index", "build", "c", "--out", "b", "--threshold", "1"],  # a confidence below 1
        ["synth", "--out", "s", "--val-share", "1.5"],
        ["synth", "--out", "s", "--holdout-share", "1"],
        ["demo", "--distractor-ratio", "-1"],
        ["evaluate", "--shrinkage", "2"],
    ],
)
def test_numbers_out_of_range_are_refused(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    assert f"argument {argv[-2]}: must be a finite number" in capsys.readouterr().err
