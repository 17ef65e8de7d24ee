"""The synthetic benchmark: Met-format files, the Met's proportions, determinism, attributes."""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from artid.attributes import IMetDataset
from artid.commands import synth as synth_command
from artid.data.met import load_split
from artid.data.synth import FORMAT_VERSION, SynthConfig, generate
from artid.data.synth.artworks import KINDS, make_design, render, vary
from artid.data.synth.attributes import colour_name, dominant_colours, vocabulary
from artid.data.synth.families import design_of
from artid.data.synth.gallery import map_points
from artid.data.synth.layout import make_plan, views_per_class
from artid.data.synth.seeding import rng_for
from artid.errors import ArtidError

TINY = SynthConfig(classes=30, seed=3, image_size=64, workers=1, progress=False)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synth") / "met"
    return root, generate(root, TINY)


def _gt(root: Path, name: str) -> list[dict]:
    return json.loads((root / "ground_truth" / name).read_text())


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_loader_reads_every_split(bench):
    root, summary = bench
    splits = {s: load_split(root, s) for s in ("database", "mini", "val", "test")}
    assert all(sp.image_root == root for sp in splits.values())
    assert len(splits["database"].entries) == summary["database_images"]
    assert len(splits["mini"].entries) == summary["mini_images"]
    for s in ("val", "test"):
        kinds = Counter(e.kind for e in splits[s].entries)
        assert kinds == {
            k: summary[f"{s}_{k}"] for k in ("met", "other", "noart") if summary[f"{s}_{k}"]
        }
        assert all((e.label >= 0) == (e.kind == "met") for e in splits[s].entries)
    for sp in splits.values():
        for e in sp.entries:
            with Image.open(root / e.path) as im:
                assert im.format == "JPEG" and im.mode == "RGB"
                assert max(im.size) == TINY.image_size


def test_json_is_the_official_format(bench):
    root, _ = bench
    for row in _gt(root, "MET_database.json"):
        assert (
            set(row) == {"id", "path"}
            and row["path"] == f"MET/{row['id']}/{row['path'].split('/')[-1]}"
        )
    paths = []
    for name in ("valset.json", "testset.json"):
        for row in _gt(root, name):
            paths.append(row["path"])
            if "MET_id" in row:
                assert set(row) == {"path", "MET_id"} and row["path"].startswith("test_met/")
            else:
                assert set(row) == {"path", "category"}
                assert row["path"].split("/")[0] in ("test_other", "test_noart")
    assert len(paths) == len(set(paths))  # val and test share folders, never an image


def test_classes_views_and_mini(bench):
    root, summary = bench
    db = _gt(root, "MET_database.json")
    per_class = Counter(r["id"] for r in db)
    assert sorted(per_class) == list(range(TINY.classes))
    assert max(per_class.values()) <= 10
    for c, n in per_class.items():  # views numbered 0..n-1
        assert sorted(r["path"] for r in db if r["id"] == c) == sorted(
            f"MET/{c}/{v}.jpg" for v in range(n)
        )
    assert summary["single_image_share"] == sum(n == 1 for n in per_class.values()) / TINY.classes
    mini = _gt(root, "mini_MET_database.json")
    assert all(r in db for r in mini)
    mini_classes = {r["id"] for r in mini}
    query_classes = {
        r["MET_id"] for n in ("valset.json", "testset.json") for r in _gt(root, n) if "MET_id" in r
    }
    assert query_classes <= mini_classes < set(per_class)


def test_long_tail_like_the_met():
    views = np.asarray(views_per_class(20000, rng_for(0, "t"), single_share=0.6))
    assert views.min() == 1 and views.max() == 10
    assert abs((views == 1).mean() - 0.6) < 0.015
    assert 1.7 < views.mean() < 1.9  # the Met: 397,121 images / 224,408 classes = 1.77


def test_val_and_test_are_class_disjoint(bench):
    root, _ = bench
    val = {r["MET_id"] for r in _gt(root, "valset.json") if "MET_id" in r}
    test = {r["MET_id"] for r in _gt(root, "testset.json") if "MET_id" in r}
    assert val and test and not val & test


