"""``prepare-nyu``: synthetic NYU raw + labeled world -> stores, checked against the truth."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

import nyutools
from pipelines import open_store
from pipelines.prepare.nyu.blocks import NyuRawBlocks, nyu_intrinsics
from pipelines.prepare.nyu.prepare import NyuPrepareOptions, PrepareReport, prepare_nyu
from pipelines.store.inspect import verify
from pipelines.synth.nyu import plan_recording, write_recording
from tests.helpers import assert_opens_in_xarray, run_cli, tree_bytes

pytestmark = pytest.mark.slow

SIZE = (96, 128)
OPTS = NyuPrepareOptions(size=SIZE, chunk=4, workers=2, progress=False)
TEST_SCENE = "bedroom_0001"  # every labeled test frame comes from it
STORES = ("raw_train.zarr", "labeled_train.zarr", "labeled_test.zarr")


def labeled_args(world: Path) -> tuple[Path, Path]:
    return world / "nyu_depth_v2_labeled.mat", world / "splits.mat"


@pytest.fixture(scope="module")
def prepared(
    nyu_world: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, PrepareReport]:
    out = tmp_path_factory.mktemp("nyu_stores")
    report = prepare_nyu(nyu_world / "raw", out, *labeled_args(nyu_world), OPTS)
    return out, report


def test_raw_store_matches_the_world(prepared: tuple[Path, PrepareReport], nyu_world: Path) -> None:
    out, report = prepared
    store = open_store(out / "raw_train.zarr")
    assert verify(store) == [] and store.complete
    assert (store.dataset, store.split, store.views, store.image_size) == (
        "nyu-raw", "train", 1, SIZE)  # fmt: skip
    assert TEST_SCENE not in store.sequences and len(store.sequences) == 2
    assert "1 excluded" in str(report) and TEST_SCENE in str(report)
    assert not (out / "raw_val.zarr").exists()

    seq, frame = store["sequence"][...], store["frame"][...]
    keys = list(zip(seq.tolist(), frame.tolist(), strict=True))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)  # grouped, temporal order
    s = store.samples
    assert len(s) == store.n_frames - 2 * len(store.sequences)  # all but first / last per scene
    assert (seq[s[:, 1]] == seq[s[:, 0]]).all() and (seq[s[:, 2]] == seq[s[:, 0]]).all()
    assert (frame[s[:, 1]] == frame[s[:, 0]] - 1).all()
    assert (frame[s[:, 2]] == frame[s[:, 0]] + 1).all() and (s[:, 3] == 0).all()

    k = store["intrinsics"][...]
    np.testing.assert_allclose(k[:, 0], np.broadcast_to(nyu_intrinsics(SIZE), (len(k), 3, 3)),
                               rtol=1e-6)  # fmt: skip
    assert (store["baseline"][...] == 0).all() and (store["seg"][...] == 255).all()

    truth = np.load(nyu_world / "raw" / "truth.npz")
    scenes = {s.name: s for s in nyutools.list_scenes(nyu_world / "raw")}
    depth, image = store["depth"][...], store["image"][...]
    stamps, accel = store["timestamp"][...], store["accel"][...]
    errors = []
    for row in range(store.n_frames):
        scene = scenes[store.sequences[seq[row]]]
        synced = nyutools.sync_frames(scene)[frame[row]]
        assert stamps[row] == synced.t_rgb
        np.testing.assert_array_equal(accel[row], scene.read_accel(synced.accel))
        names = truth[f"{scene.name}/rgb_names"].tolist()
        true = truth[f"{scene.name}/depth"][names.index(synced.rgb)]
        true = cv2.resize(true, SIZE[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
        got = depth[row, 0].astype(np.float32)
        valid = (got > 0) & (true > 0) & (true < 10)
        assert valid.mean() > 0.5
        errors.append(np.median(np.abs(got[valid] - true[valid]) / true[valid]))
        if row == 1:  # pixels: INTER_AREA resize of the toolbox's undistorted RGB
            raw, rgb = scene.read_depth(synced.depth), scene.read_rgb(synced.rgb)
            rgb_u = nyutools.project_depth(raw, rgb)[1]
            ref = cv2.resize(rgb_u, SIZE[::-1], interpolation=cv2.INTER_AREA)
            np.testing.assert_array_equal(image[row, 0], ref)
    assert max(errors) < 0.02, errors


def test_labeled_stores(prepared: tuple[Path, PrepareReport], nyu_world: Path) -> None:
    out, _ = prepared
    mat, splits = labeled_args(nyu_world)
    train_idx, test_idx = nyutools.read_splits(splits)
    labeled = nyutools.LabeledSet(mat)
    for name, idx in (("labeled_train.zarr", train_idx), ("labeled_test.zarr", test_idx)):
        store = open_store(out / name)
        assert verify(store) == [] and store.dataset == "nyu-labeled"
        assert store.image_size == (480, 640) and store.n_frames == len(idx)
        np.testing.assert_array_equal(store["frame"][...], idx)
        np.testing.assert_array_equal(store.samples[:, 0], np.arange(len(idx)))
        assert (store.samples[:, 1:] == [-1, -1, 0]).all()
        assert (store["gt_size"][...] == [480, 640]).all()
        seq = store["sequence"][...]
        for row, i in enumerate(idx):
            np.testing.assert_array_equal(store["image"][row, 0], labeled.image(i))
            np.testing.assert_array_equal(store["gt_depth"][row], labeled.depth(i))
            np.testing.assert_array_equal(
                store["depth"][row, 0], labeled.raw_depth(i).astype(np.float16)
            )
            assert store.sequences[seq[row]] == labeled.scene(i)
        np.testing.assert_array_equal(store["accel"][...], labeled.accels()[idx])
    assert {open_store(out / "labeled_test.zarr").sequences[0]} == {TEST_SCENE}


def test_stores_open_in_xarray_with_named_dims(prepared: tuple[Path, PrepareReport]) -> None:
    for name in STORES:
        assert_opens_in_xarray(prepared[0] / name)


def test_test_scenes_included_on_request_and_val_split(nyu_world: Path, tmp_path: Path) -> None:
    opts = NyuPrepareOptions(size=(48, 64), chunk=4, workers=2, progress=False,
                             include_test_scenes=True, val_fraction=0.3)  # fmt: skip
    report = prepare_nyu(nyu_world / "raw", tmp_path, *labeled_args(nyu_world), opts)
    assert "0 excluded" in str(report)
    train, val = open_store(tmp_path / "raw_train.zarr"), open_store(tmp_path / "raw_val.zarr")
    assert len(val.sequences) == 1 and len(train.sequences) == 2
    assert sorted(train.sequences + val.sequences) == ["bedroom_0001", "kitchen_0003a",
                                                       "living_room_0012"]  # fmt: skip
    assert verify(train) == [] and verify(val) == [] and val.split == "val"


def test_resume_after_kill_is_identical(
    prepared: tuple[Path, PrepareReport],
    nyu_world: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kill_on_call,
) -> None:
    kill_on_call(NyuRawBlocks, 2)  # the second block raises, as if the process was killed
    opts = NyuPrepareOptions(size=SIZE, chunk=4, workers=1, progress=False)
    with pytest.raises(RuntimeError, match="killed"):
        prepare_nyu(nyu_world / "raw", tmp_path, *labeled_args(nyu_world), opts)
    stores = [open_store(tmp_path / name) for name in STORES]
    assert not any(s.complete for s in stores)  # stores are finished only after all blocks
    done = sum(int(s.done_blocks.sum()) for s in stores)
    assert 1 <= done < 5 and int(stores[0].done_blocks.sum()) == 1
    monkeypatch.undo()

    report = prepare_nyu(nyu_world / "raw", tmp_path, *labeled_args(nyu_world), OPTS)
    assert report.stores[0].blocks_written + report.stores[0].blocks_skipped == 3
    assert sum(s.blocks_skipped for s in report.stores) == done
    for name in STORES:
        assert tree_bytes(tmp_path / name) == tree_bytes(prepared[0] / name), name


def test_unreadable_frames_are_skipped_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec = plan_recording("bedroom_0001", 6, 5)
    bad = write_recording(rec, tmp_path / "raw", corrupt=True, truth=False).corrupt
    scene = nyutools.list_scenes(tmp_path / "raw")[0]
    synced = nyutools.sync_frames(scene)
    # Also: a short accelerometer record, and a depth file of the right size with a bad header.
    accel, depth = scene.path / synced[0].accel, scene.path / synced[-1].depth
    accel.write_bytes(accel.read_bytes()[:5])
    depth.write_bytes(b"P5 640 480 65536\n" + depth.read_bytes()[17:])
    bad += [synced[0].accel, synced[-1].depth]
    hit = [f for f in synced if {f.depth, f.rgb, f.accel} & set(bad)]
    assert len(hit) >= 3
    opts = NyuPrepareOptions(size=(48, 64), chunk=2, workers=1, progress=False)
    with caplog.at_level(logging.WARNING):
        report = prepare_nyu(tmp_path / "raw", tmp_path / "out", options=opts)
    assert f"{len(hit)} skipped" in str(report)
    assert bad[0] in caplog.text and "truncated" in caplog.text  # the half depth file
    assert "accelerometer dump has 5 bytes" in caplog.text and "bad header" in caplog.text
    (summary,) = report.stores
    assert len(summary.skipped) == len(hit) and bad[0] in str(report)
    store = open_store(tmp_path / "out" / "raw_train.zarr")
    assert store.n_frames == len(synced) - len(hit) and verify(store) == []
    kept = set(store["frame"][...].tolist())
    assert not kept & {synced.index(f) for f in hit}
    assert len(store.attrs["source"]["skipped_frames"]) == len(hit)


def test_bad_inputs_give_one_error_line(
    nyu_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mat, splits = labeled_args(nyu_world)
    fake = tmp_path / "fake.mat"
    fake.write_text("this is not a MATLAB file\n")
    out = tmp_path / "out"
    cases = [
        (["--labeled", str(fake), "--splits", str(splits)], str(nyu_world / "raw"), "fake.mat"),
        (["--labeled", str(mat), "--splits", str(fake)], str(nyu_world / "raw"), "fake.mat"),
        ([], str(tmp_path / "missing"), "missing: raw root not found"),
        ([], str(tmp_path), "no NYU scenes"),
        (["--labeled", str(mat)], str(nyu_world / "raw"), "--splits"),
        ([], str(nyu_world / "raw"), "--stride must be positive"),
    ]
    for k, (extra, root, needle) in enumerate(cases):
        more = ["--stride", "0"] if k == len(cases) - 1 else []
        assert run_cli(["prepare-nyu", root, str(out), *extra, *more]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert needle in err and "Traceback" not in err
    assert not out.exists()  # nothing written


def test_cli_refuses_other_arguments_then_overwrites(
    nyu_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["prepare-nyu", str(nyu_world / "raw"), str(tmp_path), "--glob", "kitchen*",
            "--chunk", "4", "--workers", "1"]  # fmt: skip
    assert run_cli([*args, "--size", "48x64"]) == 0
    assert "raw_train.zarr: 6 frames, 4 samples" in capsys.readouterr().out
    assert run_cli([*args, "--size", "48x64", "--stride", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "other arguments" in err and "--overwrite" in err
    store = open_store(tmp_path / "raw_train.zarr")
    assert store.complete and store.n_frames == 6  # untouched
    assert run_cli([*args, "--size", "48x64", "--stride", "2", "--overwrite"]) == 0
    assert "3 stored, 1 samples" in capsys.readouterr().out
    store = open_store(tmp_path / "raw_train.zarr")
    assert store.n_frames == 3 and store["frame"][...].tolist() == [0, 2, 4]
    assert store.samples.tolist() == [[1, 0, 2, 0]]


def test_fill_stores_in_painted_depth(nyu_world: Path, tmp_path: Path) -> None:
    opts = NyuPrepareOptions(size=SIZE, chunk=4, workers=2, progress=False, fill=True,
                             glob="kitchen*", stride=3)  # fmt: skip
    prepare_nyu(nyu_world / "raw", tmp_path, options=opts)
    store = open_store(tmp_path / "raw_train.zarr")
    assert store.n_frames == 2 and store.n_samples == 0 and verify(store) == []
    window = nyutools.projection_mask().astype(np.uint8)
    window = cv2.resize(window, SIZE[::-1], interpolation=cv2.INTER_NEAREST_EXACT) > 0
    depth = store["depth"][...][:, 0]
    assert (depth[:, window] > 0).all()
    assert "in-painted" in store.attrs["frames"]["depth"]


def test_masks_stage_runs_after_conversion(nyu_world: Path, tmp_path: Path, stub_segmenter) -> None:

    missing = NyuPrepareOptions(size=(48, 64), masks="deeplabv3", seg_weights=str(tmp_path / "w"))
    with pytest.raises(ValueError, match="seg-weights file not found"):
        prepare_nyu(nyu_world / "raw", tmp_path / "out", options=missing)
    assert not (tmp_path / "out").exists()

    (tmp_path / "w").write_bytes(b"stub")
    stub_segmenter(9)  # class 9 ("chair") everywhere
    opts = NyuPrepareOptions(size=(48, 64), masks="deeplabv3", seg_weights=str(tmp_path / "w"),
                             glob="kitchen*", workers=1, progress=False)  # fmt: skip
    report = prepare_nyu(nyu_world / "raw", tmp_path / "out", options=opts)
    assert "masks:" in str(report)
    assert (open_store(tmp_path / "out" / "raw_train.zarr")["seg"][...] == 9).all()
    assert_opens_in_xarray(tmp_path / "out" / "raw_train.zarr")  # re-consolidated after the pass


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="needs distributed")
def test_dask_distributed_cluster_gives_the_same_stores(
    prepared: tuple[Path, PrepareReport], nyu_world: Path, tmp_path: Path
) -> None:
    """--scheduler: blocks computed in worker processes of a local cluster give the same stores."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        opts = replace(OPTS, workers=None, scheduler=cluster.scheduler_address)
        prepare_nyu(nyu_world / "raw", tmp_path, *labeled_args(nyu_world), opts)
    for name in STORES:
        ours, ref = open_store(tmp_path / name), open_store(prepared[0] / name)
        assert ours.complete and set(ours.arrays) == set(ref.arrays)
        for array in ref.arrays:
            np.testing.assert_array_equal(ours[array][...], ref[array][...], array)
