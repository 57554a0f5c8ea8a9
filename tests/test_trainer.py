"""Trainer: config overrides, a training step that learns, checkpoints, exact resume, logging."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipelines.loader.dataset import make_loader
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts
from train.engine.checkpoint import TrainState, read_checkpoint, restore, save_checkpoint
from train.engine.config import TrainConfig, apply_overrides
from train.engine.launch import TrainRequest, launch
from train.engine.run_folder import RunFolder
from train.engine.runlog import RunLogger, read_log
from train.engine.runtime import build_runtime
from train.engine.step import train_step
from train.engine.trainer import train
from train.eval.validation import depth_scorer
from train.methods import config_from_dict, method_class, preset, presets

TINY = {
    "pretrained": False,
    "height": 64,
    "width": 64,
    "batch_size": 4,
    "workers": 0,
    "log_every": 1,
    "device": "cpu",
    "val_batches": 1,
}


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """KITTI-like toy store: 2 views, 1 sequence of 6 frames at 64x64 (12 samples)."""
    path = tmp_path_factory.mktemp("toy") / "train.zarr"
    spec = ToySpec(n_sequences=1, frames_per_sequence=6, image_size=(64, 64), chunk=4)
    write_toy_store(path, spec)
    return str(path)


def tiny_config(**changes: object) -> TrainConfig:
    return apply_overrides(preset("monodepth2-m"), TINY | changes)


# ------------------------------------------------------------------ config
def test_presets_have_reference_settings() -> None:
    m, s, ms, nyu = (
        presets()[k] for k in ("monodepth2-m", "monodepth2-s", "monodepth2-ms", "monodepth2-nyu-m")
    )
    assert (m.height, m.width, m.batch_size, m.lr, m.epochs) == (192, 640, 12, 1e-4, 20)
    assert m.params.frame_ids == (0, -1, 1) and not m.params.use_stereo
    assert s.params.frame_ids == (0, "s") and s.params.use_stereo and s.params.temporal_ids == ()
    assert ms.params.frame_ids == (0, -1, 1, "s")
    assert method_class(ms.method)(ms).loader_request().frames == ("prev", "next", "stereo")
    nyu_p = nyu.params
    assert (nyu.height, nyu.width, nyu_p.max_depth, nyu_p.intrinsics) == (288, 384, 10.0, "store")
    # lr 1e-4 for epochs 0-14, 1e-5 from 15 (the reference under PyTorch 0.4.1)
    assert m.lr_at(14) == pytest.approx(1e-4) and m.lr_at(15) == pytest.approx(1e-5)


def test_overrides_parse_by_field_type() -> None:
    config = apply_overrides(
        preset("monodepth2-m"),
        ["epochs=3", "lr=2e-4", "amp=false", "frame_ids=0,-1,s", "max_steps=none", "device=cpu"],
    )
    assert config.epochs == 3 and config.lr == 2e-4 and config.amp is False
    assert config.params.frame_ids == (0, -1, "s") and config.max_steps is None
    assert config_from_dict(config.to_dict()) == config
    nested = apply_overrides(config, ["params.disparity_smoothness=0.01", "min_depth=0.5"])
    assert nested.params.disparity_smoothness == 0.01 and nested.params.min_depth == 0.5


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nope=1", "unknown config key"),
        ("epochs", "expected key=value"),
        ("amp=maybe", "expected true or false"),
        ("epochs=ten", "cannot parse"),
        ("height=100", "multiples of 32"),
        ("frame_ids=1,-1", "must start with 0"),
    ],
)
def test_bad_overrides_raise(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_overrides(preset("monodepth2-m"), [item])


def test_launch_needs_preset_and_store_or_resume(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--preset is required"):
        launch(TrainRequest(tmp_path, train_store="x.zarr"))
    with pytest.raises(ValueError, match="--train is required"):
        launch(TrainRequest(tmp_path, preset="monodepth2-m"))
    with pytest.raises(ValueError, match="holds no run to resume"):
        launch(TrainRequest(tmp_path, resume=True))
    with pytest.raises(ValueError, match="unknown preset"):
        launch(TrainRequest(tmp_path, preset="monodepth3", train_store="x.zarr"))


# ------------------------------------------------------------------ one step
def test_steps_on_a_fixed_batch_lower_the_loss(toy_store: str) -> None:
    config = tiny_config(lr=1e-3, jitter_prob=0.0, flip_prob=0.0)
    method, nets, optimisers = method_parts(config)
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    frames = method.loader_request().frames
    loader = make_loader(toy_store, 4, workers=0, shuffle=False, frames=frames, extras=())
    batch = next(iter(loader))
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(4):
        result = train_step(runtime, method, optimisers, batch, generator)
        assert result is not None
        losses.append(float(result.loss))
    assert losses[-1] < losses[0]
    assert result.images["disp"].shape == (result.samples, 1, 64, 64)


def test_stereo_step_runs_without_pose_net(toy_store: str) -> None:
    config = apply_overrides(preset("monodepth2-s"), TINY)
    method, nets, optimisers = method_parts(config)
    assert "pose" not in nets
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    frames = method.loader_request().frames
    loader = make_loader(toy_store, 2, workers=0, shuffle=False, frames=frames, extras=())
    result = train_step(
        runtime, method, optimisers, next(iter(loader)), torch.Generator().manual_seed(0)
    )
    assert result is not None and torch.isfinite(result.loss)


# ------------------------------------------------------------------ checkpoints and resume
def test_checkpoint_round_trip(tmp_path: Path) -> None:
    config = tiny_config()
    _, nets, optimisers = method_parts(config)
    path = save_checkpoint(tmp_path / "c.pt", config, nets, optimisers, TrainState(3, 42, 7))
    expected_global = torch.rand(3)

    _, other, other_opt = method_parts(tiny_config(seed=1))
    state = restore(read_checkpoint(path), other, other_opt)
    assert state == TrainState(3, 42, 7)
    for a, b in zip(
        nets["depth"].state_dict().values(), other["depth"].state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert torch.equal(torch.rand(3), expected_global)
    assert read_checkpoint(path)["config"] == config.to_dict()


def test_bad_checkpoint_file_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        read_checkpoint(bad)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    payload = read_checkpoint(run / "checkpoints" / "last.pt")
    return {f"{n}.{k}": v for n, sd in payload["models"].items() for k, v in sd.items()}


def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["value"] for r in read_log(run) if r["tag"] == "train/loss"}


@pytest.mark.slow
def test_resume_continues_exactly(toy_store: str, tmp_path: Path) -> None:
    """Epoch boundary and mid-epoch resumes reproduce an uninterrupted run bit for bit.

    12 samples in batches of 4: 3 batches per epoch (fewer steps when a batch holds only
    samples at sequence ends, which have no neighbour)."""
    full = tiny_config(epochs=2)
    train(full, toy_store, tmp_path / "a", progress=False)

    train(tiny_config(epochs=1), toy_store, tmp_path / "b", progress=False)  # epoch boundary
    epoch0 = max(_losses(tmp_path / "b"))
    mid = tiny_config(epochs=2, max_steps=epoch0 + 1)  # stops inside epoch 1
    train(mid, toy_store, tmp_path / "b", resume=True, progress=False)
    assert read_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["batch_in_epoch"] > 0
    train(full, toy_store, tmp_path / "b", resume=True, progress=False)

    a, b = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert max(a) > epoch0 + 1
    assert a == b  # the same loss at every step, including the first after each resume
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_a_different_config(toy_store: str, tmp_path: Path) -> None:
    config = tiny_config()
    _, nets, optimisers = method_parts(config)
    save_checkpoint(tmp_path / "checkpoints" / "last.pt", config, nets, optimisers, TrainState())
    with pytest.raises(ValueError, match="lr"):
        train(tiny_config(lr=1.0), toy_store, tmp_path, resume=True, progress=False)


@pytest.mark.slow
def test_epoch_files_are_weights_only_and_pruned(toy_store: str, tmp_path: Path) -> None:
    train(tiny_config(epochs=3, keep_epochs=2), toy_store, tmp_path, progress=False)
    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.glob("epoch_*.pt")) == ["epoch_001.pt", "epoch_002.pt"]
    weights, last = read_checkpoint(folder / "epoch_002.pt"), read_checkpoint(folder / "last.pt")
    assert "optimisers" not in weights and "rng" not in weights and weights["epoch"] == 3
    assert all(
        torch.equal(weights["models"][n][k], v)
        for n, sd in last["models"].items()
        for k, v in sd.items()
    )
    assert (folder / "epoch_002.pt").stat().st_size < (folder / "last.pt").stat().st_size / 2
    _, nets, optimisers = method_parts(tiny_config())
    with pytest.raises(ValueError, match="weights-only"):
        restore(weights, nets, optimisers)
    with pytest.raises(ValueError, match="keep_epochs"):
        tiny_config(keep_epochs=-1)


def test_epoch_files_pruned_by_epoch_number(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    folder.checkpoints.mkdir()
    for epoch in (998, 999, 1000, 1001):
        folder.epoch_file(epoch).write_bytes(b"")
    folder.prune_epoch_files(2)
    names = sorted(p.name for p in folder.checkpoints.iterdir())
    assert names == ["epoch_1000.pt", "epoch_1001.pt"]


def test_validation_and_logs(toy_store: str, tmp_path: Path) -> None:
    lines: list[str] = []
    summary = train(
        tiny_config(epochs=1),
        toy_store,
        tmp_path,
        val_store=toy_store,
        scorer=depth_scorer,
        progress=False,
        echo=lines.append,
    )
    assert "val/loss" in summary.validation and "val/abs_rel" in summary.validation
    assert lines[0].startswith("training monodepth2 (preset monodepth2-m)")  # the header
    assert any(line.startswith("epoch 0 validation") for line in lines)
    assert (tmp_path / "checkpoints" / "epoch_000.pt").is_file()
    tags = {r["tag"] for r in read_log(tmp_path)}
    assert {"train/loss", "train/lr", "val/loss", "val/a1"} <= tags


def test_logger_falls_back_to_jsonl_and_png(tmp_path: Path) -> None:
    logger = RunLogger(tmp_path, tensorboard=False)
    logger.scalars({"x": 1.5}, 3)
    logger.image("train/disp", torch.zeros(4, 5, 3, dtype=torch.uint8).numpy(), 3)
    logger.close()
    assert read_log(tmp_path) == [{"step": 3, "tag": "x", "value": 1.5}]
    assert (tmp_path / "images" / "train_disp_0000003.png").is_file()
    RunLogger(tmp_path / "off", enabled=False).scalars({"x": 1.0}, 0)
    assert not (tmp_path / "off").exists()
