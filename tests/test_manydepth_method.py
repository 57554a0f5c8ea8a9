"""ManyDepth through the usual commands: the teacher freeze, the depth range in checkpoints,
training and resuming on the synthetic KITTI world, evaluation with previous frames (and of the
teacher), prediction on folders, and the header's notes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pipelines import open_store
from pipelines.loader.dataset import make_loader
from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts, one_error_line, run_cli
from train.engine.checkpoint import TrainState, load_networks, read_checkpoint, save_weights
from train.engine.config import apply_overrides
from train.engine.runtime import build_runtime
from train.engine.step import train_step
from train.engine.trainer import train
from train.eval.evaluate import evaluate_checkpoint, load_checkpoint_method
from train.eval.predict import predict_files
from train.methods import preset

TINY = {"pretrained": False, "height": 64, "width": 192, "batch_size": 2, "workers": 0}
TINY |= {"device": "cpu", "jitter_prob": 0.0, "flip_prob": 0.0, "log_every": 1}


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("md_toy") / "train.zarr"
    write_toy_store(path, ToySpec(n_sequences=1, frames_per_sequence=6, image_size=(64, 192)))
    return str(path)


@pytest.fixture(scope="module")
def kitti_stores(kitti_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """eigen_zhou train/val and an eigen test store with previous frames, at 64x192."""
    out = tmp_path_factory.mktemp("md_kitti")
    opts = KittiPrepareOptions(size=(64, 192), chunk=4, workers=2, progress=False)
    prepare_kitti(kitti_world, kitti_world / "splits" / "eigen_zhou", out, opts)
    test = KittiPrepareOptions(**{**opts.__dict__, "gt": "velodyne", "prev_frames": True})
    prepare_kitti(kitti_world, kitti_world / "splits" / "eigen", out / "prev", test)
    prepare_kitti(kitti_world, kitti_world / "splits" / "eigen", out / "plain", opts)
    return out


def _step(config, store: str, epoch: int):
    method, nets, optimisers = method_parts(config)
    for _ in range(epoch):
        for spec in optimisers:
            spec.scheduler.step()
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    loader = make_loader(store, 2, workers=0, shuffle=False, frames=("prev", "next"))
    batch = next(b for b in loader if bool((b.has_prev & b.has_next).all()))
    before = {k: [p.detach().clone() for p in m.parameters()] for k, m in nets.named().items()}
    range_before = nets["depth"].encoder.min_depth_bin.clone()
    nets.train(True)
    train_step(runtime, method, optimisers, batch, torch.Generator().manual_seed(0))
    changed = {
        k: any(not torch.equal(a, b) for a, b in zip(before[k], m.parameters(), strict=True))
        for k, m in nets.named().items()
    }
    moved = not torch.equal(range_before, nets["depth"].encoder.min_depth_bin)
    return method, nets, changed, moved


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_teacher_and_pose_freeze_at_epoch_15(toy_store: str) -> None:
    config = apply_overrides(preset("manydepth-m"), TINY)
    _, _, changed, moved = _step(config, toy_store, epoch=14)
    assert changed == {"depth": True, "teacher": True, "pose": True} and moved
    method, nets, changed, moved = _step(config, toy_store, epoch=15)
    assert changed == {"depth": True, "teacher": False, "pose": False} and not moved
    assert not method.teacher_trains
    assert not nets["teacher"].training and not nets["pose"].training
    assert nets["depth"].training


def test_depth_range_travels_with_the_checkpoint(tmp_path: Path) -> None:
    config = apply_overrides(preset("manydepth-m"), TINY)
    _, nets, _ = method_parts(config)
    nets["depth"].encoder.min_depth_bin.fill_(1.25)
    nets["depth"].encoder.max_depth_bin.fill_(42.5)
    path = save_weights(tmp_path / "w.pt", config, nets, TrainState())
    _, other, _ = method_parts(config)
    load_networks(read_checkpoint(path), other)
    assert float(other["depth"].encoder.min_depth_bin) == 1.25
    assert float(other["depth"].encoder.max_depth_bin) == 42.5


def test_train_resume_eval_and_teacher(kitti_stores: Path, tmp_path: Path, capsys) -> None:
    config = apply_overrides(preset("manydepth-m"), TINY | {"epochs": 2, "max_steps": 2})
    lines: list[str] = []
    train(config, kitti_stores / "train.zarr", tmp_path / "run", progress=False,
          echo=lines.append)  # fmt: skip
    assert not any("learning rate stays" in line for line in lines)  # no freeze in 2 epochs
    assert any("matching pose of frame -1 reuses" in line for line in lines)
    resumed = apply_overrides(config, {"max_steps": None})
    summary = train(resumed, kitti_stores / "train.zarr", tmp_path / "run", resume=True,
                    progress=False, echo=lines.append)  # fmt: skip
    assert summary.epochs_done == 2
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    store = kitti_stores / "prev" / "test.zarr"
    report = evaluate_checkpoint(ckpt, store, device="cpu", batch_size=2)
    assert report.n_images == 5 and report.missing_previous == 1
    assert "previous frames: 1 missing (black image" in str(report)
    teacher = evaluate_checkpoint(ckpt, store, device="cpu", overrides=["teacher=true"])
    assert teacher.missing_previous is None and teacher.n_images == 5
    assert teacher.metrics["abs_rel"] != report.metrics["abs_rel"]
    with pytest.raises(ValueError, match="prepare-kitti --prev-frames"):
        evaluate_checkpoint(ckpt, kitti_stores / "plain" / "test.zarr", device="cpu")
    assert run_cli(["eval", str(ckpt), str(kitti_stores / "plain" / "test.zarr")]) == 1
    assert "--prev-frames" in one_error_line(capsys.readouterr().err)
    # the evaluation's first sample (frame 0: no previous frame) is the black-previous prediction
    method, nets = load_checkpoint_method(ckpt)
    predictor = method.predictor(nets).eval()
    test = open_store(store)
    row = int(test.samples[0, 0])
    image = torch.from_numpy(test["image"][row, 0]).permute(2, 0, 1)[None].float() / 255
    assert int(test.samples[0, 1]) == -1 and int(test["frame"][row]) == 0
    with torch.no_grad():
        depth = predictor(*predictor.arguments(image))
    from train.eval.evaluate import predict_depths

    preds = predict_depths(predictor, method.config, store, limit=1)
    np.testing.assert_allclose(preds.depths[0], depth[0, 0].numpy(), rtol=1e-5)


def test_header_names_the_constant_learning_rate(toy_store: str, tmp_path: Path) -> None:
    config = apply_overrides(preset("manydepth-m"), TINY | {"max_steps": 1})
    config = apply_overrides(config, {"check_dataset": False})
    lines: list[str] = []
    train(config, toy_store, tmp_path / "run", progress=False, echo=lines.append)
    text = "\n".join(lines)
    assert "reproduces these choices of the reference:" in text
    assert "the learning rate stays 0.0001 in all 20 epochs" in text


def test_predict_uses_consecutive_frames(kitti_world: Path, tmp_path: Path) -> None:
    config = apply_overrides(preset("manydepth-m"), TINY)
    _, nets, _ = method_parts(config)
    ckpt = save_weights(tmp_path / "w.pt", config, nets, TrainState())
    folder = tmp_path / "clip"
    folder.mkdir()
    frames = sorted((kitti_world / "2011_09_26/2011_09_26_drive_0002_sync/image_02/data").glob(
        "*.png"))[:3]  # fmt: skip
    for path in frames:
        cv2.imwrite(str(folder / path.name), cv2.imread(str(path)))
    summary = predict_files(ckpt, [folder], tmp_path / "out", device="cpu", progress=False)
    assert summary.maps == 3 and summary.missing_previous == 1
    assert "1 first frame(s) with a black previous frame" in str(summary)
    first = np.load(tmp_path / "out" / "clip" / f"{frames[0].stem}_depth.npy")
    # the same pictures with explicit intrinsics (KITTI's normalised camera in input pixels)
    h, w = cv2.imread(str(frames[0])).shape[:2]
    K = f"{0.58 * w},{1.92 * h},{0.5 * w},{0.5 * h}"
    again = predict_files(ckpt, [folder], tmp_path / "out2", device="cpu", progress=False,
                          intrinsics=K, batch_size=2)  # fmt: skip
    assert again.missing_previous == 1
    np.testing.assert_allclose(
        np.load(tmp_path / "out2" / "clip" / f"{frames[0].stem}_depth.npy"), first, rtol=1e-4
    )
    with pytest.raises(ValueError, match="--intrinsics"):
        predict_files(ckpt, [folder], tmp_path / "o3", device="cpu", intrinsics="1,2")


def test_device_step_issues_no_syncing_op() -> None:
    """The ManyDepth step (cost volume, augmentation draws, depth-range update included) makes
    the CPU wait for the device no more often than Monodepth2's."""
    from tests.golden_monodepth2 import fixed_batch
    from tests.test_host_syncs import TINY as SYNC_TINY
    from tests.test_host_syncs import SyncCounter
    from train.engine.step import device_step

    config = apply_overrides(preset("manydepth-m"), SYNC_TINY | {"jitter_prob": 1.0})
    method, nets, optimisers = method_parts(config)
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    batch = fixed_batch()
    draw = runtime.augment.draw(batch, torch.Generator().manual_seed(0), train=True)
    device_step(runtime, method, optimisers, batch, draw, torch.Generator())
    counter = SyncCounter()
    with counter:
        device_step(runtime, method, optimisers, batch, draw, torch.Generator())
    assert sum(counter.counts.values()) <= 2, dict(counter.counts)
