"""Bad inputs and faults during ``prepare-kitti`` (issue 23, items 5, 9, 13, 19): the ground truth
follows the split, a damaged PNG is one error line (no libpng output) that the store remembers,
a full disk names the store and the space needed, true masks from a synthetic world."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import kitti
from pipelines import open_store
from pipelines.store import IncompleteStoreError
from tests.helpers import one_error_line, run_cli

TRAIN_DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"
FAST = ["--size", "64x192", "--chunk", "4", "--workers", "1"]


@pytest.fixture
def world(kitti_world: Path, tmp_path: Path) -> Path:
    """The session's KITTI world as links (files may be replaced without touching it)."""
    copy = tmp_path / "world"
    shutil.copytree(kitti_world, copy, copy_function=os.symlink)
    return copy


def small_split(tmp_path: Path, lines: list[str]) -> Path:
    split = tmp_path / "split"
    split.mkdir(exist_ok=True)
    (split / "train_files.txt").write_text("".join(f"{line}\n" for line in lines))
    return split


def test_auto_ground_truth_follows_the_split(
    kitti_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eigen = kitti_world / "splits" / "eigen"
    lines = kitti.read_split(eigen / "test_files.txt")
    assert all(kitti.improved_gt_path(kitti_world, ln.folder, ln.frame).is_file() for ln in lines)
    # improved maps exist for every Eigen test frame: the Eigen store still gets velodyne
    assert run_cli(["prepare-kitti", str(kitti_world), str(eigen), str(tmp_path), *FAST]) == 0
    out = capsys.readouterr().out
    assert (
        "ground truth: velodyne (protocol eigen; --gt auto: split folder 'eigen' -> velodyne, "
        "as export_gt_depth.py)"
    ) in out
    store = open_store(tmp_path / "test.zarr")
    assert store.attrs["ground_truth"]["protocol"] == "eigen"
    row, frame = 0, int(store["frame"][0])
    ref = kitti.velodyne_depth(kitti.calib_dir(kitti_world, lines[0].folder),
                               kitti.velodyne_path(kitti_world, lines[0].folder, frame),
                               cam=2, vel_depth=True)  # fmt: skip
    h, w = store["gt_size"][row]
    np.testing.assert_array_equal(store["gt_depth"][row, :h, :w], ref.astype(np.float32))
    assert run_cli(["info", str(tmp_path / "test.zarr")]) == 0
    info = capsys.readouterr().out
    assert "truth      velodyne scans projected to camera 02 (vel_depth=True" in info
    assert "protocol eigen" in info

    bench = kitti_world / "splits" / "eigen_benchmark"
    out_bench = tmp_path / "bench"
    assert run_cli(["prepare-kitti", str(kitti_world), str(bench), str(out_bench), *FAST]) == 0
    assert "ground truth: improved (protocol eigen_benchmark; --gt auto" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_damaged_png_is_one_error_line_and_the_store_remembers_it(
    world: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], damage: str
) -> None:
    split = small_split(tmp_path, [f"{TRAIN_DRIVE} 2 l"])
    png = kitti.image_path(world, TRAIN_DRIVE, 3, "l")
    data = png.read_bytes()
    png.unlink()
    if damage == "truncated":
        png.write_bytes(data[: len(data) // 2])
    else:
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0xFF
        png.write_bytes(bytes(flipped))
    out = tmp_path / "out"
    assert run_cli(["prepare-kitti", str(world), str(split), str(out), *FAST]) == 1
    captured = capfd.readouterr()
    line = one_error_line(captured.err)  # C-level stderr included: no "libpng error" line
    assert line == f"error: {png}: cannot read image (missing, truncated or not a PNG)"
    assert "libpng" not in captured.out + captured.err

    with pytest.raises(IncompleteStoreError) as refused:
        open_store(out / "train.zarr", require_complete=True)
    message = str(refused.value)
    assert "failed on bad input" in message and str(png) in message
    assert "fails again until that is fixed" in message and "--skip-missing" in message
    assert "interrupted" not in message and "\n" not in message


def test_a_full_disk_names_the_store_and_the_space_needed(
    kitti_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    import zarr.storage._local as local

    original = local._put

    def full(path: Path, value, exclusive: bool = False) -> int:
        if "/image/c/" in str(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            with local._atomic_write(path, "wb") as f:  # zarr's own temporary file
                f.write(bytes(value.as_buffer_like())[:10])
                raise OSError(errno.ENOSPC, "No space left on device")
        return original(path, value, exclusive=exclusive)

    split = small_split(tmp_path, [f"{TRAIN_DRIVE} 2 l", f"{TRAIN_DRIVE} 3 r"])
    out = tmp_path / "out"
    monkeypatch.setattr(local, "_put", full)
    assert run_cli(["prepare-kitti", str(kitti_world), str(split), str(out), *FAST]) == 1
    line = one_error_line(capfd.readouterr().err)
    assert line.startswith(f"error: {out / 'train.zarr'}: no space left on the disk (")
    assert "free; the stores need about" in line and "re-run the same command" in line
    assert "Errno" not in line
    assert not list(out.rglob("*.partial"))  # no temporary file left
    monkeypatch.undo()
    assert run_cli(["prepare-kitti", str(kitti_world), str(split), str(out), *FAST]) == 0
    assert open_store(out / "train.zarr", require_complete=True).n_frames == 4


def test_true_masks_of_a_synthetic_world_fill_the_stores(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    split = small_split(tmp_path, [f"{TRAIN_DRIVE} 2 l"])
    out = tmp_path / "out"
    assert run_cli(["prepare-kitti", str(world), str(split), str(out), *FAST, "--masks",
                    "truth"]) == 1  # fmt: skip
    assert "masks.npz not found" in one_error_line(capsys.readouterr().err)
    assert not out.exists()  # refused before converting
    masks = {f"{TRAIN_DRIVE}/image_0{c}": np.full((5, 375, 1242), 7 * (c == 2), np.uint8)
             for c in (2, 3)}  # fmt: skip
    np.savez(world / "masks.npz", **masks)
    assert run_cli(["prepare-kitti", str(world), str(split), str(out), *FAST, "--masks",
                    "truth"]) == 0  # fmt: skip
    store = open_store(out / "train.zarr")
    seg = store["seg"][...]
    assert (seg[:, 0] == 7).all() and (seg[:, 1] == 0).all()
    assert store.attrs["masks"]["arch"] == "synthetic-truth"
    assert "--masks truth" in store.source["command"]
