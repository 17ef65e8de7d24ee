"""``artid extract --ray``: a local Ray cluster (2 workers) writes the single-process files."""

import sys
from pathlib import Path

import numpy as np
import pytest
import ray  # the test extra installs it: these tests run, never skipped
import torch
from test_extract import _save, make_met_root

from artid.cli import main
from artid.descriptors import load_descriptors
from artid.errors import ArtidError
from artid.extraction import (
    ExtractionSettings,
    extract_lists,
    folder_source,
    list_source,
    met_sources,
    ray_run,
)
from artid.extraction.remote import (
    any_folder_source,
    any_list_source,
    location_of,
    url_list_source,
)
from artid.extraction.shards import ShardStore
from artid.localisation.crop import CropSettings
from artid.models import build_embedder

# 6 database images in 3 shards, 3 val images (one missing, one cut) in 2: the 2 workers share
# them; the val photos are cropped (activation-map box), the studio photos are not
SETTINGS = ExtractionSettings(
    scales=(1.0, 0.5), batch_size=2, workers=0, shard_size=2, crop=CropSettings()
)


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance for the module (start-up takes seconds): 2 CPUs, 1 thread each."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=100 * 2**20,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def emb():
    return build_embedder("efficientnet_lite0")


@pytest.fixture(scope="module")
def met(tmp_path_factory) -> Path:
    return make_met_root(tmp_path_factory.mktemp("ray") / "met")


@pytest.fixture(scope="module")
def pics(tmp_path_factory) -> Path:
    """A list file of 3 photos and a missing one."""
    folder = tmp_path_factory.mktemp("pics")
    for i in range(3):
        _save(folder / f"{i}.jpg", 40 + 8 * i, 48, seed=20 + i)
    (folder / "list.txt").write_text("0.jpg 7\n1.jpg\ngone.jpg\n2.jpg 9\n")
    return folder


