"""The Depth Hints pass over a KITTI store: raw pairs, resumable chunks, refusals, CLI."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import kitti
from pipelines.passes.hints import fused_sgm_hints, hint_resolution_image
from pipelines.passes.hints_pass import HintChunks, compute_hints
from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
from pipelines.store import open_store, verify
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import run_cli, tree_bytes

SIZE = (64, 224)
HINT_SIZE = (64, 320)  # small enough for tests; the vectors check this size too


@pytest.fixture(scope="module")
def stores(kitti_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train.zarr / val.zarr of the synthetic world's eigen_zhou split, without hints."""
    out = tmp_path_factory.mktemp("hint_stores")
    options = KittiPrepareOptions(size=SIZE, chunk=4, progress=False, workers=1)
    prepare_kitti(kitti_world, kitti_world / "splits" / "eigen_zhou", out, options)
    return out


@pytest.fixture
def train_store(stores: Path, tmp_path: Path) -> Path:
    path = tmp_path / "train.zarr"
    shutil.copytree(stores / "train.zarr", path)
    return path


def _hints(path: Path, root: Path, **kw) -> object:
    return compute_hints(path, root, hint_size=HINT_SIZE, progress=False, workers=2, **kw)


@pytest.mark.slow
def test_hints_of_the_raw_pairs_at_the_store_size(train_store: Path, kitti_world: Path) -> None:
    report = _hints(train_store, kitti_world)
    store = open_store(train_store)
    assert (report.chunks, report.computed, report.frames) == (3, 3, store.n_frames)
    hint = store["hint_depth"][...]
    assert hint.shape == (store.n_frames, 2, *SIZE) and hint.dtype == np.float16
    assert not np.isnan(hint).any() and (hint >= 0).all()
    assert 0.3 < (hint > 0).mean() < 1  # sky and occlusions have no hint
    assert store.attrs["hints"]["hint_size"] == list(HINT_SIZE)
    assert verify(store) == []
    # one frame by hand: LANCZOS to the hint size, fused SGM, nearest to the store size
    row = 3
    folder = store.sequences[int(store["sequence"][row])]
    frame = int(store["frame"][row])
    pair = [
        hint_resolution_image(
            Image.open(kitti.image_path(kitti_world, folder, frame, s)), *HINT_SIZE
        )
        for s in "lr"
    ]
    flipped = store["hint_depth_flipped"][...]
    for view, expected in enumerate(fused_sgm_hints(*pair)):
        # depth-hints' loader: cv2 nearest of the full-size map; a flipped sample flips first
        small = cv2.resize(expected, SIZE[::-1], interpolation=cv2.INTER_NEAREST)
        np.testing.assert_array_equal(hint[row, view], small.astype(np.float16))
        mirrored = np.ascontiguousarray(expected[:, ::-1])
        small = cv2.resize(mirrored, SIZE[::-1], interpolation=cv2.INTER_NEAREST)
        np.testing.assert_array_equal(flipped[row, view, :, ::-1], small.astype(np.float16))
    assert (flipped != hint).any()  # not the same pixels as the flipped resized map


