"""End to end: ``cli.py demo`` at its smallest size (synthesise KITTI and NYU worlds, prepare with
depth hints, evaluate, train, evaluate) writes the stores, tables, pictures and JSON it promises;
the side-by-side picture helper draws every panel in the truth's colour range."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import run_cli
from train.colormap import colorize
from train.eval.pictures import side_by_side

LAST_LINE = re.compile(r"^abs_rel (\d+\.\d{3}) -> (\d+\.\d{3}) \((\d+)% (lower|higher)\); ")


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
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]", "trained model:", "shape only"):
        assert step in printed
    last = printed.strip().splitlines()[-1]
    match = LAST_LINE.match(last)
    assert match, last
    report = json.loads((tmp_path / "demo.json").read_text())
    before, after = report["before"], report["after"]
    assert before["protocol"] == "eigen" and after["n_images"] == 4
    assert before["scaling"] == after["scaling"] == "x5.4"  # the stereo model's own protocol
    assert (float(match[1]), float(match[2])) == (
        round(before["metrics"]["abs_rel"], 3),
        round(after["metrics"]["abs_rel"], 3),
    )
    assert set(report["median_scaled_abs_rel"]) == {"before", "after"}
    assert list((tmp_path / "after").glob("*.png")) and list((tmp_path / "before").glob("*.png"))
    pictures = sorted((tmp_path / "side_by_side").glob("*.png"))
    assert [p.name for p in pictures] == [f"{i:04d}.png" for i in range(4)]
    row = cv2.imread(str(pictures[0]))
    assert row.shape == (2 * (64 + 10), 4 * 2 * 128, 3)
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    for name in ("raw_train", "labeled_train", "labeled_test"):
        assert (tmp_path / "nyu_stores" / f"{name}.zarr").is_dir()


def test_side_by_side_uses_the_truth_colour_range() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    truth = rng.uniform(2.0, 50.0, (16, 24)).astype(np.float32)
    truth[:4] = 0  # sky: no depth
    exact = truth[::2, ::2]  # what nearest-neighbour shrinking keeps
    too_near = np.full((8, 12), 0.5, np.float32)
    row = side_by_side(image, [exact, too_near], truth, ["in", "a", "b", "truth"], zoom=1)
    assert row.shape == (8 + 10, 4 * 12, 3)
    panels = np.split(row[10:], 4, axis=1)
    assert np.array_equal(panels[0], image)
    inv = np.where(exact > 0, 1 / np.maximum(exact, 1e-6), 0).astype(np.float32)
    valid = inv > 0
    expected = colorize(inv, valid, vmin=inv[valid].min(), vmax=np.percentile(inv[valid], 95))
    assert np.array_equal(panels[3], expected)
    assert np.array_equal(panels[1][valid], expected[valid])  # the exact prediction
    assert (panels[2] == panels[2][0, 0]).all()  # far too near: brightest everywhere
    with pytest.raises(ValueError, match="4 panels but 3 labels"):
        side_by_side(image, [exact, exact], truth, ["in", "a", "truth"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "-1"], "--steps must be at least 1 (got -1)"),
        (["--steps", "0"], "--steps must be at least 1 (got 0)"),
        (["--frames", "3"], "at least 4 frames"),
        (["--height", "50"], "--height 50: must be a multiple of 32"),
    ],
)
def test_bad_options_are_refused_before_any_work(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert run_cli(["demo", "--out", str(out), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_an_earlier_demo_is_kept_without_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "demo.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    assert run_cli(["demo", "--out", str(tmp_path), "--steps", "-1"]) == 1  # options first
    assert run_cli(["demo", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "already holds a demo (run, demo.json); pass --overwrite" in err
    assert (tmp_path / "demo.json").read_text() == "{}"
    from demo import check_out

    check_out(tmp_path, overwrite=True)  # removes the demo's outputs only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
