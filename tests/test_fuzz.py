"""A small, seeded fuzz pass over what users and careless operators hand artid (issue 19 item 6).

Random damage to cache entries, attribute-run arrays and weights files, and random numbers for
the options that take them. The properties: a damaged local-feature entry is never used (the
fresh features come back) and never raises; a damaged array or weights file loads or is refused
with a short ArtidError naming the file, never another exception; an option's number is either
refused before anything is written or finite and in its range (no NaN / Infinity in any JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scenes import _scene
from test_corrupt_inputs import _run

from artid.attributes.tagger import Tagger, servable_run
from artid.cli import build_parser, main
from artid.commands.crop_options import add_crop_arguments, crop_settings
from artid.errors import ArtidError
from artid.extraction.local import FeatureCache, local_features
from artid.models.state_dicts import check_weights_file, load_weights, read_state_dict

#: A refusal is a few lines naming the file.
SHORT = 600


def _mutations(rng: np.random.Generator, data: bytes, n: int) -> list[tuple[str, bytes]]:
    """``n`` damaged copies of ``data``: random bytes, truncations, flipped bytes, garbage."""
    out = []
    for i in range(n):
        kind = ("random", "truncate", "flip", "append", "header")[i % 5]
        if kind == "random":
            out.append((kind, rng.bytes(int(rng.integers(0, 2 * len(data) + 1)))))
        elif kind == "truncate":
            out.append((kind, data[: int(rng.integers(0, len(data)))]))
        elif kind == "append":
            out.append((kind, data + rng.bytes(int(rng.integers(1, 200)))))
        else:
            buf = bytearray(data)
            top = min(len(buf), 128) if kind == "header" else len(buf)
            for pos in rng.integers(0, top, size=int(rng.integers(1, 6))):
                buf[int(pos)] ^= int(rng.integers(1, 256))
            out.append((kind, bytes(buf)))
    return out


def test_fuzz_local_feature_entries(tmp_path: Path) -> None:
    cv2.setNumThreads(1)
    rng = np.random.default_rng(19)
    cv2.imwrite(str(tmp_path / "img.png"), _scene(5, size=120))
    fresh = local_features(tmp_path / "img.png")
    cache = FeatureCache(tmp_path / "cache", tmp_path)
    cache.get("img.png")
    entry = cache._file("img.png")
    good = entry.read_bytes()
    with np.load(entry) as z:
        arrays = {k: z[k] for k in z.files}
    n = len(fresh)
    reshaped: list[dict[str, np.ndarray | None]] = [
        {"desc": None},
        {"xy": None},
        {"source": None},
        {"settings": None},
        {"xy": arrays["xy"][: int(rng.integers(0, n))]},
        {"desc": arrays["desc"][:, :64]},
        {"desc": np.zeros((n, 129), np.uint8)},
        {"xy": arrays["xy"].T.copy()},
        {"xy": arrays["xy"].astype(np.float16)},
        {"desc": arrays["desc"].astype(np.float32)},
        {"xy": np.where(rng.random(arrays["xy"].shape) < 0.1, np.inf, arrays["xy"])},
        {"source": np.array("0" * 40)},
        {"settings": np.array([500])},
        {"xy": arrays["desc"], "desc": arrays["xy"]},
    ]
    cases: list[tuple[str, Callable[[], None]]] = [
        (kind, lambda d=d: entry.write_bytes(d)) for kind, d in _mutations(rng, good, 60)
    ]
    for change in reshaped:

        def write(change=change) -> None:
            kept = {**arrays, **change}
            np.savez_compressed(entry, **{k: v for k, v in kept.items() if v is not None})

        cases.append((f"arrays {sorted(change)}", write))
    for kind, damage in cases:
        damage()
        got = FeatureCache(tmp_path / "cache", tmp_path).get("img.png")
        assert np.array_equal(got.xy, fresh.xy) and np.array_equal(got.desc, fresh.desc), kind
        assert entry.read_bytes() == good or kind in ("flip", "header", "append"), kind


def _refused_or_loaded(load: Callable[[], object], name: str) -> bool:
    """Whether ``load`` succeeded; a failure must be a short ArtidError naming ``name``."""
    try:
        load()
    except ArtidError as exc:
        text = str(exc)
        assert name in text and len(text) < SHORT and text.count("\n") <= 4, text
        return False
    return True


@pytest.mark.parametrize("name", ["knn_database.npy", "knn_labels.npy", "head.npz"])
def test_fuzz_attribute_run_arrays(tmp_path: Path, name: str) -> None:
    # a fixed seed per file (hash() of a str changes with every process: seeds 33 and 52 flipped a
    # byte of head.npz's member name "bias.npy", which the check passed and loading refused)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    run = _run(tmp_path / "run", "head" if name == "head.npz" else "knn")
    good = (run / name).read_bytes()
    refused = 0
    for _, data in _mutations(rng, good, 40):
        (run / name).write_bytes(data)
        checked = _refused_or_loaded(lambda: servable_run(run), name)
        loaded = _refused_or_loaded(lambda: Tagger(run).scores(np.zeros((2, 8), np.float32)), name)
        assert loaded or not checked or name != "head.npz"  # what the check passes, loads
        refused += not checked
    assert refused >= 20  # most damage is found by the check itself


def test_a_head_missing_a_tensor_is_refused_by_the_check(tmp_path: Path) -> None:
    run = _run(tmp_path / "run", "head")
    arrays = dict(np.load(run / "head.npz"))
    np.savez(run / "head.npz", **{k: v for k, v in arrays.items() if "bias" not in k})
    assert not _refused_or_loaded(lambda: servable_run(run), "head.npz")


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 2)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_fuzz_weights_files(tmp_path: Path, suffix: str) -> None:
    from safetensors.torch import save_file

    rng = np.random.default_rng(7 if suffix == ".pth" else 8)
    good_file = tmp_path / f"good{suffix}"
    state = _Tiny().state_dict()
    if suffix == ".pth":
        torch.save(state, good_file)
    else:
        save_file(state, str(good_file))
    good = good_file.read_bytes()
    path = tmp_path / f"w{suffix}"
    for _, data in _mutations(rng, good, 50):
        path.write_bytes(data)
        if _refused_or_loaded(lambda: check_weights_file(path), path.name):
            _refused_or_loaded(
                lambda: load_weights(_Tiny(), read_state_dict(path), path, "tiny"), path.name
            )
    other = {"conv.weight": torch.zeros(4, 3, 5, 5), "head.weight": torch.zeros(2, 4)}
    with pytest.raises(ArtidError, match=r"(?s)1 unexpected: head.weight.*1 of another shape"):
        load_weights(_Tiny(), other, path, "tiny")


def _crop_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="artid extract")
    add_crop_arguments(parser, "crop", "crop query photos")
    return parser


def test_fuzz_crop_margins(capsys) -> None:
    rng = np.random.default_rng(3)
    texts = ["nan", "inf", "-inf", "1e309", "-0", "1", "0", "1.0000001", "0x1p-2", "", " 0.5 "]
    texts += [repr(float(v)) for v in rng.uniform(-3, 3, 40)]
    texts += [repr(float(10.0**e)) for e in rng.uniform(-300, 300, 20)]
    parser = _crop_parser()
    for text in texts:
        try:
            args = parser.parse_args(["--crop", "cam", f"--crop-margin={text}"])
        except SystemExit as exc:
            assert exc.code == 2
            assert "--crop-margin: must be a number between 0 and 1" in capsys.readouterr().err
            value = float(text) if text.strip() not in ("", "0x1p-2") else math.nan
            assert not 0 <= value <= 1, text
            continue
        settings = crop_settings(args)
        assert settings is not None and 0 <= settings.margin <= 1, text
        json.loads(json.dumps(settings.spec(), allow_nan=False))


def _float_options(parser: argparse.ArgumentParser) -> list[str]:
    """The options of a parser whose type turns "0.5" into a float."""
    out = []
    for action in parser._actions:
        if not action.option_strings or action.type is None or action.nargs is not None:
            continue
        try:
            value = action.type("0.5")  # type: ignore[operator]
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            value = action.type("2")  # type: ignore[operator]
        if isinstance(value, float) or (
            isinstance(value, tuple) and value and isinstance(value[0], float)
        ):
            out.append(action.option_strings[-1])
    return out


def _subparser(*path: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


#: Commands whose every number option is checked here, with the arguments they need to reach
#: their checks (the options' checks come before any file is read).
COMMANDS = {
    ("attributes", "train"): ["--root", "{root}", "--out", "{out}"],
    ("train", "contrastive"): ["--root", "{root}", "--out", "{out}"],
    ("train", "dnet"): ["--root", "{root}", "--out", "{out}"],
    ("train", "simsiam"): ["--root", "{root}", "--out", "{out}"],
    ("train", "table53"): ["--root", "{root}", "--out", "{out}"],
    ("extract",): ["--folder", "{root}", "--out", "{out}", "--crop", "cam"],
}


@pytest.mark.parametrize("command", list(COMMANDS), ids=" ".join)
def test_fuzz_numbers_that_are_not_finite_are_refused_first(tmp_path: Path, capsys, command):
    options = _float_options(_subparser(*command))
    if command == ("extract",):
        options = [o for o in options if o.startswith(("--crop", "--cam"))]
    assert options, command
    base = [a.format(root=tmp_path / "nowhere", out=tmp_path / "out") for a in COMMANDS[command]]
    for option in options:
        for value in ("nan", "inf", "-inf"):
            try:
                rc = main([*command, *base, f"{option}={value}"])
            except SystemExit as exc:
                rc = int(exc.code or 0)
            err = capsys.readouterr().err
            assert rc == 2, (command, option, value)
            assert option in err and ("finite" in err or "between" in err or "(0, 1)" in err), err
            assert not (tmp_path / "out").exists()