@pytest.mark.slow
def test_resumed_hints_identical_to_uninterrupted(
    train_store: Path, kitti_world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = train_store.parent / "other.zarr"
    shutil.copytree(train_store, other)
    _hints(train_store, kitti_world)
    original = HintChunks.__call__
    calls: list[int] = []

    def dying(self: HintChunks, rows: slice) -> np.ndarray:
        calls.append(rows.start)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return original(self, rows)

    monkeypatch.setattr(HintChunks, "__call__", dying)
    with pytest.raises(RuntimeError, match="killed"):  # one thread: no task left running
        compute_hints(other, kitti_world, hint_size=HINT_SIZE, progress=False, workers=1)
    monkeypatch.undo()
    problems = verify(open_store(other))
    assert any(p.startswith("hint_depth: frames not computed") for p in problems)
    assert run_cli(["info", str(other), "--verify"]) == 1
    report = _hints(other, kitti_world)
    assert (report.skipped, report.computed) == (1, 2)
    assert tree_bytes(train_store) == tree_bytes(other)


def _fake_root(kitti_world: Path, store_path: Path, tmp: Path) -> Path:
    """A copy of the raw images the store needs (nothing else)."""
    store = open_store(store_path)
    root = tmp / "root"
    for q, f in zip(store["sequence"][...], store["frame"][...], strict=True):
        for side in "lr":
            src = kitti.image_path(kitti_world, store.sequences[q], int(f), side)
            dst = kitti.image_path(root, store.sequences[q], int(f), side)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    return root


def test_bad_roots_refused_before_any_work(
    train_store: Path, kitti_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree_bytes(train_store)
    root = _fake_root(kitti_world, train_store, tmp_path)
    store = open_store(train_store)
    first = kitti.image_path(root, store.sequences[0], int(store["frame"][0]), "l")
    image = np.asarray(Image.open(first))
    Image.fromarray(np.ascontiguousarray(image[::-1])).save(first)  # another picture
    missing = kitti.image_path(root, store.sequences[-1], int(store["frame"][-1]), "r")
    for args, message in (
        (["--kitti-root", str(tmp_path / "nowhere")], "--kitti-root is not a folder"),
        (["--kitti-root", str(root)], "the raw images do not match the store's frames"),
    ):
        assert run_cli(["hints", str(train_store), *args]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
    missing.unlink()
    assert run_cli(["hints", str(train_store), "--kitti-root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "1 raw image(s) of the store's frames are missing" in err and err.count("\n") == 1
    assert tree_bytes(train_store) == before  # nothing written


def test_store_kinds_refused(kitti_world: Path, tmp_path: Path) -> None:
    nyu = tmp_path / "nyu.zarr"
    write_toy_store(nyu, ToySpec(dataset="nyu-raw", frames_per_sequence=2, n_sequences=1))
    with pytest.raises(ValueError, match="two-view KITTI training store"):
        _hints(nyu, kitti_world)
    with pytest.raises(ValueError, match="not a zarr store"):
        _hints(tmp_path / "absent.zarr", kitti_world)


@pytest.mark.slow
def test_prepare_kitti_hints_cli(kitti_world: Path, stores: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["prepare-kitti", str(kitti_world), str(kitti_world / "splits" / "eigen_zhou"), str(out)]
    args += ["--size", "64x224", "--chunk", "4", "--hints", "--hint-size", "64x320"]
    assert run_cli(args) == 0
    for name in ("train.zarr", "val.zarr"):
        store = open_store(out / name)
        assert store.attrs["computed"] == {"hint_depth": True, "hint_depth_flipped": True}
        assert verify(store) == []
        assert "--hints --hint-size 64x320" in store.source["command"]
    reference = tmp_path / "ref.zarr"
    shutil.copytree(stores / "train.zarr", reference)
    _hints(reference, kitti_world)
    np.testing.assert_array_equal(
        open_store(out / "train.zarr")["hint_depth"][...], open_store(reference)["hint_depth"][...]
    )


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="needs distributed")
def test_dask_distributed_workers_give_the_same_hints(train_store: Path, kitti_world: Path) -> None:
    from distributed import LocalCluster

    other = train_store.parent / "other.zarr"
    shutil.copytree(train_store, other)
    _hints(train_store, kitti_world)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        compute_hints(other, kitti_world, hint_size=HINT_SIZE, progress=False,
                      scheduler=cluster.scheduler_address)  # fmt: skip
    np.testing.assert_array_equal(
        open_store(other)["hint_depth"][...], open_store(train_store)["hint_depth"][...]
    )
    assert open_store(other).attrs["computed"] == {"hint_depth": True, "hint_depth_flipped": True}
