"""``artid synth --source-images``: a Met-format benchmark whose exhibits are real images.

The fixture tests/data/source_images/ holds 10 small files: 8 scikit-image sample images, the
astronaut again at a smaller size (a near-duplicate), and a drawn vase on a transparent
background (an object, photographed on a plinth).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from artid.cli import main
from artid.data.met import load_split
from artid.data.synth import SynthConfig
from artid.data.synth.real import SourceSettings, generate_from_sources
from artid.data.synth.sources import scan_sources, tiles
from artid.errors import ArtidError

FIXTURE = Path(__file__).parent / "source_images"
CONFIG = SynthConfig(
    seed=1, image_size=64, met_queries=12, distractor_ratio=2.0, workers=1, progress=False
)
SETTINGS = SourceSettings((str(FIXTURE),), crops=4, holdout_share=0.15)


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("real") / "met"
    return root, generate_from_sources(root, CONFIG, SETTINGS)


def test_near_duplicates_merge_and_transparency_is_seen() -> None:
    sources = scan_sources([FIXTURE], progress=False)
    assert len(sources) == 9  # 10 files, the smaller astronaut merged into the larger
    merged = [s for s in sources if s.duplicates]
    assert [s.path.name for s in merged] == ["astronaut.jpg"]
    assert merged[0].duplicates[0].endswith("astronaut_small.jpg")
    assert [s.path.name for s in sources if s.transparent] == ["vase.png"]


def test_crops_are_disjoint_tiles_within_the_image() -> None:
    boxes = tiles((400, 200), 4, 64)
    assert len(boxes) == 4
    assert all(0 <= x0 < r <= 400 and 0 <= t < b <= 200 for x0, t, r, b in boxes)
    area = sum((r - x0) * (b - t) for x0, t, r, b in boxes)
    assert area <= 400 * 200  # no overlap: the tiles of a grid
    assert tiles((100, 80), 4, 64) == [(0, 0, 100, 80)]  # too small to cut


def test_benchmark_is_met_format_with_real_exhibits(bench: tuple[Path, dict]) -> None:
    root, summary = bench
    db, val, test = (load_split(root, s) for s in ("database", "val", "test"))
    assert summary["classes"] >= 10 and summary["duplicates_merged"] == 1
    assert len({e.label for e in db.entries}) == summary["classes"]
    assert all((root / e.path).is_file() for s in (db, val, test) for e in s.entries)
    listing = json.loads((root / "ground_truth" / "sources.json").read_text())
    assert len(listing["exhibits"]) == summary["classes"]
    # held-out images (other-art distractors) are never the picture of an exhibit
    held = {e["sha256"] for e in listing["held_out"]}
    assert held and not held & {e["sha256"] for e in listing["exhibits"]}
    met = [e for e in test.entries if not e.is_distractor]
    assert met and len(met) + summary["val_met"] == 12
    placements = json.loads((root / "ground_truth" / "placements.json").read_text())
    assert len(placements["placements"]) == 12


def test_same_seed_same_files_and_resume(bench: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = bench
    copy = tmp_path / "renamed"  # the images' names do not matter, only their contents
    shutil.copytree(FIXTURE, copy)
    (copy / "coffee.jpg").rename(copy / "zz_coffee.jpg")
    other = tmp_path / "met"
    generate_from_sources(other, CONFIG, SourceSettings((str(copy),), 4, 0.15))
    want = _digests(root)
    got = _digests(other)
    drop = lambda d: {k: v for k, v in d.items() if k != "ground_truth/sources.json"}  # noqa: E731
    assert drop(got) == drop(want)
    # interrupted: some images missing, one half-written; the same command completes it
    for rel in list(want)[:5]:
        (other / rel).unlink()
    (other / "test_met" / ".x.jpg.tmp.1").write_bytes(b"partial")
    generate_from_sources(other, CONFIG, SourceSettings((str(copy),), 4, 0.15))
    assert drop(_digests(other)) == drop(want)
    # other sources in the same folder: refused, not mixed
    (copy / "zz_coffee.jpg").unlink()
    with pytest.raises(ArtidError, match="other settings"):
        generate_from_sources(other, CONFIG, SourceSettings((str(copy),), 4, 0.15))


def test_bad_folders_are_short_errors_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = str(tmp_path / "out")
    assert main(["synth", "--out", out, "--source-images", str(empty), "--no-progress"]) == 2
    assert f"--source-images {empty}: holds no image file" in capsys.readouterr().err
    bad = tmp_path / "bad"
    shutil.copytree(FIXTURE, bad)
    (bad / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    assert main(["synth", "--out", out, "--source-images", str(bad), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "Traceback" not in err
    missing = tmp_path / "missing"
    assert main(["synth", "--out", out, "--source-images", str(missing), "--no-progress"]) == 2
    assert "not a folder" in capsys.readouterr().err
