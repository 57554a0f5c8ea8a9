"""``prepare-kitti``: synthetic KITTI world -> train/val/test stores, checked against the truth."""

from __future__ import annotations

import importlib.util
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

import kitti
from pipelines import open_store
from pipelines.prepare.kitti.blocks import KittiBlocks
from pipelines.prepare.kitti.plan import MissingFilesError
from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
from pipelines.store import IncompleteStoreError
from pipelines.store.inspect import verify
from pipelines.store.runner import parse_size, run_conversion
from pipelines.store.toystore import ToySpec, create_toy_writer
from tests.helpers import assert_opens_in_xarray, run_cli, tree_bytes

SIZE = (64, 192)
OPTS = KittiPrepareOptions(size=SIZE, chunk=4, workers=2, progress=False)
TEST_DRIVE = "2011_09_26/2011_09_26_drive_0002_sync"
TRAIN_DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"


@pytest.fixture(scope="module")
def prepared(kitti_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """eigen_zhou train/val stores in ``out/`` and the velodyne eigen test store in ``out/test``."""
    out = tmp_path_factory.mktemp("kitti_stores")
    prepare_kitti(kitti_world, kitti_world / "splits" / "eigen_zhou", out, OPTS)
    opts = KittiPrepareOptions(size=SIZE, chunk=4, workers=2, progress=False, gt="velodyne")
    prepare_kitti(kitti_world, kitti_world / "splits" / "eigen", out / "test", opts)
    return out


def scaled_k(k: np.ndarray, native: tuple[int, int]) -> np.ndarray:
    """Truth K resized to SIZE, pixel centres onto pixel centres."""
    sy, sx = SIZE[0] / native[0], SIZE[1] / native[1]
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    return np.array([[fx * sx, 0, (cx + 0.5) * sx - 0.5], [0, fy * sy, (cy + 0.5) * sy - 0.5],
                     [0, 0, 1]])  # fmt: skip


def test_training_stores_match_the_world(prepared: Path, kitti_world: Path) -> None:
    truth = np.load(kitti_world / "truth.npz")
    for split in ("train", "val"):
        store = open_store(prepared / f"{split}.zarr")
        assert verify(store) == [] and store.complete
        assert (store.dataset, store.split, store.views, store.image_size) == (
            "kitti-raw", split, 2, SIZE)  # fmt: skip
        assert store.sequences == sorted(store.sequences)
        seq, frame = store["sequence"][...], store["frame"][...]
        keys = list(zip(seq.tolist(), frame.tolist(), strict=True))
        assert keys == sorted(set(keys))  # grouped by drive, temporal order, each frame once

        # samples: split lines in order, neighbours at frame -1 / +1 of the same drive
        lines = kitti.read_split(kitti_world / "splits" / "eigen_zhou" / f"{split}_files.txt")
        s = store.samples
        assert len(s) == len(lines)
        for (c, p, n, v), line in zip(s, lines, strict=True):
            assert (store.sequences[seq[c]], frame[c], v) == (
                line.folder,
                line.frame,
                0 if line.side == "l" else 1,
            )
            assert seq[p] == seq[n] == seq[c] and (frame[p], frame[n]) == (
                frame[c] - 1,
                frame[c] + 1,
            )
        needed = {(ln.folder, ln.frame + d) for ln in lines for d in (-1, 0, 1)}
        assert len(needed) == store.n_frames

        k, base = store["intrinsics"][...], store["baseline"][...]
        assert k.dtype == np.float32 and k.shape == (store.n_frames, 2, 3, 3)
        np.testing.assert_allclose(base, 0.54, atol=1e-6)
        for s_idx, folder in enumerate(store.sequences):
            rows = seq == s_idx
            native = tuple(store.camera["native_size"][folder])
            expected = scaled_k(truth[f"{folder}/K"], native)
            np.testing.assert_allclose(k[rows], np.broadcast_to(expected, k[rows].shape),
                                       rtol=1e-6, atol=1e-4)  # fmt: skip
            stamps = kitti.read_timestamps(kitti.timestamps_path(kitti_world, folder))
            np.testing.assert_array_equal(store["timestamp"][rows], stamps[frame[rows]])

        # pixels: INTER_AREA resize of the PNG, RGB, both views
        row = 1
        for view, side in enumerate("lr"):
            path = kitti.image_path(kitti_world, store.sequences[seq[row]], int(frame[row]), side)
            ref = cv2.resize(cv2.imread(str(path)), SIZE[::-1], interpolation=cv2.INTER_AREA)
            np.testing.assert_array_equal(store["image"][row, view], ref[..., ::-1])
        assert (store["seg"][...] == 255).all()
        assert store.source["split_sha256"][f"{split}_files.txt"]
        assert store.source["command"].startswith("prepare-kitti")


def test_velodyne_test_store(prepared: Path, kitti_world: Path) -> None:
    store = open_store(prepared / "test" / "test.zarr")
    assert verify(store) == [] and store.views == 1
    assert store.attrs["ground_truth"]["kind"] == "velodyne"
    assert store.attrs["ground_truth"]["protocol"] == "eigen"
    lines = kitti.read_split(kitti_world / "splits" / "eigen" / "test_files.txt")
    s, seq, frame = store.samples, store["sequence"][...], store["frame"][...]
    assert (s[:, 1:] == [-1, -1, 0]).all() and len(s) == len(lines)
    truth = np.load(kitti_world / "truth.npz")[f"{TEST_DRIVE}/depth"]
    gt_all, sizes = store["gt_depth"][...], store["gt_size"][...]
    assert gt_all.shape[1:] == (375, 1242)  # largest test frame
    for (row, *_), line in zip(s, lines, strict=True):
        assert (store.sequences[seq[row]], frame[row]) == (line.folder, line.frame)
        h, w = sizes[row]
        ref = kitti.velodyne_depth(kitti.calib_dir(kitti_world, line.folder),
                                   kitti.velodyne_path(kitti_world, line.folder, line.frame),
                                   cam=2, vel_depth=True)  # fmt: skip
        assert (h, w) == ref.shape
        np.testing.assert_array_equal(gt_all[row, :h, :w], ref.astype(np.float32))
        assert not gt_all[row, h:].any() and not gt_all[row, :, w:].any()
        gt, true = gt_all[row, :h, :w], truth[line.frame]
        valid = (gt > 0) & (true > 0)
        assert valid.sum() > 1000
        assert np.median(np.abs(gt[valid] - true[valid]) / true[valid]) < 0.05


def test_stores_open_in_xarray_with_named_dims(prepared: Path) -> None:
    for name in ("train.zarr", "val.zarr", "test/test.zarr"):
        assert_opens_in_xarray(prepared / name)


def test_improved_ground_truth_chosen_automatically(kitti_world: Path, tmp_path: Path) -> None:
    split = kitti_world / "splits" / "eigen_benchmark"
    report = prepare_kitti(kitti_world, split, tmp_path, OPTS)
    assert "test.zarr" in str(report)
    store = open_store(tmp_path / "test.zarr")
    assert store.attrs["ground_truth"]["kind"] == "improved"
    assert store.attrs["ground_truth"]["protocol"] == "eigen_benchmark"
    row, h, w = 2, *store["gt_size"][2]
    frame = int(store["frame"][row])
    ref = kitti.read_improved_gt(kitti.improved_gt_path(kitti_world, TEST_DRIVE, frame))
    np.testing.assert_array_equal(store["gt_depth"][row, :h, :w], ref)


def _split_dir(tmp_path: Path, lines: list[str], name: str = "train_files.txt") -> Path:
    d = tmp_path / "split"
    d.mkdir(exist_ok=True)
    (d / name).write_text("".join(f"{ln}\n" for ln in lines))
    return d


def test_missing_files_are_listed_then_skipped(
    kitti_world: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [f"{TRAIN_DRIVE} 2 l", f"{TRAIN_DRIVE} 9 l", f"{TRAIN_DRIVE} 0 r"]
    split = _split_dir(tmp_path, lines)
    with pytest.raises(MissingFilesError) as err:
        prepare_kitti(kitti_world, split, tmp_path / "out", OPTS)
    text = str(err.value)
    assert "2 split line(s)" in text and "--skip-missing" in text and "\n" not in text
    assert "0000000009.png" in text and len(err.value.missing) == 8  # 8..10 x l/r, -1 x l/r
    assert not (tmp_path / "out").exists()  # nothing converted

    opts = KittiPrepareOptions(size=SIZE, chunk=4, workers=1, progress=False, skip_missing=True)
    with caplog.at_level(logging.WARNING):
        report = prepare_kitti(kitti_world, split, tmp_path / "out", opts)
    assert "dropping 2 split line(s)" in caplog.text
    (summary,) = report.stores
    assert len(summary.skipped) == 2 and "line 2" in str(summary.skipped[0])
    assert "2 items skipped" in str(report)
    store = open_store(tmp_path / "out" / "train.zarr")
    assert store.n_samples == 1 and store.n_frames == 3 and verify(store) == []
    assert store.source["skipped_lines"] == 2


def test_resume_after_kill_is_identical(
    prepared: Path, kitti_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill_on_call
) -> None:
    split = kitti_world / "splits" / "eigen_zhou"
    kill_on_call(KittiBlocks, 2)  # the second block raises, as if the process was killed
    opts = KittiPrepareOptions(size=SIZE, chunk=4, workers=1, progress=False)
    with pytest.raises(RuntimeError, match="killed"):
        prepare_kitti(kitti_world, split, tmp_path, opts)
    stores = [open_store(tmp_path / name) for name in ("train.zarr", "val.zarr")]
    assert not any(s.complete for s in stores)
    assert sum(int(s.done_blocks.sum()) for s in stores) == 1
    with pytest.raises(IncompleteStoreError) as refused:  # what training on it says
        open_store(tmp_path / "train.zarr", require_complete=True)
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'train.zarr'}: the store is incomplete")
    assert f"`prepare-kitti {kitti_world} {split} OUT_DIR --size 64x192" in message
    assert message.endswith(f"with OUT_DIR = {tmp_path}") and "\n" not in message
    monkeypatch.undo()

    report = prepare_kitti(kitti_world, split, tmp_path, OPTS)
    assert [s.blocks_skipped for s in report.stores] in ([1, 0], [0, 1])
    assert sum(s.blocks_written for s in report.stores) == 3 + 2 - 1
    for name in ("train.zarr", "val.zarr"):
        assert tree_bytes(tmp_path / name) == tree_bytes(prepared / name), name


def test_cli_refuses_other_arguments_then_overwrites(
    kitti_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    split = _split_dir(tmp_path, [f"{TEST_DRIVE} 0000000001 l"], "test_files.txt")
    args = ["prepare-kitti", str(kitti_world), str(split), str(tmp_path / "out"), "--chunk", "4"]
    assert run_cli([*args, "--size", "32x96", "--gt", "velodyne"]) == 0
    capsys.readouterr()
    assert run_cli([*args, "--size", "64x192", "--gt", "velodyne"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "other arguments" in err and "--overwrite" in err and "Traceback" not in err
    store = open_store(tmp_path / "out" / "test.zarr")
    assert store.complete and store.image_size == (32, 96)  # untouched
    assert run_cli([*args, "--size", "64x192", "--gt", "velodyne", "--overwrite"]) == 0
    assert "1 frame, 1 sample" in capsys.readouterr().out
    assert open_store(tmp_path / "out" / "test.zarr").image_size == (64, 192)


def _mini_world(world: Path, tmp_path: Path) -> Path:
    """A copy of the test drive (and its date's calibration) that a test may damage."""
    root = tmp_path / "raw"
    date = TEST_DRIVE.split("/")[0]
    shutil.copytree(world / TEST_DRIVE, root / TEST_DRIVE)
    for f in (world / date).glob("calib_*.txt"):
        shutil.copy(f, root / date / f.name)
    return root


def test_bad_raw_files_name_the_file(
    kitti_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _mini_world(kitti_world, tmp_path)
    split = _split_dir(tmp_path, [f"{TEST_DRIVE} 1 l"], "test_files.txt")
    opts = KittiPrepareOptions(size=SIZE, gt="velodyne", workers=1, progress=False)

    png = kitti.image_path(root, TEST_DRIVE, 1, "l")
    good = png.read_bytes()
    png.write_bytes(good[: len(good) // 3])
    with pytest.raises(ValueError, match=r"0000000001\.png: cannot read image"):
        prepare_kitti(root, split, tmp_path / "a", opts)
    assert not open_store(tmp_path / "a" / "test.zarr").complete
    png.write_bytes(good)

    scan = kitti.velodyne_path(root, TEST_DRIVE, 1)
    scan.write_bytes(scan.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"0000000001\.bin.*16-byte"):
        prepare_kitti(root, split, tmp_path / "b", opts)

    calib = root / TEST_DRIVE.split("/")[0] / "calib_cam_to_cam.txt"
    calib.write_text(calib.read_text().replace("P_rect_02:", "P_rect_02: 1 2 3\nX_02:"))
    assert run_cli(["prepare-kitti", str(root), str(split), str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "calib_cam_to_cam.txt" in err and "P_rect_02" in err

    (split / "test_files.txt").write_text(f"{TEST_DRIVE} 1\n")
    with pytest.raises(ValueError, match=r"test_files\.txt, line 1"):
        prepare_kitti(root, split, tmp_path / "d", opts)


def test_masks_stage_runs_after_conversion(
    kitti_world: Path, tmp_path: Path, stub_segmenter
) -> None:

    split = _split_dir(tmp_path, [f"{TRAIN_DRIVE} 2 l"])
    missing = KittiPrepareOptions(size=SIZE, masks="deeplabv3", seg_weights=str(tmp_path / "w"))
    with pytest.raises(ValueError, match="seg-weights file not found"):
        prepare_kitti(kitti_world, split, tmp_path / "out", missing)
    assert not (tmp_path / "out").exists()

    (tmp_path / "w").write_bytes(b"stub")
    stub_segmenter(7)  # class 7 ("car") everywhere
    opts = KittiPrepareOptions(size=SIZE, masks="deeplabv3", seg_weights=str(tmp_path / "w"),
                               workers=1, progress=False)  # fmt: skip
    report = prepare_kitti(kitti_world, split, tmp_path / "out", opts)
    assert "masks:" in str(report)
    store = open_store(tmp_path / "out" / "train.zarr")
    assert (store["seg"][...] == 7).all() and store.attrs["masks"]["weights"] == "w"
    assert_opens_in_xarray(tmp_path / "out" / "train.zarr")  # re-consolidated after the pass


def test_runner_summary_and_scheduler_errors(tmp_path: Path) -> None:
    assert parse_size("192x640") == (192, 640)
    with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
        parse_size("640")
    spec = ToySpec(n_sequences=1, frames_per_sequence=6, chunk=2)
    writer = create_toy_writer(tmp_path / "s.zarr", spec)
    writer.write_samples(spec.samples())
    summary = run_conversion(writer, lambda _b, rows: spec.block(rows), progress=False)
    assert (summary.frames_written, summary.blocks_written, summary.blocks_skipped) == (6, 3, 0)
    assert open_store(tmp_path / "s.zarr").complete
    if importlib.util.find_spec("distributed") is None:
        writer = create_toy_writer(tmp_path / "t.zarr", spec)
        with pytest.raises(ImportError, match="distributed"):
            run_conversion(writer, lambda _b, r: spec.block(r), scheduler="tcp://127.0.0.1:1")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="needs distributed")
def test_dask_distributed_cluster_gives_the_same_stores(
    prepared: Path, kitti_world: Path, tmp_path: Path
) -> None:
    """--scheduler: blocks computed in worker processes of a local cluster (the block function
    and the writer travel by pickle) give the stores the local threads gave."""
    from distributed import LocalCluster

    opts = KittiPrepareOptions(size=SIZE, chunk=4, progress=False, gt="velodyne")
    runs = [("eigen_zhou", "", ("train", "val")), ("eigen", "test", ("test",))]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        for split, sub, names in runs:
            options = replace(opts, scheduler=cluster.scheduler_address)
            prepare_kitti(kitti_world, kitti_world / "splits" / split, tmp_path / sub, options)
            for name in names:
                ours = open_store(tmp_path / sub / f"{name}.zarr")
                ref = open_store(prepared / sub / f"{name}.zarr")
                assert ours.complete and set(ours.arrays) == set(ref.arrays)
                for array in ref.arrays:
                    np.testing.assert_array_equal(ours[array][...], ref[array][...], array)


def test_needed_files_follow_kitti_paths(tmp_path: Path) -> None:
    from pipelines.prepare.kitti.plan import needed_files

    folder = "2011_09_26/2011_09_26_drive_0001_sync"
    entry = kitti.SplitEntry(folder, 5, "l")
    common = [
        kitti.calib_dir(tmp_path, folder) / "calib_cam_to_cam.txt",
        kitti.calib_dir(tmp_path, folder) / "calib_velo_to_cam.txt",
        kitti.timestamps_path(tmp_path, folder),
    ]
    train = [kitti.image_path(tmp_path, folder, f, s) for f in (4, 5, 6) for s in "lr"]
    assert needed_files(tmp_path, entry, "train", "") == common + train
    test = [kitti.image_path(tmp_path, folder, 5, "l"), kitti.velodyne_path(tmp_path, folder, 5)]
    assert needed_files(tmp_path, entry, "test", "velodyne") == common + test
    assert needed_files(tmp_path, entry, "test", "improved")[-1] == kitti.improved_gt_path(
        tmp_path, folder, 5
    )
