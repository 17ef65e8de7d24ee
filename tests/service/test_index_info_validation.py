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
