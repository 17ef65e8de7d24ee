"""Training-run settings: presets, the projector's size, options refused with their name."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from artid.errors import ArtidError
from artid.training.runs import RunSpec, _check, projector_dim


def _spec(**kw) -> RunSpec:
    return RunSpec(method=kw.pop("method", "contrastive"), root=Path("r"), out=Path("o"), **kw)


def test_presets_fill_what_the_user_left_unset():
    artid = _spec().resolved()
    assert (artid.lr, artid.epochs, artid.augment, artid.select) == (1e-4, 3, "insitu", "gap")
    paper = _spec(preset="paper", method="dnet").resolved()
    assert (paper.lr, paper.epochs, paper.augment, paper.select) == (1e-7, 25, "paper", "acc")
    mine = _spec(preset="paper", lr=1e-3, augment="insitu").resolved()
    assert (mine.lr, mine.augment) == (1e-3, "insitu")


def test_the_projector_is_capped_at_what_the_database_supports(caplog):
    with caplog.at_level(logging.WARNING):
        assert projector_dim(_spec().resolved(), n_images=534, d=1280) == 267
    assert "534 database images" in caplog.text
    assert projector_dim(_spec().resolved(), n_images=10_000, d=1280) is None           # D -> D
    assert projector_dim(_spec(preset="paper").resolved(), n_images=534, d=1280) is None
    assert projector_dim(_spec(projector_dim=64).resolved(), n_images=534, d=1280) == 64


@pytest.mark.parametrize("kw, option", [({"augment": "heavy"}, "--augment"), ({"preset": "fast"}, "--preset"),
                                        ({"select": "loss"}, "--select"), ({"lr": -1.0}, "--lr"),
                                        ({"projector_dim": 0}, "--projector-dim")])
def test_bad_settings_name_the_option(kw, option):
    with pytest.raises(ArtidError, match=option):
        _check(_spec(**kw).resolved())
