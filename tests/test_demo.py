"""End to end: ``cli.py demo`` at its smallest size (synthesise KITTI and NYU worlds, prepare,
evaluate, train, evaluate) writes the stores, tables, pictures and JSON it promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "demo",
        "--out",
        str(tmp_path),
        "--frames",
        "4",
        "--steps",
        "2",
        "--height",
        "64",
        "--width",
        "128",
    ]
    assert run_cli(argv) == 0
    printed = capsys.readouterr().out
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]", "trained model:", "abs_rel"):
        assert step in printed
    report = json.loads((tmp_path / "demo.json").read_text())
    assert report["before"]["protocol"] == "eigen" and report["after"]["n_images"] == 4
    assert report["before"]["metrics"]["abs_rel"] > 0
    assert list((tmp_path / "after").glob("*.png")) and list((tmp_path / "before").glob("*.png"))
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    for name in ("raw_train", "labeled_train", "labeled_test"):
        assert (tmp_path / "nyu_stores" / f"{name}.zarr").is_dir()