def test_distractor_ratio_and_mix(bench):
    root, summary = bench
    for s in ("val", "test"):
        met = summary[f"{s}_met"]
        other, noart = summary[f"{s}_other"], summary[f"{s}_noart"]
        assert other + noart == round(TINY.distractor_ratio * met)
        assert other == round(TINY.other_share * (other + noart))
    n_queries = summary["val_met"] + summary["test_met"]
    assert n_queries == TINY.n_met_queries
    assert summary["val_met"] < summary["test_met"]


def test_attributes_file(bench):
    root, _ = bench
    data = _gt(root, "attributes.json")
    assert data["labels"] == vocabulary()
    assert [e["id"] for e in data["exhibits"]] == list(range(TINY.classes))
    departments = set(KINDS.values())
    for e in data["exhibits"]:
        assert e["attribute_ids"] == [data["labels"].index(x) for x in e["labels"]]
        groups = Counter(x.split("::")[0] for x in e["labels"])
        assert groups["department"] == 1 and groups["style"] == 1 and groups["colour"] <= 3
        assert e["labels"][0].split("::")[1] in departments
        assert e["relation"] in ("original", "copy", "variant", "series")
    families = Counter(e["family"] for e in data["exhibits"])
    originals = Counter(e["family"] for e in data["exhibits"] if e["relation"] == "original")
    assert originals == Counter(dict.fromkeys(families, 1))  # one original per family


def test_same_seed_same_bytes_whatever_the_workers(bench, tmp_path):
    root, _ = bench
    again = tmp_path / "again"
    generate(again, SynthConfig(**{**TINY.__dict__, "workers": 2}))
    assert _tree_digest(again) == _tree_digest(root)


def test_another_seed_gives_other_images(bench, tmp_path):
    root, _ = bench
    other = tmp_path / "other"
    generate(other, SynthConfig(**{**TINY.__dict__, "seed": 4}))
    a, b = _tree_digest(root), _tree_digest(other)
    assert a["MET/0/0.jpg"] != b["MET/0/0.jpg"]


def test_resume_rewrites_only_missing_images(bench, tmp_path):
    root, _ = bench
    copy = tmp_path / "copy"
    generate(copy, TINY)
    victim = copy / "MET" / "5" / "0.jpg"
    victim.unlink()
    (copy / "MET" / "5" / "0.jpg.tmp").write_bytes(b"half-written")
    (copy / "MET" / "5" / ".0.12345.tmp.jpg").write_bytes(b"half-written")  # artid.files' name
    summary = generate(copy, TINY)
    assert summary["images_written"] == 1
    assert _tree_digest(copy) == _tree_digest(root)


def test_refuses_a_folder_with_other_content(tmp_path):
    root = tmp_path / "r"
    generate(root, SynthConfig(**{**TINY.__dict__, "distractor_ratio": 1.0}))
    with pytest.raises(ArtidError, match="distractor_ratio"):
        generate(root, TINY)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ArtidError, match="not empty"):
        generate(foreign, TINY)


@pytest.mark.parametrize(
    "field,value",
    [
        ("classes", 5),
        ("image_size", 8),
        ("val_share", 1.5),
        ("distractor_ratio", -1.0),
        ("workers", 0),
    ],
)
def test_bad_config_names_the_field(tmp_path, field, value):
    with pytest.raises(ArtidError, match=field):
        generate(tmp_path / "x", SynthConfig(**{**TINY.__dict__, field: value}))
    assert not (tmp_path / "x").exists()


def test_a_design_renders_alike_at_every_size():
    for i, kind in enumerate(KINDS):
        d = make_design(rng_for(11, i), kind)
        big, a_big = render(d, 256)
        small, _ = render(d, 64)
        down = (
            np.asarray(
                Image.fromarray((big * 255).astype(np.uint8)).resize(small.shape[1::-1], Image.BOX),
                np.float32,
            )
            / 255
        )
        assert np.abs(down - small).mean() < 0.06, kind
        other, _ = render(make_design(rng_for(12, i), kind), 64)
        if other.shape == small.shape:
            assert np.abs(other - small).mean() > np.abs(down - small).mean()


