"""``synth`` (issue 23, item 13): ``--masks`` writes the true object masks, and a folder that is
not empty is refused unless ``--overwrite`` (which clears only a world written before)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pipelines.synth
from tests.helpers import one_error_line, run_cli


@pytest.fixture
def fake_kitti(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """``write_kitti`` replaced by a stub that records its options and writes a tiny world
    (the real one takes minutes on a loaded machine; tests/pipelines/passes covers it)."""
    calls: list[dict[str, Any]] = []

    def stub(out: Path, **options: Any) -> list[object]:
        calls.append(options)
        (Path(out) / "2011_09_26").mkdir(parents=True, exist_ok=True)
        if options.get("masks"):
            np.savez(Path(out) / "masks.npz", x=np.zeros(1))
        return [object()] * 3

    monkeypatch.setattr(pipelines.synth, "write_kitti", stub)
    return calls


def test_masks_option_writes_the_true_masks(
    tmp_path: Path, fake_kitti: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "world"
    assert run_cli(["synth", "kitti", str(out), "--frames", "4", "--masks"]) == 0
    assert fake_kitti[0]["masks"] is True and (out / "masks.npz").is_file()
    assert "true object masks in masks.npz" in capsys.readouterr().out
    assert json.loads((out / "synth.json").read_text())["masks"] is True


def test_a_folder_that_is_not_empty_is_refused(
    tmp_path: Path, fake_kitti: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        assert run_cli(["synth", "kitti", str(mine), "--frames", "4", *extra]) == 1
        line = one_error_line(capsys.readouterr().err)
        assert "not empty" in line and ("--overwrite" in line or "not a synthetic world" in line)
    assert (mine / "notes.txt").read_text() == "keep me" and not fake_kitti

    world = tmp_path / "world"
    assert run_cli(["synth", "kitti", str(world), "--frames", "4", "--masks"]) == 0
    assert run_cli(["synth", "kitti", str(world), "--frames", "5"]) == 1
    assert "pass --overwrite" in one_error_line(capsys.readouterr().err)
    assert run_cli(["synth", "kitti", str(world), "--frames", "5", "--overwrite"]) == 0
    assert not (world / "masks.npz").exists()  # the previous world was cleared first
    assert json.loads((world / "synth.json").read_text())["frames"] == 5
