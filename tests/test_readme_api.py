"""The README's Python API example runs as written, on a tiny benchmark in its expected places."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import artid
from artid.cli import main as cli
from artid.data.synth import SynthConfig, generate

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_import_artid_names_the_documented_entry_points_without_torch() -> None:
    for name in ("load_bundle", "extract_folder", "KNNPipeline", "PipelineConfig", "RerankConfig",
                 "load_descriptors", "evaluate"):
        obj = getattr(artid, name)
        assert callable(obj) and obj.__doc__, name
    with pytest.raises(AttributeError):
        artid.no_such_thing  # noqa: B018
    import subprocess

    code = "import sys, artid; artid.KNNPipeline; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    bench = Path("runs/demo/benchmark")
    generate(bench, SynthConfig(classes=12, seed=5, image_size=64, workers=1, progress=False))
    assert cli(["extract", "--root", str(bench), "--out", "runs/demo/descriptors/ms",
                "--max-size", "64"]) == 0
    assert cli(["index", "build", str(bench), "--out", "runs/demo/bundle", "--max-size", "64"]) == 0
    capsys.readouterr()
    exec(compile(_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "first test answers:" in out and "test GAP" in out
    assert (tmp_path / "runs/api/pipeline/pipeline.json").is_file()
    assert (tmp_path / "runs/api/eval/results.json").is_file()
    assert (tmp_path / "runs/api/photos.npy").is_file()
