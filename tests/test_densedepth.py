"""DenseDepth method: presets, stores it accepts and refuses, targets, losses, predictor, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import zarr

from pipelines.loader.dataset import make_loader
from pipelines.store import open_store
from pipelines.store.constants import NYU_FILLED_DEPTH
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts, run_cli
from train.engine.config import apply_overrides
from train.engine.runlog import read_log
from train.engine.runtime import build_runtime
from train.engine.step import train_step
from train.engine.trainer import train
from train.methods import DenseDepth, Monodepth2, method_class, preset, presets
from train.methods.densedepth import DenseDepthPredictor, target_at
from train.models.densedepth import depth_to_target

TINY = {
    "pretrained": False,
    "height": 64,
    "width": 64,
    "batch_size": 2,
    "workers": 0,
    "device": "cpu",
    "log_every": 1,
    "lr": 1e-3,
}


def _toy(path: Path, dataset: str, frames: int = 6, filled: bool = False) -> str:
    spec = ToySpec(
        dataset=dataset, n_sequences=1, frames_per_sequence=frames, image_size=(64, 64), chunk=4
    )
    write_toy_store(path, spec)
    if filled:  # what prepare-nyu --fill records
        group = zarr.open_group(str(path), mode="r+", zarr_format=3, use_consolidated=False)
        group.attrs["frames"] = {"depth": NYU_FILLED_DEPTH}
    return str(path)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("densedepth_stores")
    return {
        "labeled": _toy(root / "labeled_train.zarr", "nyu-labeled"),
        "raw": _toy(root / "raw_train.zarr", "nyu-raw"),
        "filled": _toy(root / "raw_filled.zarr", "nyu-raw", filled=True),
        "kitti": _toy(root / "kitti.zarr", "kitti-raw"),
    }


def tiny(name: str = "densedepth-nyu", **changes: object):
    return apply_overrides(preset(name), TINY | changes)


# ------------------------------------------------------------------ presets and requests
def test_presets_have_the_reference_settings() -> None:
    for name, dataset in (("densedepth-nyu", "nyu-labeled"), ("densedepth-nyu-raw", "nyu-raw")):
        c = presets()[name]
        assert (c.method, c.dataset, c.height, c.width) == ("densedepth", dataset, 480, 640)
        assert (c.batch_size, c.lr, c.epochs, c.flip_prob, c.jitter_prob) == (8, 1e-4, 20, 0.5, 0)
        assert all(c.lr_at(e) == pytest.approx(1e-4) for e in range(c.epochs))
        p = c.params
        assert (p.loss, p.theta, p.channel_swap_prob, p.amsgrad, p.input_pool) == (
            "densedepth", 0.1, 0.25, True, 1)  # fmt: skip
    aug = DenseDepth(presets()["densedepth-nyu"]).augment_config()
    assert (aug.scales, aug.flip_prob, aug.jitter_prob, aug.channel_swap_prob) == (1, 0.5, 0, 0.25)


def test_single_frame_requests_follow_the_dataset() -> None:
    assert DenseDepth(tiny()).loader_request().frames == ()
    assert DenseDepth(tiny()).loader_request().extras == ("gt",)
    assert DenseDepth(tiny("densedepth-nyu-raw")).loader_request().extras == ("depth",)
    assert DenseDepth.datasets == ("nyu-labeled", "nyu-raw")


# ------------------------------------------------------------------ refusals
def _cli_train(args: list[str], store: str, out: Path) -> list[str]:
    return ["train", *args, "--train", store, "--out", str(out), "--device", "cpu"]


@pytest.mark.parametrize(
    ("args", "store", "message"),
    [
        (["--preset", "densedepth-nyu-raw"], "raw", "prepare-nyu --fill"),
        (
            ["--preset", "densedepth-nyu", "--set", "check_dataset=false"],
            "raw",
            "dense ground truth",
        ),
        (["--preset", "densedepth-nyu"], "kitti", "trains on nyu-labeled or nyu-raw"),
        (["--preset", "densedepth-nyu", "--set", "loss=huber"], "labeled", "unknown loss 'huber'"),
        (["--preset", "monodepth2-nyu-m"], "labeled", "this store is nyu-labeled"),
        (
            ["--preset", "monodepth2-nyu-m", "--set", "check_dataset=false"],
            "labeled",
            "this store is nyu-labeled",
        ),
    ],
)
def test_bad_stores_and_losses_are_one_line(args, store, message, stores, tmp_path, capsys) -> None:
    assert run_cli(_cli_train(args, stores[store], tmp_path / "run")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err


def test_temporal_methods_need_neighbours(stores: dict[str, str]) -> None:
    """The generic check behind the refusal: video frames from a store of single frames."""

    class AnyNyu(Monodepth2):
        datasets = ("nyu-labeled", "nyu-raw")

    config = apply_overrides(preset("monodepth2-nyu-m"), {"check_dataset": False})
    with pytest.raises(ValueError, match="temporal neighbours"):
        AnyNyu(config).check_store(open_store(stores["labeled"]))
    AnyNyu(config).check_store(open_store(stores["raw"]))


def test_filled_raw_and_labeled_stores_are_accepted(stores: dict[str, str]) -> None:
    DenseDepth(tiny()).check_store(open_store(stores["labeled"]))
    DenseDepth(tiny("densedepth-nyu-raw")).check_store(open_store(stores["filled"]))


# ------------------------------------------------------------------ targets, losses, predictor
def test_targets_are_1000_over_cm_and_skip_missing_depth() -> None:
    depth = torch.rand(2, 1, 8, 12) * 9 + 0.5
    y, valid = target_at(depth, (8, 12))
    torch.testing.assert_close(y, 1000 / (depth * 100))
    assert valid.all()
    y, valid = target_at(depth, (4, 6))
    ref = torch.nn.functional.interpolate(
        depth_to_target(depth), (4, 6), mode="bilinear", antialias=True
    )
    torch.testing.assert_close(y, ref)
    holes = depth.clone()
    holes[:, :, :2, :2] = 0
    y, valid = target_at(holes, (4, 6))
    assert not valid[:, :, 0, 0].any() and valid[:, :, 2:, 2:].all()
    assert torch.isfinite(y).all() and (y[valid] >= 1).all() and (y[valid] <= 100).all()


@pytest.mark.parametrize("loss", ["berhu", "silog", "l1"])
def test_every_loss_choice_learns(loss: str, stores: dict[str, str]) -> None:
    """A few steps on one batch lower each loss (lr 3e-4: at 1e-3 SILog, whose gradient is
    1 / y, overshoots on an untrained network)."""
    config = tiny(loss=loss, channel_swap_prob=0.0, flip_prob=0.0, lr=3e-4)
    method, nets, optimisers = method_parts(config)
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    batch = next(iter(make_loader(stores["labeled"], 2, workers=0, shuffle=False, extras=("gt",))))
    gen = torch.Generator().manual_seed(0)
    losses = [float(train_step(runtime, method, optimisers, batch, gen).loss) for _ in range(4)]
    assert losses[-1] < losses[0], losses


def test_raw_filled_store_trains_on_its_depth(stores: dict[str, str]) -> None:
    config = tiny("densedepth-nyu-raw")
    method, nets, optimisers = method_parts(config)
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    request = method.loader_request()
    loader = make_loader(stores["filled"], 2, workers=0, extras=request.extras, frames=())
    batch = next(iter(loader))
    assert batch.depth is not None and batch.gt_depth is None
    result = train_step(runtime, method, optimisers, batch, torch.Generator().manual_seed(0))
    assert torch.isfinite(result.loss) and float(result.scalars["valid_fraction"]) == 1.0


def test_predictor_gives_metres_at_half_resolution() -> None:
    method, nets, _ = method_parts(tiny())
    predictor = method.predictor(nets).eval()
    assert isinstance(predictor, DenseDepthPredictor)
    assert not predictor.scaling.median and predictor.scaling.factor == 1.0
    with torch.no_grad():
        depth = predictor(torch.rand(2, 3, 64, 96))
    assert depth.shape == (2, 1, 32, 48)
    assert float(depth.min()) >= 0.1 and float(depth.max()) <= 10.0


def test_seed_variant_max_pools_the_input_by_4() -> None:
    method, nets, _ = method_parts(tiny(input_pool=4))
    with torch.no_grad():
        depth = method.predictor(nets).eval()(torch.rand(1, 3, 224, 320))  # pooled: 56x80
    assert depth.shape == (1, 1, 28, 40)


# ------------------------------------------------------------------ a run and its resume
def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["value"] for r in read_log(run) if r["tag"] == "train/loss"}


def test_resume_continues_exactly(stores: dict[str, str], tmp_path: Path) -> None:
    """6 samples, batches of 2: 3 steps per epoch; epoch 1 resumed from the epoch-0 checkpoint."""
    full = tiny(epochs=2)
    train(full, stores["labeled"], tmp_path / "a", progress=False)
    train(tiny(epochs=1), stores["labeled"], tmp_path / "b", progress=False)
    train(full, stores["labeled"], tmp_path / "b", resume=True, progress=False)
    a, b = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert sorted(a) == [1, 2, 3, 4, 5, 6] and a == b
    assert method_class(full.method) is DenseDepth


def test_default_step_waits_for_nothing_on_the_device(stores: dict[str, str]) -> None:
    """The densedepth loss path is sync-free, like Monodepth2's (tests/test_host_syncs.py)."""
    from tests.test_host_syncs import SyncCounter
    from train.engine.step import device_step

    config = tiny(flip_prob=0.5)
    method, nets, optimisers = method_parts(config)
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    batch = next(iter(make_loader(stores["labeled"], 2, workers=0, shuffle=False, extras=("gt",))))
    draw = runtime.augment.draw(batch, torch.Generator().manual_seed(0), train=True)
    device_step(runtime, method, optimisers, batch, draw)  # creates Adam's state
    counter = SyncCounter()
    with counter:
        device_step(runtime, method, optimisers, batch, draw)
    assert sum(counter.counts.values()) <= 2, dict(counter.counts)
