"""Training-run settings: sections, presets, the projector's size, options refused by name,
the method registry, run.json."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pytest

from artid.commands.train import add_arguments
from artid.errors import ArtidError
from artid.training.methods import ContrastiveSettings, DNetSettings, SimSiamSettings
from artid.training.runs import RunSpec, projector_dim
from artid.training.sections import DataSettings, OptimSettings
from artid.training.settings import spec_fields


def _spec(**kw) -> RunSpec:
    return RunSpec.build(kw.pop("method", "contrastive"), root=Path("r"), out=Path("o"), **kw)


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)


def test_presets_fill_what_the_user_left_unset():
    artid = _spec().resolved()
    assert (artid.optim.lr, artid.optim.epochs, artid.data.augment, artid.optim.select) == (
        1e-4,
        3,
        "insitu",
        "gap",
    )
    paper = _spec(preset="paper", method="dnet").resolved()
    assert (paper.optim.lr, paper.optim.epochs, paper.data.augment, paper.optim.select) == (
        1e-7,
        25,
        "paper",
        "acc",
    )
    mine = _spec(preset="paper", lr=1e-3, augment="insitu").resolved()
    assert (mine.optim.lr, mine.data.augment) == (1e-3, "insitu")


def test_flat_options_land_in_their_sections_unchanged():
    spec = _spec(
        lr=3e-4,
        head_lr=0.5,
        accum_steps=2,
        lr_milestones=(1.5,),
        image_size=64,
        workers=2,
        device="cpu",
        projector_dim=16,
        margin=1.0,
    )
    assert spec.optim == OptimSettings(lr=3e-4, head_lr=0.5, accum_steps=2, lr_milestones=(1.5,))
    assert spec.data == DataSettings(root=Path("r"), image_size=64, workers=2)
    assert (spec.model.device, spec.model.projector_dim) == ("cpu", 16)
    assert spec.settings == ContrastiveSettings(margin=1.0)
    assert RunSpec.build("contrastive", **spec.flat()) == spec  # flat() is what build takes


def test_the_projector_is_capped_at_what_the_database_supports(caplog):
    with caplog.at_level(logging.WARNING):
        assert projector_dim(_spec().model, "artid", n_images=534, d=1280) == 267
    assert "534 database images" in caplog.text
    assert projector_dim(_spec().model, "artid", n_images=10_000, d=1280) is None  # D -> D
    assert projector_dim(_spec().model, "paper", n_images=534, d=1280) is None
    assert projector_dim(_spec(projector_dim=64).model, "artid", n_images=534, d=1280) == 64


@pytest.mark.parametrize(
    "kw, option",
    [
        ({"augment": "heavy"}, "--augment"),
        ({"preset": "fast"}, "--preset"),
        ({"select": "loss"}, "--select"),
        ({"lr": -1.0}, "--lr"),
        ({"projector_dim": 0}, "--projector-dim"),
        ({"image_size": 0}, "--image-size"),
        ({"positives": "real"}, "--positives"),
        ({"margin": -1.0}, "--margin"),
        ({"negative_pool": 0}, "--negative-pool"),
        ({"method": "dnet", "loss": "triplet"}, "--loss"),
        ({"method": "dnet", "sampling": "greedy"}, "--sampling"),
        ({"method": "dnet", "scale": 0.0}, "--scale"),
    ],
)
def test_bad_settings_name_the_option(kw, option):
    with pytest.raises(ArtidError, match=option):
        _spec(**kw).resolved().check()


def test_each_method_gets_its_own_settings_with_its_defaults():
    assert _spec().settings == ContrastiveSettings(
        positives="con-syn", margin=1.8, negative_pool=10
    )
    assert _spec(method="simsiam").settings == SimSiamSettings()
    dnet = _spec(method="dnet", loss="arcface")
    assert dnet.method == "dnet" and dnet.settings == DNetSettings(loss="arcface", margin=0.5)
    with pytest.raises(ArtidError, match="unknown training method 'byol'"):
        _spec(method="byol")


@pytest.mark.parametrize(
    "method, kw, message",
    [
        ("contrastive", {"loss": "arcface"}, "--loss is an option of dnet, not of contrastive"),
        (
            "simsiam",
            {"margin": 0.3},
            "--margin is an option of contrastive and dnet, not of simsiam",
        ),
        ("dnet", {"positives": "con-syn"}, "--positives is an option of contrastive, not of dnet"),
        ("dnet", {"warmth": 2.0}, "--warmth: no such training option"),
    ],
)
def test_an_option_of_another_method_is_refused_by_name(method, kw, message):
    with pytest.raises(ArtidError, match=message):
        _spec(method=method, **kw)


@pytest.mark.parametrize(
    "method, option",
    [
        ("simsiam", "--loss"),
        ("simsiam", "--positives"),
        ("contrastive", "--sampling"),
        ("dnet", "--negative-pool"),
    ],
)
def test_the_command_line_offers_a_method_only_its_own_options(method, option, capsys):
    base = [method, "--root", "r", "--out", "o"]
    _parse(base)
    with pytest.raises(SystemExit):
        _parse(base + [option, "1"])
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["contrastive", "simsiam", "dnet"])
def test_the_command_line_maps_onto_the_spec_with_the_same_defaults(method):
    args = _parse([method, "--root", "r", "--out", "o"])
    assert all(hasattr(args, k) for k in spec_fields(method))  # every setting has its option
    spec = RunSpec.build(method, **{k: getattr(args, k) for k in spec_fields(method)})
    assert spec == _spec(method=method)


def test_run_json_round_trips():
    spec = _spec(
        method="dnet",
        loss="arcface",
        scale=32.0,
        sampling="balanced",
        class_weights=True,
        lr=3e-4,
        lr_milestones=(1.5, 3.0),
        projector=False,
        batch_size=16,
    ).resolved()
    stored = json.loads(json.dumps(spec.to_json()))
    assert set(stored) == {"method", "out", "preset", "data", "model", "optim", "settings"}
    assert "positives" not in stored["settings"] and stored["optim"]["lr_milestones"] == [1.5, 3.0]
    assert RunSpec.from_json(stored) == spec
    assert RunSpec.from_json(json.loads(json.dumps(_spec(method="simsiam").to_json()))) == _spec(
        method="simsiam"
    )


def test_run_json_of_the_flat_spec_before_settings_per_method_is_read():
    flat = {
        "method": "contrastive",
        "root": "r",
        "out": "o",
        "preset": "artid",
        "lr": 1e-4,
        "epochs": 3,
        "lr_milestones": [2.0],
        "positives": "con-syn+real",
        "margin": None,
        "negative_pool": 10,
        "loss": "ce",
        "scale": None,
        "sampling": "random",
        "class_weights": False,
        "retrain_classifier": False,
    }
    spec = RunSpec.from_json(flat)
    assert spec.optim == OptimSettings(lr=1e-4, epochs=3, lr_milestones=(2.0,))
    assert (spec.out, spec.data.root) == (Path("o"), Path("r"))
    assert spec.settings == ContrastiveSettings(positives="con-syn+real", margin=1.8)
    dnet = RunSpec.from_json({**flat, "method": "dnet", "margin": 0.3})
    assert dnet.settings == DNetSettings(margin=0.3)


def test_run_json_of_common_and_method_settings_is_read():
    common = {
        "root": "r",
        "out": "o",
        "preset": "paper",
        "model": "m",
        "lr": 1e-3,
        "lr_milestones": [2.0],
        "image_size": 64,
        "device": "cpu",
        "select": "acc",
    }
    spec = RunSpec.from_json({"method": "dnet", "common": common, "settings": {"loss": "arcface"}})
    assert spec == _spec(
        method="dnet",
        preset="paper",
        model="m",
        lr=1e-3,
        lr_milestones=(2.0,),
        image_size=64,
        device="cpu",
        select="acc",
        loss="arcface",
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        ([], "not a training run spec"),
        ({"method": "dnet", "common": {}}, "needs 'common' and 'settings'"),
        (
            {"method": "dnet", "common": {"root": "r"}, "settings": {}},
            "incomplete training run spec",
        ),
        (
            {
                "method": "dnet",
                "common": {"root": "r", "out": "o"},
                "settings": {"positives": "con-syn"},
            },
            "--positives is an option",
        ),
    ],
)
def test_an_unreadable_run_spec_is_refused_clearly(bad, message):
    with pytest.raises(ArtidError, match=message):
        RunSpec.from_json(bad)


def test_a_new_method_is_one_settings_class_and_a_registration(monkeypatch):
    from dataclasses import dataclass

    from artid.training import registry
    from artid.training.sections import setting

    @dataclass(frozen=True)
    class ToySettings:
        temperature: float = setting(1.0, "softmax temperature")

        def check(self) -> None:
            pass

    toy = registry.MethodEntry("toy", ToySettings, lambda parts, s: None, default_batch=8)
    monkeypatch.setitem(registry._REGISTRY, "toy", toy)
    spec = _spec(method="toy", temperature=2.0, lr=1e-3)
    assert spec.method == "toy" and spec.settings == ToySettings(temperature=2.0)
    assert RunSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    args = _parse(["toy", "--root", "r", "--out", "o", "--temperature", "3"])
    assert args.temperature == 3.0 and args.train_method == "toy"
    with pytest.raises(ArtidError, match="--temperature is an option of toy, not of dnet"):
        _spec(method="dnet", temperature=2.0)