@pytest.fixture(scope="module")
def single(met: Path, pics: Path, emb, tmp_path_factory) -> dict:
    """The single-process output (1 torch thread, as in the workers)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("single")
    lists = [*met_sources(met, ["database", "val"]), list_source(pics / "list.txt")]
    return extract_lists(lists, emb, out, SETTINGS, progress=False)


def _same(a, b) -> None:
    assert [e.to_json() for e in a.entries] == [e.to_json() for e in b.entries]
    assert a.matrix.dtype == b.matrix.dtype == np.float32
    np.testing.assert_array_equal(a.matrix, b.matrix)
    assert a.failures == b.failures
    assert a.model == b.model and a.settings == b.settings


def test_two_workers_write_the_single_process_files(cluster, met, pics, emb, single, tmp_path):
    out = tmp_path / "ray"
    url = (pics / "list.txt").as_uri()  # file:///...: any fsspec protocol goes the same way
    remote = url_list_source(url)
    assert remote.name == "list" and remote.entries == list_source(pics / "list.txt").entries
    lists = [*met_sources(met, ["database", "val"]), remote]
    result = ray_run.extract_lists_ray(lists, emb, out, SETTINGS, workers=2, progress=False)
    assert list(result) == ["database", "val", "list"]
    for name in ("database", "val"):
        _same(load_descriptors(out / name), single[name])
    assert len(single["val"].failures) == 2  # the missing and the cut file: recorded, not fatal
    assert "crop" in single["val"].settings and "crop" not in single["database"].settings
    assert not (out / "database.parts").exists()
    got, want = load_descriptors(out / "list"), single["list"]  # images read through fsspec
    assert [e.to_json() for e in got.entries] == [e.to_json() for e in want.entries]
    np.testing.assert_array_equal(got.matrix, want.matrix)
    assert [f["path"] for f in got.failures] == ["gone.jpg"]
    assert got.failures[0]["error"] == f"{pics.as_uri()}/gone.jpg: file not found"


def test_interrupted_run_resumes_on_ray_at_shard_granularity(
    cluster, met, emb, single, tmp_path, monkeypatch
):
    written: list[int] = []
    real = ShardStore.write_shard

    def crash_after_two(self, shard, vectors, failures):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(shard)
        real(self, shard, vectors, failures)

    monkeypatch.setattr(ShardStore, "write_shard", crash_after_two)
    out = tmp_path / "out"
    lists = met_sources(met, ["database"])
    with pytest.raises(KeyboardInterrupt):  # a single-process run, stopped after 2 of 3 shards
        extract_lists(lists, emb, out, SETTINGS, progress=False)
    assert len(list((out / "database.parts").glob("shard_*.json"))) == 2
    computed: list = []
    monkeypatch.setattr(
        ShardStore, "write_shard", lambda self, *a: computed.append(a[0]) or real(self, *a)
    )
    result = ray_run.extract_lists_ray(lists, emb, out, SETTINGS, workers=1, progress=False)
    assert computed == [2]  # only the missing shard
    _same(result["database"], single["database"])
    _same(load_descriptors(out / "database"), single["database"])


def test_cli_extract_ray_on_the_running_cluster(cluster, met, single, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["extract", "--root", str(met), "--splits", "val", "--out", str(out), "--crop", "cam"]
    argv += ["--scales", "1,0.5", "--batch-size", "2", "--shard-size", "2", "--device", "cpu"]
    assert main([*argv, "--ray", "--ray-workers", "1"]) == 0
    assert "val: 1 descriptors" in capsys.readouterr().out
    _same(load_descriptors(out / "val"), single["val"])


def test_url_without_ray_and_ray_missing_are_short_errors(monkeypatch, tmp_path):
    with pytest.raises(ArtidError, match=r"--list file:///x/l.txt: .*\(add --ray\)"):
        any_list_source("file:///x/l.txt", None, on_ray=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ArtidError, match=r"pip install 'artid\[ray\]'"):
        ray_run.import_ray()


def test_folder_at_a_url_lists_what_the_local_folder_lists(tmp_path):
    for rel in ("b/2.png", "a/1.jpg", "c.JPG", "a.b/0.jpg"):  # a/ before a.b/, as paths sort
        _save(tmp_path / "pics" / rel, 8, 8, seed=1)
    (tmp_path / "pics" / "notes.txt").write_text("not an image")
    local = folder_source(tmp_path / "pics")
    remote = any_folder_source((tmp_path / "pics").as_uri(), None, on_ray=True)
    assert remote.name == local.name == "pics"
    assert remote.entries == local.entries
    assert [location_of(remote, e) for e in remote.entries] == [
        (tmp_path / "pics" / e.path).as_uri() for e in local.entries
    ]
    with pytest.raises(ArtidError, match="no image files"):
        any_folder_source((tmp_path / "pics" / "b" / "none").as_uri(), None, on_ray=True)


def test_an_error_in_a_worker_comes_back_as_a_short_error(emb):
    """Ray would wrap an exception of the actor in its own (or lose it, raised in __init__):
    the worker returns it as the shard's ``error``, which extract_lists_ray raises as it is."""
    half = ExtractionSettings(scales=(1.0,), dtype="float16", shard_size=4)  # not on a CPU
    worker = ray_run.ShardEmbedder(emb, half, "cpu", threads=1)  # in this process
    rows = {"list": [0], "shard": [3], "positions": [[0]], "locations": [["x.jpg"]]}
    out = worker({k: np.array(v, dtype=object) for k, v in {**rows, "crop": [False]}.items()})
    assert list(out["shard"]) == [3]
    assert "--dtype float16 needs a GPU" in out["error"][0]


def test_int8_is_refused_on_ray_before_anything_starts(emb, met, tmp_path):
    int8 = ExtractionSettings(scales=(1.0,), precision="int8")
    with pytest.raises(ArtidError, match="int8"):
        ray_run.extract_lists_ray(met_sources(met, ["val"]), emb, tmp_path / "out", int8)
    assert not (tmp_path / "out").exists()