def test_relatives_share_what_their_relation_says():
    base = make_design(rng_for(1, "base"), "painting")
    copy = vary(base, rng_for(1, "c"), "copy")
    variant = vary(base, rng_for(1, "v"), "variant")
    series = vary(base, rng_for(1, "s"), "series")
    assert (copy.composition, copy.detail, copy.motifs) == (
        base.composition,
        base.detail,
        base.motifs,
    )
    assert variant.composition == base.composition and variant.detail != base.detail
    assert series.composition != base.composition
    assert (series.kind, series.style, series.motifs) == (base.kind, base.style, base.motifs)
    with pytest.raises(ValueError):
        vary(base, rng_for(1, "x"), "cousin")


def test_dominant_colours_measure_the_pixels():
    rgb = np.zeros((10, 10, 3), np.float32)
    rgb[:, :6] = [0.9, 0.1, 0.1]  # 60% red
    rgb[:, 6:9] = [0.1, 0.2, 0.9]  # 30% blue
    rgb[:, 9:] = [0.1, 0.8, 0.1]  # 10% green: below the 15% share
    assert dominant_colours(rgb, np.ones((10, 10), np.float32)) == ["red", "blue"]
    assert colour_name(np.asarray([0.05, 0.05, 0.05])) == "black"
    assert colour_name(np.asarray([0.5, 0.5, 0.52])) == "grey"


