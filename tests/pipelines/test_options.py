"""Bad sizes and counts of the data commands (issue 23, item 6): one ``error:`` line naming the
option, before any work (nothing is created)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.store.options import MIN_SIZE, parse_size
from tests.helpers import one_error_line, run_cli

CASES = [
    ("prepare-kitti {world} {split} {out} --size 7x9",
     "--size 7x9: height and width must be at least 32 pixels"),
    ("prepare-kitti {world} {split} {out} --size 0x640", "--size 0x640: height and width"),
    ("prepare-kitti {world} {split} {out} --hint-size 16x1024", "--hint-size 16x1024: height"),
    ("prepare-kitti {world} {split} {out} --size 192", "--size '192' must be HEIGHTxWIDTH"),
    ("prepare-kitti {world} {split} {out} --chunk 0", "--chunk must be positive (got 0)"),
    ("prepare-kitti {world} {split} {out} --workers 0", "--workers must be positive (got 0)"),
    ("prepare-nyu {world} {out} --size 7x9", "--size 7x9: height and width"),
    ("prepare-nyu {world} {out} --workers -2", "--workers must be positive (got -2)"),
    ("prepare-nyu {world} {out} --neighbour-gap 0", "--neighbour-gap must be positive (got 0)"),
    ("prepare-nyu {world} {out} --val-fraction 1", "--val-fraction must be at least 0 and below 1"),
    ("synth kitti {out} --frames 2", "--frames must be at least 4 (got 2)"),
    ("synth kitti {out} --seed -1", "--seed must be 0 or more (got -1)"),
    ("synth nyu-raw {out} --masks", "--masks: only the kitti world has object masks"),
    ("masks {out}/s.zarr --batch-size 0", "--batch-size must be positive (got 0)"),
    ("hints {out}/s.zarr --kitti-root {world} --workers 0", "--workers must be positive (got 0)"),
    ("hints {out}/s.zarr --kitti-root {world} --hint-size 8x8", "--hint-size 8x8: height"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "needle"), CASES)
def test_bad_sizes_and_counts_are_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, needle: str
) -> None:
    world, split, out = tmp_path / "world", tmp_path / "split", tmp_path / "out"
    world.mkdir()
    split.mkdir()
    args = command.format(world=world, split=split, out=out).split()
    assert run_cli(args) == 1
    line = one_error_line(capsys.readouterr().err)
    assert needle in line, line
    assert not out.exists()  # nothing written


def test_parse_size() -> None:
    assert parse_size("192x640") == (192, 640) and parse_size(f"{MIN_SIZE}X{MIN_SIZE}") == (32, 32)
    with pytest.raises(ValueError, match="--hint-size '1x2x3' must be HEIGHTxWIDTH"):
        parse_size("1x2x3", "--hint-size")
