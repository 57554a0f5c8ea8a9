"""FeatDepth as a method: the auto-encoder stage, the depth stage with its frozen extractor, the
feature-metric term added to Monodepth2, ``--stages``, refusals, resume and the schedule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from pipelines.loader import make_loader
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts, run_cli
from train.engine.checkpoint import (
    TrainState,
    checkpoint_config,
    load_networks,
    read_checkpoint,
    save_checkpoint,
)
from train.engine.config import TrainConfig, apply_overrides
from train.engine.runlog import read_log
from train.engine.runtime import build_runtime
from train.engine.step import train_step
from train.engine.trainer import train
from train.losses.featdepth import autoencoder_loss
from train.methods import preset, presets
from train.methods.feature_metric import FrozenExtractor, feature_metric_term
from train.methods.schedules import WarmupStepLR

SMALL = {"pretrained": False, "height": 96, "width": 96, "batch_size": 2, "workers": 0}
SMALL |= {"device": "cpu", "log_every": 1, "jitter_prob": 0.0, "flip_prob": 0.0}
AE = SMALL | {"feature_layers": 18, "lr": 1e-4, "warmup_iters": 0}  # 1e-3 overshoots in 8 steps
DEPTH = SMALL | {"feature_layers": 18, "num_layers": 18, "pose_size": "none", "max_steps": 2}
MONODEPTH2_FM = SMALL | {"feature_layers": 18, "max_steps": 2}


def smooth_images(n: int, views: int, height: int, width: int) -> np.ndarray:
    """uint8 ``(n, views, H, W, 3)`` seeded colour waves (something an auto-encoder can learn)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    waves = [
        0.5 + 0.4 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * xx + rng.uniform(0.5, 2) * yy) + p)
        for p in rng.uniform(0, 6, n * views * 3)
    ]
    return (
        (np.stack(waves, -1).reshape(height, width, n, views, 3) * 255)
        .astype(np.uint8)
        .transpose(2, 3, 0, 1, 4)
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """KITTI-like toy store at 96x96 (1 sequence of 6 frames, 2 views) of smooth images."""
    path = tmp_path_factory.mktemp("fd_toy") / "train.zarr"
    spec = ToySpec(n_sequences=1, frames_per_sequence=6, image_size=(96, 96), chunk=4)
    write_toy_store(path, spec)
    images = zarr.open_group(str(path), mode="r+")["image"]
    images[...] = smooth_images(*images.shape[:4])
    return str(path)


@pytest.fixture(scope="module")
def ae_run(store: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished stage-1 run (ResNet-18 FeatureNet, 8 steps), validated on its own store."""
    run = tmp_path_factory.mktemp("fd_ae") / "ae"
    config = apply_overrides(
        preset("featdepth-ae"), AE | {"max_steps": 8, "epochs": 2, "val_batches": 2}
    )
    train(config, store, run, val_store=store, progress=False, echo=lambda _: None)
    return run


def depth_config(extractor: Path | None, name: str = "featdepth-m", **more: object) -> TrainConfig:
    """A small stage-2 config of preset ``name`` using the stage-1 run ``extractor``."""
    extra = {} if extractor is None else {"extractor": str(extractor / "checkpoints" / "last.pt")}
    small = DEPTH if name.startswith("featdepth") else MONODEPTH2_FM
    return apply_overrides(preset(name), small | extra | more)


def _log(run: Path, tag: str) -> dict[int, float]:
    return {r["step"]: r["value"] for r in read_log(run) if r["tag"] == tag}


# ------------------------------------------------------------------ presets and schedule
def test_presets_have_featdepths_settings() -> None:
    ae, ae_nyu, m, ms = (presets()[k] for k in ("featdepth-ae", "featdepth-ae-nyu",
                                              "featdepth-m", "featdepth-ms"))  # fmt: skip
    assert (ae.height, ae.width, ae.batch_size, ae.epochs, ae.lr) == (256, 800, 5, 30, 1e-4)
    assert ae.params.stage == "autoencoder" and ae.params.feature_layers == 50
    assert ae.params.lr_steps == (10, 20) and ae_nyu.dataset == "nyu-raw"
    assert (m.height, m.width, m.batch_size, m.epochs) == (320, 1024, 2, 40)
    assert (m.params.num_layers, m.params.pose_layers, m.params.lr_steps) == (50, 18, (20, 30))
    assert m.params.automask and m.params.disp_norm and m.params.feature_metric == 1e-3
    assert ms.params.frame_ids == (0, -1, 1, "s") and not ms.params.automask
    assert not ms.params.disp_norm and ms.params.stereo_baseline == 0.015
    for name in ("monodepth2-fm-m", "monodepth2-fm-s", "monodepth2-fm-nyu-m"):
        fm, plain = presets()[name].params, presets()[name.replace("-fm", "")].params
        assert fm.feature_metric == 1e-3 and plain.feature_metric == 0.0
        assert fm.frame_ids == plain.frame_ids and fm.num_layers == 18
    nyu = presets()["monodepth2-fm-nyu-m"]
    assert (nyu.dataset, nyu.height, nyu.width, nyu.params.max_depth) == ("nyu-raw", 192, 480, 10)


def test_eval_scale_comes_from_the_config() -> None:
    def scaling(name: str, **more: object):
        config = apply_overrides(preset(name), SMALL | DEPTH | more)
        method, nets, _ = method_parts(config)
        return method.predictor(nets).scaling

    assert scaling("featdepth-ms").factor == 36.0 and not scaling("featdepth-ms").median
    assert scaling("featdepth-ms", stereo_baseline=0.1).factor == pytest.approx(5.4)
    assert scaling("featdepth-m").median


def test_warmup_then_step_decay_and_state_round_trip() -> None:
    def make() -> tuple[torch.optim.Optimizer, WarmupStepLR]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=3e-4)
        return opt, WarmupStepLR(opt, (2, 3), gamma=0.5, warmup_iters=10, warmup_ratio=1 / 3)

    opt, sched = make()
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
    assert lrs[0] == pytest.approx(1e-4) and lrs[5] == pytest.approx(3e-4 * (1 - 0.5 * 2 / 3))
    assert lrs[10] == lrs[11] == pytest.approx(3e-4)
    for expected in (3e-4, 1.5e-4, 0.75e-4):  # epochs 1, 2, 3: x0.5 from epochs 2 and 3
        sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(expected)
    other_opt, other = make()
    other.load_state_dict(sched.state_dict())
    assert other.iteration == 12 and other.last_epoch == 3 and other.get_lr() == sched.get_lr()


# ------------------------------------------------------------------ stage 1
def test_autoencoder_run_lowers_its_reconstruction_loss(ae_run: Path, store: str) -> None:
    """The reconstruction terms on the run's own images, before and after its 8 steps."""
    payload = read_checkpoint(ae_run / "checkpoints" / "last.pt")
    config = checkpoint_config(payload)
    assert config.params.stage == "autoencoder" and len(_log(ae_run, "train/reconstruction")) == 8
    assert "val/loss" in {r["tag"] for r in read_log(ae_run)}  # no depth metrics: no predictor
    image = torch.from_numpy(zarr.open_group(store, mode="r")["image"][:, 0]).float() / 255
    image = image.permute(0, 3, 1, 2)
    losses = []
    for trained in (False, True):
        nets = method_parts(config)[1]
        if trained:
            load_networks(payload, nets)
        with torch.no_grad():
            out = nets["featurenet"].train()(image)  # batch statistics: a few steps only
            losses.append(float(autoencoder_loss(image, out.reconstructions, [])))
    assert losses[1] < losses[0], losses


def test_autoencoder_checkpoint_is_not_evaluated(ae_run: Path, store: str, capsys) -> None:
    assert run_cli(["eval", str(ae_run / "checkpoints" / "last.pt"), store]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "predicts no depth" in err and "\n" not in err


# ------------------------------------------------------------------ stage 2
def _extractor_state(run: Path) -> dict[str, torch.Tensor]:
    models = read_checkpoint(run / "checkpoints" / "last.pt")["models"]
    if "extractor" in models:
        return dict(models["extractor"])
    return {k: v for k, v in models["featurenet"].items() if k.startswith("encoder.")}


def test_train_mode_batch_norm_moves_only_the_statistics(store: str) -> None:
    """FeatDepth's behaviour (extractor_bn=train): batch statistics, never optimised."""
    config = depth_config(None, extractor_bn="train")
    method, nets, optimisers = method_parts(config)
    assert "extractor" in nets.frozen and "extractor" not in nets.trainable()
    nets.train(True)
    assert nets["extractor"].training
    before = {k: v.clone() for k, v in nets["extractor"].state_dict().items()}
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    request = method.loader_request()
    loader = make_loader(store, 2, workers=0, shuffle=False, frames=request.frames)
    batch = next(b for b in loader if bool(b.has_prev.all() and b.has_next.all()))
    assert train_step(runtime, method, optimisers, batch, torch.Generator().manual_seed(0))
    after = nets["extractor"].state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.endswith(("running_mean", "running_var", "tracked")) for k in moved)
    default = method_parts(depth_config(None))[1]
    default.train(True)
    assert not default["extractor"].training  # eval BatchNorm by default


@pytest.mark.slow
def test_depth_stage_keeps_the_extractor_frozen_and_resumes_exactly(
    ae_run: Path, store: str, tmp_path: Path
) -> None:
    """Stage 2 loads the stage-1 encoder, never changes it (eval BatchNorm by default), and a
    resumed run equals an uninterrupted one (the decoder's dropout draws from torch's global
    RNG: restored exactly too)."""
    train(depth_config(ae_run), store, tmp_path / "a", progress=False)
    before, after = _extractor_state(ae_run), _extractor_state(tmp_path / "a")
    assert set(before) == set(after) and len(before) > 10
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    fm = _log(tmp_path / "a", "train/feature_metric")
    assert len(fm) == 2 and all(v > 0 for v in fm.values())
    train(depth_config(ae_run, max_steps=1), store, tmp_path / "b", progress=False)
    train(depth_config(ae_run), store, tmp_path / "b", resume=True, progress=False)
    assert _log(tmp_path / "a", "train/loss") == _log(tmp_path / "b", "train/loss")
    a = read_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    b = read_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    for net in a["models"]:
        assert all(torch.equal(v, b["models"][net][k]) for k, v in a["models"][net].items())
    assert a["schedulers"] == b["schedulers"]


def test_feature_metric_term_adds_to_monodepth2(ae_run: Path, store: str, tmp_path: Path) -> None:
    config = depth_config(ae_run, "monodepth2-fm-m", max_steps=1)
    train(config, store, tmp_path / "fm", progress=False)
    photometric = _log(tmp_path / "fm", "train/photometric")
    fm, total = _log(tmp_path / "fm", "train/feature_metric"), _log(tmp_path / "fm", "train/loss")
    assert total[1] == pytest.approx(photometric[1] + 1e-3 * fm[1], rel=1e-6)
    plain = method_parts(apply_overrides(config, {"feature_metric": 0.0}))[1]
    assert "extractor" not in plain and plain.frozen == frozenset()


@pytest.mark.parametrize("train_mode", [False, True])
def test_extractor_is_the_encoders_level_zero(train_mode: bool) -> None:
    """The extractor runs only the stem; FeatDepth runs the whole encoder and keeps level 0."""
    extractor = FrozenExtractor(18).train(train_mode)
    image = torch.rand(2, 3, 96, 128)
    expected = extractor.encoder(image)[0]
    stats = extractor.encoder.encoder.bn1.running_mean.clone()
    assert torch.equal(extractor(image), expected)
    assert torch.equal(extractor.encoder.encoder.bn1.running_mean, stats) != train_mode


def test_feature_metric_of_unmoved_identical_features_is_its_floor() -> None:
    """Zero pose: the warp is the identity, so each pixel's error is sqrt(1e-6) = 1e-3."""
    torch.manual_seed(0)
    extractor = FrozenExtractor(18).eval()
    image = torch.rand(2, 3, 96, 128)
    disp = torch.rand(2, 1, 48, 64, requires_grad=True)
    K = torch.eye(4).expand(2, 4, 4).clone()
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2] = 74.0, 184.0, 64.0, 48.0
    loss = feature_metric_term(extractor, disp, image, [image], [torch.eye(4)], K, 0.1, 100.0)
    assert loss.item() == pytest.approx(1e-3, rel=1e-4)
    moved = torch.eye(4)
    moved[0, 3] = 0.2
    loss = feature_metric_term(extractor, disp, image, [image.roll(3, -1)], [moved], K, 0.1, 100)
    loss.backward()
    assert loss.item() > 2e-3 and disp.grad is not None and disp.grad.abs().sum() > 0


# ------------------------------------------------------------------ --stages and refusals
@pytest.mark.slow
def test_stages_all_trains_both_into_their_folders(store: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "both"
    sets = [f"--set={k}={v}" for k, v in (DEPTH | {"warmup_iters": 0}).items() if k != "max_steps"]
    argv = ["train", "--preset", "featdepth-m", "--train", store, "--out", str(out)]
    assert run_cli([*argv, *sets, "--max-steps", "1", "--stages", "all"]) == 0
    text = capsys.readouterr().out
    assert "stage autoencoder" in text and "stage depth" in text
    depth = read_checkpoint(out / "depth" / "checkpoints" / "last.pt")
    assert depth["config"]["params"]["extractor"] == str(out / "autoencoder/checkpoints/last.pt")
    ae = read_checkpoint(out / "autoencoder" / "checkpoints" / "last.pt")
    assert ae["config"]["params"]["stage"] == "autoencoder" and "featurenet" in ae["models"]
    assert torch.equal(
        ae["models"]["featurenet"]["encoder.encoder.conv1.weight"],
        depth["models"]["extractor"]["encoder.encoder.conv1.weight"],
    )


def _refusal(argv: list[str], capsys) -> str:
    assert run_cli(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    return err


def test_bad_extractors_are_refused_with_one_line(
    ae_run: Path, store: str, tmp_path: Path, capsys
) -> None:
    other = tmp_path / "m2.pt"
    m2 = apply_overrides(preset("monodepth2-m"), SMALL)
    _, nets, opts = method_parts(m2)
    save_checkpoint(other, m2, nets, opts, TrainState(), {})
    last = str(ae_run / "checkpoints" / "last.pt")
    sets = [f"--set={k}={v}" for k, v in DEPTH.items()]
    out = tmp_path / "out"
    base = ["train", "--preset", "featdepth-m", "--train", store, "--out", str(out), *sets]
    cases = [
        ([], "needs the stage-1 auto-encoder"),
        ([f"--set=extractor={tmp_path / 'none.pt'}"], "checkpoint not found"),
        ([f"--set=extractor={other}"], "a monodepth2 checkpoint, not a featdepth autoencoder"),
        ([f"--set=extractor={last}", "--set=feature_layers=34"], "ResNet-18, this run's"),
    ]
    for extra, message in cases:
        assert message in _refusal([*base, *extra], capsys)
    depth_ckpt = tmp_path / "d.pt"
    config = depth_config(None)
    _, nets, opts = method_parts(config)
    save_checkpoint(depth_ckpt, config, nets, opts, TrainState(), {})
    assert "stage 'depth'" in _refusal([*base, f"--set=extractor={depth_ckpt}"], capsys)
    fm = ["train", "--preset", "monodepth2-fm-m", "--train", store, "--out", str(out)]
    assert "feature_metric > 0 needs" in _refusal([*fm, "--set=pretrained=false"], capsys)
    assert not out.exists()  # nothing written by any refusal


def test_stages_small_images_and_stereo_refusals(store: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    base = ["train", "--train", store, "--out", str(out), "--set=pretrained=false"]
    err = _refusal([*base, "--preset", "featdepth-m", "--stages", "joint"], capsys)
    assert "featdepth has the stages autoencoder, depth (or all)" in err
    assert "has the stages depth" in _refusal([*base, "--preset", "monodepth2-m",
                                               "--stages", "autoencoder"], capsys)  # fmt: skip
    assert "holds no run to resume" in _refusal([*base, "--stages", "all", "--resume"], capsys)
    small = ["--preset", "featdepth-ae", "--height", "64", "--width", "128"]
    assert "at least 96x96" in _refusal([*base, *small], capsys)
    nyu = tmp_path / "nyu.zarr"
    write_toy_store(nyu, ToySpec(dataset="nyu-raw", n_sequences=1, frames_per_sequence=4,
                                 image_size=(96, 128)))  # fmt: skip
    nyu_base = ["train", "--train", str(nyu), "--out", str(out), "--set=pretrained=false"]
    stereo = [*nyu_base, "--preset", "featdepth-ms", "--set=check_dataset=false"]
    assert "two-view (stereo) store" in _refusal([*stereo, "--stages", "all"], capsys)
    assert not out.exists()
