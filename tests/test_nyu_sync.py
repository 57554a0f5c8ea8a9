"""Frame synchronisation against the toolbox's get_synched_frames (spec nyuv2.md 2, 8, 9.4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nyutools import open_scene, sync_frames
from nyutools.sync import greedy_match


def names(kind: str, ext: str, times: list[float]) -> list[str]:
    return [f"{kind}-{t:.6f}-{i}.{ext}" for i, t in enumerate(times)]


def rgb_times(depth: list[float], rgb: list[float]) -> list[float | None]:
    frames = sync_frames(names("d", "pgm", depth) + names("r", "ppm", rgb))
    return [f.t_rgb for f in frames]


def test_matches_toolbox_on_reference_scene(testvectors: Path) -> None:
    files = (testvectors / "nyu" / "scene_files.txt").read_text().split()
    expected = [
        line.split()
        for line in (testvectors / "nyu" / "sync_expected.txt").read_text().splitlines()
    ]
    frames = sync_frames(files)
    assert [[f.depth, f.rgb, f.accel] for f in frames] == expected
    assert frames[0].t_depth == 1315403270.000002


def test_reference_scene_from_a_folder(testvectors: Path, tmp_path: Path) -> None:
    files = (testvectors / "nyu" / "scene_files.txt").read_text().split()
    scene_dir = tmp_path / "office_0001"
    scene_dir.mkdir()
    for name in reversed(files):
        (scene_dir / name).write_bytes(b"")
    expected = (testvectors / "nyu" / "sync_expected.txt").read_text().splitlines()
    got = [f"{f.depth} {f.rgb} {f.accel}" for f in sync_frames(open_scene(scene_dir))]
    assert got == expected


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        ([1.0], [1.5]),  # tie: the pointer advances
        ([1.0, 1.2], [1.5, 1.5]),
        ([1.0, 0.6], [1.5, 1.5]),  # the pointer never moves back, though 0.5 is closer to 0.6
    ],
)
def test_spec_synthetic_cases(depth: list[float], expected: list[float]) -> None:
    rgb = [0.5, 1.5, 2.5]
    assert [rgb[j] for j in greedy_match(depth, rgb)] == expected
    if depth == sorted(depth):  # file names sort by time, so only in-order cases apply
        assert rgb_times(depth, rgb) == expected


def test_absent_streams_give_none() -> None:
    frames = sync_frames(names("d", "pgm", [1.0, 2.0]) + ["INDEX.txt"])
    assert len(frames) == 2
    assert all(f.rgb is None and f.accel is None and f.t_rgb is None for f in frames)
    assert sync_frames([]) == []
    assert greedy_match([1.0], []) == []
