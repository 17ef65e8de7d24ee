"""``artid recognize`` keeps a reader lease on the generation it reads, as ``artid serve`` does:
an ``index remove`` run beside it does not collect that generation's files."""

from __future__ import annotations

import shutil
from pathlib import Path

from service_helpers import built_bundle, make_collection

from artid.cli import main
from artid.commands import recognize as recognize_cmd
from artid.service import builder
from artid.service.bundle import read_manifest
from artid.service.readers import lease_path, leased_generations


def test_an_index_remove_beside_recognize_keeps_the_generation_it_reads(
    tmp_path_factory, tmp_path: Path, monkeypatch, capsys
) -> None:
    source, _ = built_bundle(tmp_path_factory)
    bundle = tmp_path / "bundle"
    shutil.copytree(source, bundle)
    photo = make_collection(tmp_path / "photos", 1) / "art-0" / "0.jpg"
    if not photo.is_file():
        photo = next((tmp_path / "photos").rglob("*.jpg"))
    seen: dict = {}
    answer = recognize_cmd._answer

    def remove_then_answer(args, recognizer, error):
        gen = recognizer.data.generation
        seen["generation"], seen["leased"] = gen, leased_generations(bundle)
        key = recognizer.data.artworks[-1].key
        builder.remove_from_bundle(bundle, [key])  # commits a new generation, then collects
        seen["kept"] = (bundle / gen).is_dir()
        return answer(args, recognizer, error)

    monkeypatch.setattr(recognize_cmd, "_answer", remove_then_answer)
    assert main(["recognize", str(photo), "--bundle", str(bundle), "--device", "cpu"]) == 0
    assert seen["generation"] in seen["leased"]
    assert seen["kept"], "the generation recognize reads was collected under it"
    assert read_manifest(bundle)["generation"] != seen["generation"]
    assert not lease_path(bundle).exists()  # dropped when recognize ends
