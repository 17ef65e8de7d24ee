"""``artid index info`` prints the validation record: the photos kept, the target, the threshold
and when it was last calibrated on them (at the build, or by which edit)."""

from __future__ import annotations

import shutil
from pathlib import Path

from service_helpers import built_bundle

from artid.cli import main
from artid.service import builder
from artid.service.bundle import read_manifest


def test_index_info_prints_the_validation_record(tmp_path_factory, tmp_path: Path, capsys) -> None:
    source, _ = built_bundle(tmp_path_factory)
    bundle = tmp_path / "bundle"
    shutil.copytree(source, bundle)
    meta = read_manifest(bundle)
    val, cal = meta["validation"], meta["calibration"]
    assert main(["index", "info", str(bundle)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("validation"))
    assert f"{val['queries']} photos ({val['distractors']} distractors)" in line
    assert f"target {100 * cal['target_false_accept']:.1f}%" in line
    assert f"threshold {cal['threshold']:.4g}" in line and "calibrated at the build" in line
    builder.remove_from_bundle(bundle, ["art-0"])
    after = read_manifest(bundle)
    assert main(["index", "info", str(bundle)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("validation"))
    assert f"threshold {after['calibration']['threshold']:.4g}" in line
    assert f"recalibrated {after['history'][-1]['time']}" in line
    assert "rebuild to recalibrate" not in out  # edits recalibrate: the old note is gone


def test_index_info_of_a_bundle_built_with_a_given_threshold(tmp_path: Path, capsys) -> None:
    """No validation photos because the threshold was given: said so, not "an older artid"."""
    from service_helpers import make_collection

    make_collection(tmp_path / "collection", n=3)
    out = tmp_path / "bundle"
    assert main(["index", "build", str(tmp_path / "collection"), "--out", str(out), "--threshold",
                 "0.5", "--whiten", "none", "--max-size", "96", "--scales", "1", "--workers",
                 "0"]) == 0
    capsys.readouterr()
    assert main(["index", "info", str(out)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("validation"))
    assert "the threshold was given" in line and "older artid" not in line
