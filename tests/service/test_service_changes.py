"""Changing a bundle safely: concurrent add / remove, unreadable images kept on record, and the
command-line options of the service refused when they make no sense (no model needed)."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

import numpy as np
import pytest
from service_helpers import artwork, small_bundle_data

from artid.cli import main
from artid.descriptors import DescriptorSet
from artid.errors import ArtidError
from artid.service import builder, describing
from artid.service import bundle as bundles

#: Seconds a test thread may wait for another before the test fails (never reached when all is well).
PATIENCE = 30


def _bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    bundles.write_bundle(bundle, small_bundle_data(bundle), "build")
    return bundle


def _newcomer(tmp_path: Path, images: int = 1) -> Path:
    """A collection folder with one new artwork, ``newcomer``, of ``images`` photos."""
    more = tmp_path / "more"
    (more / "newcomer").mkdir(parents=True)
    for j in range(images):
        artwork(40 + j).save(more / "newcomer" / f"{j}.jpg")
    return more


def _fake_model(
    monkeypatch,
    gate: threading.Event | None = None,
    described: threading.Event | None = None,
    unreadable: tuple[str, ...] = (),
) -> None:
    """Describe images without a model: unit rows of the bundle's dimension (8); the files named in
    ``unreadable`` fail. With ``gate``, describing waits until the test opens it."""

    def describe(
        entries,
        image_root,
        embedder,
        settings,
        work,
        name,
        device="cpu",
        workers=1,
        crop=None,
        batch_size=None,
        calibration=None,
    ):
        if described is not None:
            described.set()
        if gate is not None:
            assert gate.wait(PATIENCE)
        ok = [e for e in entries if Path(e.path).name not in unreadable]
        failed = [
            {"path": e.path, "error": "cannot identify image file"}
            for e in entries
            if Path(e.path).name in unreadable
        ]
        matrix = np.eye(len(ok), 8, k=4, dtype=np.float32)
        return DescriptorSet(matrix=matrix, entries=ok, failures=failed)

    monkeypatch.setattr(describing, "describe", describe)
    monkeypatch.setattr("artid.models.build_embedder", lambda ref: object())


def test_a_removal_committed_while_an_add_runs_is_never_undone(tmp_path, monkeypatch):
    bundle = _bundle(tmp_path)
    more = _newcomer(tmp_path)
    gate, described = threading.Event(), threading.Event()
    _fake_model(monkeypatch, gate, described)
    outcome: dict[str, object] = {}

    def add() -> None:
        try:
            outcome["added"] = builder.add_to_bundle(bundle, more, workers=0)
        except Exception as exc:  # reported to the test below
            outcome["error"] = exc

    adder = threading.Thread(target=add)
    adder.start()
    try:
        assert described.wait(PATIENCE)  # the add has read the bundle and is describing its images
        try:
            builder.remove_from_bundle(bundle, ["k1"])
            removed = True
        except ArtidError as exc:
            assert "being changed by another process" in str(exc)
            removed = False
    finally:
        gate.set()
        adder.join(PATIENCE)
    assert "error" not in outcome, outcome.get("error")
    keys = [a.key for a in bundles.load_bundle(bundle).artworks]
    assert "newcomer" in keys
    assert ("k1" not in keys) == removed  # a removal reported as done stays done
    builder.remove_from_bundle(bundle, ["k1"])  # once the add is over, the removal goes through
    assert [a.key for a in bundles.load_bundle(bundle).artworks] == ["k0", "k2", "k3", "newcomer"]


def test_writing_contents_read_before_another_change_is_refused(tmp_path):
    bundle = _bundle(tmp_path)
    stale = bundles.load_bundle(bundle)
    bundles.write_bundle(
        bundle, bundles.without_artworks(bundles.load_bundle(bundle), ["k0"]), "remove k0"
    )
    with pytest.raises(ArtidError, match="changed since"):
        bundles.write_bundle(bundle, bundles.without_artworks(stale, ["k1"]), "remove k1")
    assert [a.key for a in bundles.load_bundle(bundle).artworks] == ["k1", "k2", "k3"]


def test_unreadable_images_of_an_add_are_kept_in_the_bundle_and_printed(
    tmp_path, monkeypatch, capsys
):
    bundle = _bundle(tmp_path)
    more = _newcomer(tmp_path, images=2)
    _fake_model(monkeypatch, unreadable=("1.jpg",))
    assert main(["index", "add", str(bundle), str(more), "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "added 1 artwork(s): newcomer" in out
    assert (
        "1 image(s) could not be read" in out
        and "newcomer/1.jpg" in out
        and "cannot identify" in out
    )
    last = bundles.read_manifest(bundle)["history"][-1]
    assert [f["path"] for f in last["failures"]] == [str(more / "newcomer" / "1.jpg")]
    failures = bundles.load_bundle(bundle).failures
    assert [f["path"] for f in failures] == [str(more / "newcomer" / "1.jpg")]
    assert main(["index", "info", str(bundle)]) == 0
    info = capsys.readouterr().out
    assert "newcomer/1.jpg" in info and "cannot identify" in info
    builder.remove_from_bundle(bundle, ["k0"])  # a later change keeps the record
    assert main(["index", "info", str(bundle)]) == 0
    assert "newcomer/1.jpg" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, option",
    [
        (["recognize", "p.jpg", "--bundle", "b", "--top", "0"], "--top"),
        (["recognize", "p.jpg", "--bundle", "b", "--top", "-2"], "--top"),
        (["serve", "--bundle", "b", "--port", "99999"], "--port"),
        (["serve", "--bundle", "b", "--port", "http"], "--port"),
        (["serve", "--bundle", "b", "--max-upload-mb", "-1"], "--max-upload-mb"),
        (["serve", "--bundle", "b", "--max-megapixels", "0"], "--max-megapixels"),
        (["serve", "--bundle", "b", "--workers", "0"], "--workers"),
        (["serve", "--bundle", "b", "--queue", "-1"], "--queue"),
        (["index", "build", "c", "--out", "b", "--tau", "0"], "--tau"),
        (["index", "build", "c", "--out", "b", "--tau", "-3"], "--tau"),
        (["index", "build", "c", "--out", "b", "--tau", "nan"], "--tau"),
        (["index", "build", "c", "--out", "b", "--k", "0"], "--k"),
        (["index", "build", "c", "--out", "b", "--max-size", "-1"], "--max-size"),
        (["index", "build", "c", "--out", "b", "--false-accept", "1.5"], "--false-accept"),
        (["index", "add", "b", "c", "--workers", "-1"], "--workers"),
    ],
)
def test_nonsense_options_are_refused_naming_the_option(
    argv, option, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing was started


def test_a_build_from_a_missing_collection_leaves_no_folder(tmp_path):
    with pytest.raises(ArtidError, match="nowhere"):
        builder.build_bundle(
            tmp_path / "nowhere", tmp_path / "bundle", builder.BuildOptions(threshold=0.5)
        )
    assert not (tmp_path / "bundle").exists()


def test_sensible_options_parse():
    from artid.cli import build_parser

    args = build_parser().parse_args(
        ["serve", "--bundle", "b", "--port", "65535", "--max-upload-mb", "0.5", "--queue", "0"]
    )
    assert (args.port, args.max_upload_mb, args.queue) == (65535, 0.5, 0)
    args = build_parser().parse_args(
        ["index", "build", "c", "--out", "b", "--tau", "0.01", "--k", "1"]
    )
    assert (args.tau, args.k) == (0.01, 1)
    assert isinstance(
        build_parser().parse_args(["recognize", "p.jpg", "--bundle", "b"]), argparse.Namespace
    )
