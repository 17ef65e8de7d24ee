"""Options shared by the commands: --device means one thing everywhere, no abbreviations."""

from __future__ import annotations

import argparse
import sys

import pytest
import torch

from artid.cli import build_parser, main
from artid.commands import demo as demo_cmd
from artid.commands import recognize as recognize_cmd
from artid.commands import serve as serve_cmd

#: A minimal command line of each command that has --device.
DEVICE_COMMANDS = [
    ["extract", "--folder", "f", "--out", "o"],
    ["demo"],
    ["recognize", "p.jpg", "--bundle", "b"],
    ["serve", "--bundle", "b"],
]


def _all_parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_parsers(sub)


@pytest.mark.parametrize("argv", DEVICE_COMMANDS, ids=lambda a: a[0])
def test_device_defaults_to_auto(argv):
    assert build_parser().parse_args(argv).device == "auto"


def test_every_parser_refuses_abbreviations():
    parsers = list(_all_parsers(build_parser()))
    assert len(parsers) > 12  # top, the commands, index's and attributes' actions
    assert all(not p.allow_abbrev for p in parsers), [p.prog for p in parsers if p.allow_abbrev]


@pytest.mark.parametrize(
    "argv, prefix",
    [
        (["extract", "--folder", "f", "--out", "o", "--max-s", "10"], "--max-s"),
        (["index", "build", "c", "--out", "b", "--whit", "pcaw"], "--whit"),
        (["index", "build", "c", "--out", "b", "--whitening", "8"], "--whitening"),
        (["recognize", "p.jpg", "--bundle", "b", "--dev", "cpu"], "--dev"),
        (["attributes", "train", "--root", "r", "--out", "o", "--head-e", "3"], "--head-e"),
    ],
)
def test_a_prefix_of_an_option_is_an_error(argv, prefix, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    assert f"unrecognized arguments: {prefix}" in capsys.readouterr().err


class _Stop(Exception):
    pass


def _spy_from_bundle(monkeypatch) -> dict:
    from artid.service.recognizer import Recognizer

    seen: dict = {}

    def from_bundle(path, device="cpu", **kw):
        seen["device"] = device
        raise _Stop

    monkeypatch.setattr(Recognizer, "from_bundle", staticmethod(from_bundle))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return seen


@pytest.mark.parametrize(
    "module, argv",
    [
        (recognize_cmd, ["recognize", "p.jpg", "--bundle", "b"]),
        (serve_cmd, ["serve", "--bundle", "b"]),
    ],
)
def test_auto_passes_the_gpu_on_when_torch_sees_one(module, argv, monkeypatch):
    seen = _spy_from_bundle(monkeypatch)
    with pytest.raises(_Stop):
        module.run(build_parser().parse_args(argv))
    assert seen["device"] == "cuda"


def test_explicit_cpu_stays_the_cpu(monkeypatch):
    seen = _spy_from_bundle(monkeypatch)
    with pytest.raises(_Stop):
        recognize_cmd.run(
            build_parser().parse_args(["recognize", "p", "--bundle", "b", "--device", "cpu"])
        )
    assert seen["device"] == "cpu"


def test_demo_resolves_auto_before_extraction(monkeypatch):
    import artid.demo

    seen: dict = {}

    def run_demo(cfg):
        seen["device"] = cfg.device
        raise _Stop

    monkeypatch.setattr(artid.demo, "run_demo", run_demo)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(_Stop):
        demo_cmd.run(build_parser().parse_args(["demo"]))
    assert seen["device"] == "cpu"


def test_an_unknown_device_is_an_error_naming_the_option(capsys):
    assert main(["recognize", "p.jpg", "--bundle", "b", "--device", "gpu0"]) == 2
    assert "--device: unknown device 'gpu0'" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["fastapi", "uvicorn", "python_multipart"])
def test_serve_without_the_web_service_extra_names_it(module, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # import of it fails as if uninstalled
    monkeypatch.delitem(sys.modules, "artid.service.api", raising=False)
    assert main(["serve", "--bundle", "no-such-bundle"]) == 2
    err = capsys.readouterr().err
    assert "artid serve needs the web service extra: pip install 'artid[serve]'" in err
    assert f"module {module!r}" in err and "Traceback" not in err