def test_command_writes_and_reports(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    synth_command.add_arguments(parser)
    args = parser.parse_args(
        [
            "--out",
            str(tmp_path / "cli"),
            "--classes",
            "12",
            "--image-size",
            "48",
            "--distractor-ratio",
            "2",
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    assert synth_command.run(args) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[: out.rindex("}") + 1])
    assert summary["classes"] == 12 and summary["images_written"] == summary["images_total"]
    assert len(load_split(tmp_path / "cli", "test").entries) == summary["test_met"] * 3


def test_default_val_share_gives_val_about_the_mets_129_queries():
    # the Met's own split
    assert SynthConfig(met_queries=1132).n_val_share == pytest.approx(129 / 1132)
    assert SynthConfig(met_queries=5000).n_val_share == 0.1
    # small benchmarks: capped, test keeps 60%
    assert SynthConfig(met_queries=300).n_val_share == 0.4
    assert SynthConfig(met_queries=300, val_share=0.2).n_val_share == 0.2
    cfg = SynthConfig(classes=1000, met_queries=400)
    plan = make_plan(cfg.classes, 0, cfg.n_met_queries, cfg.n_val_share, 0.0, 0.5, 0.15, 0.6)
    n_val = sum("MET_id" in r for r in plan.val)
    assert 110 <= n_val <= 150 and n_val + sum("MET_id" in r for r in plan.test) == 400


def test_families_leave_most_exhibits_unique():
    from artid.data.synth.families import plan_families

    members = plan_families(20000, rng_for(0, "families"))
    sizes = Counter(m.family for m in members)
    related = sum(n for n in sizes.values() if n > 1) / len(members)
    assert 0.25 < related < 0.42  # about a third of the classes have a near-identical relative
    assert max(sizes.values()) <= 8
    assert all(
        (m.relation is None) == (i == 0)
        for fam in _by_family(members).values()
        for i, m in enumerate(fam)
    )


def _by_family(members: list) -> dict:
    out: dict = {}
    for m in members:
        out.setdefault(m.family, []).append(m)
    return {f: sorted(ms, key=lambda m: m.relation is not None) for f, ms in out.items()}


def test_refuses_to_resume_a_benchmark_of_an_older_generator(tmp_path):
    root = tmp_path / "old"
    stamp = root / "ground_truth" / "synth_config.json"
    stamp.parent.mkdir(parents=True)
    old = FORMAT_VERSION - 1
    stamp.write_text(
        json.dumps({"format": old, **TINY.content()})
    )  # same settings, older generator
    with pytest.raises(ArtidError, match=f"format: {old} -> {FORMAT_VERSION}"):
        generate(root, TINY)


def test_imet_layout_reads_back_through_the_imet_reader(bench):
    root, summary = bench
    attributes = _gt(root, "attributes.json")
    ds = IMetDataset(root / "imet")
    assert ds.kind == "custom" and list(ds.groups) == ["department", "style", "colour", "motif"]
    assert ds.label_names == attributes["labels"]
    exhibit_ids = [e["attribute_ids"] for e in attributes["exhibits"]]
    expected = {
        "train": [(r["path"], r["id"]) for r in _gt(root, "MET_database.json")],
        "val": [(r["path"], r["MET_id"]) for r in _gt(root, "valset.json") if "MET_id" in r],
        "test": [(r["path"], r["MET_id"]) for r in _gt(root, "testset.json") if "MET_id" in r],
    }
    assert ds.available_splits() == ["train", "val", "test"]
    for name, rows in expected.items():
        split = ds.split(name)
        assert [p.resolve() for p in split.paths] == [
            (root / p).resolve() for p, _ in rows
        ]  # no copies
        targets = split.targets()
        for row, (_, c) in enumerate(rows):
            assert np.flatnonzero(targets[row]).tolist() == sorted(exhibit_ids[c])
    assert (
        len(ds.split("val").ids) == summary["val_met"]
        and len(ds.split("test").ids) == summary["test_met"]
    )


def _visible_share(quad: np.ndarray, size: tuple[int, int]) -> tuple[float, float]:
    """(area of the quad inside the photo / photo area, / quad area), rasterised at 4x."""
    w, h = size
    mask = Image.new("L", (w * 4, h * 4), 0)
    ImageDraw.Draw(mask).polygon([(4 * x, 4 * y) for x, y in quad], fill=1)
    inside = np.asarray(mask).sum() / 16
    x, y = quad[:, 0], quad[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    return inside / (w * h), inside / area


def test_placements_mark_the_exhibit_in_every_met_query(bench):
    root, _ = bench
    data = _gt(root, "placements.json")
    queries = [r for n in ("valset.json", "testset.json") for r in _gt(root, n) if "MET_id" in r]
    assert data["version"] == FORMAT_VERSION and sorted(data["placements"]) == sorted(
        r["path"] for r in queries
    )
    plan = make_plan(
        TINY.classes,
        TINY.seed,
        TINY.n_met_queries,
        TINY.n_val_share,
        TINY.distractor_ratio,
        TINY.other_share,
        TINY.mini_share,
        TINY.single_share,
    )
    jobs = {j.path: j for j in plan.jobs}
    grid = [(u, v) for u in np.linspace(0.05, 0.95, 12) for v in np.linspace(0.05, 0.95, 12)]
    true_corr, shifted_corr = [], []
    for path, corners in data["placements"].items():
        quad = np.asarray(corners, np.float64)
        assert quad.shape == (4, 2)
        photo = np.asarray(Image.open(root / path).convert("L"), np.float32)
        share, visible = _visible_share(quad, photo.shape[::-1])
        # the documented ranges (visitor_photo_placed)
        assert 0.1 <= share <= 0.9 and visible >= 0.5
        job = jobs[path]
        ref = render(design_of(TINY.seed, "met", job.index, job.member), 48)[0].mean(-1)

        # the photo inside q, against the exhibit's own render
        def corr(q: np.ndarray, photo: np.ndarray = photo, ref: np.ndarray = ref) -> float:
            a, b = [], []
            for (u, v), (x, y) in zip(
                grid, map_points([(0, 0), (1, 0), (1, 1), (0, 1)], q.tolist(), grid)
            ):
                if 0 <= x < photo.shape[1] and 0 <= y < photo.shape[0]:
                    a.append(photo[int(y), int(x)])
                    rh, rw = ref.shape
                    b.append(ref[min(int(v * rh), rh - 1), min(int(u * rw), rw - 1)])
            return float(np.corrcoef(a, b)[0, 1])

        true_corr.append(corr(quad))
        shifted_corr.append(corr(quad + [0.35 * np.ptp(quad[:, 0]), 0.0]))
    assert np.median(true_corr) > 0.7
    assert np.median(np.subtract(true_corr, shifted_corr)) > 0.3
