"""The litemono method: the reference's loss step and learning-rate schedules (spec 3.2 vectors,
3.4 bars), its optimisers, presets, ImageNet encoder initialisation, per-frame colour jitter and
what the training header says about it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import train.losses.monodepth2 as monodepth2_losses
from pipelines.loader import Augment, AugmentConfig, Augmented, Batch
from tests.helpers import method_parts
from tests.litemono_vectors import vectors_root
from train.engine.config import apply_overrides
from train.engine.header import deviations, parameter_line
from train.geometry import warp
from train.methods import preset, presets
from train.methods.litemono import LiteMono, LiteMonoParams
from train.methods.schedules import CosineRestartLR, cosine_restart_lr
from train.models import DepthOutput, PoseOutput

__all__ = ["vectors_root"]  # the fixture, imported for pytest

TINY = {"pretrained": False, "height": 64, "width": 96, "batch_size": 2, "device": "cpu"}


def _tensors(path: Path) -> dict[str, Tensor]:
    return {k: torch.from_numpy(np.array(v)) for k, v in np.load(path).items()}


class _StoredDepth(nn.Module):
    def __init__(self, disps: list[Tensor]) -> None:
        super().__init__()
        self.disps = disps

    def forward(self, image: Tensor) -> DepthOutput:
        return DepthOutput(list(self.disps))


class _StoredPose(nn.Module):
    """Returns the stored pose of the pair it is given, found by exact equality (the reference
    harness's stand-in)."""

    def __init__(self, inputs: dict[str, Tensor]) -> None:
        super().__init__()
        self.inputs = inputs
        self.calls: list[int] = []

    def forward(self, pair: Tensor) -> PoseOutput:
        i = self.inputs
        target = i["color_aug_0_0"]
        pairs = {
            0: torch.cat([i["color_aug_-1_0"], target], 1),
            1: torch.cat([target, i["color_aug_1_0"]], 1),
        }
        (index,) = [k for k, p in pairs.items() if torch.equal(p, pair)]
        self.calls.append(index)
        aa, tr = i["axisangle"][:, index], i["translation"][:, index]
        return PoseOutput(
            aa[:, None, None].repeat(1, 2, 1, 1), tr[:, None, None].repeat(1, 2, 1, 1)
        )


def _augmented(i: dict[str, Tensor]) -> Augmented:
    names = {0: "target", -1: "prev", 1: "next"}
    b = i["color_0_0"].shape[0]
    zeros = torch.zeros(b)
    return Augmented(
        color={n: [i[f"color_{f}_{s}"] for s in range(3)] for f, n in names.items()},
        color_aug={n: [i[f"color_aug_{f}_0"]] for f, n in names.items()},
        K=[i["K_0"]],
        inv_K=[i["inv_K_0"]],
        flipped=zeros.bool(),
        jittered=zeros.bool(),
        side_sign=zeros,
        flip_sign=zeros,
        baseline=zeros,
        jitter=None,  # type: ignore[arg-type]
    )


def _loss_step(folder: Path, monkeypatch: pytest.MonkeyPatch, noise: bool = True):
    """LiteMono.loss on the reference's inputs with stand-in networks returning its stored
    outputs, the recorded tie-breaking noise fed in; returns (output, selections, pose net)."""
    inputs = _tensors(folder / "loss_inputs.npz")
    draws = iter([inputs[f"tiebreak_noise_{s}"] for s in range(3)])

    def recorded_noise(shape, **kwargs):  # noqa: ANN001 - torch.randn's signature
        value = next(draws)
        assert tuple(shape) == tuple(value.shape)
        return value if noise else torch.zeros_like(value)

    selections: list[Tensor] = []
    original = monodepth2_losses.min_reprojection_loss

    def recording(*args, **kwargs):  # noqa: ANN002, ANN003
        out = original(*args, **kwargs)
        selections.append(out.automask)
        return out

    monkeypatch.setattr(torch, "randn", recorded_noise)
    monkeypatch.setattr(monodepth2_losses, "min_reprojection_loss", recording)
    method = LiteMono(apply_overrides(preset("litemono-m"), TINY))
    pose = _StoredPose(inputs)
    nets = {"depth": _StoredDepth([inputs[f"disp_{s}"] for s in range(3)]), "pose": pose}
    run = SimpleNamespace(
        device=torch.device("cpu"),
        nets=nets,
        autocast=lambda: torch.autocast("cpu", enabled=False),
        prepare=lambda x: x,
    )
    out = method.loss(run, _augmented(inputs))
    return out, selections, pose


def test_loss_step_matches_the_reference(vectors_root: Path, monkeypatch) -> None:
    folder = vectors_root / "litemono"
    expected = _tensors(folder / "loss_expected.npz")
    out, selections, pose = _loss_step(folder, monkeypatch)
    assert pose.calls == [0, 1]  # -1 then +1, pairs in temporal order
    torch.testing.assert_close(out.total.double(), expected["loss"], rtol=2e-5, atol=0)
    for s in range(3):
        got = out.scalars[f"loss_scale{s}"].double()
        torch.testing.assert_close(got, expected[f"loss_{s}"], rtol=2e-5, atol=0)
        selected = selections[s][:, 0].float()
        assert torch.equal(selected, expected[f"identity_selection_{s}"]), s


def test_loss_step_without_noise(vectors_root: Path, monkeypatch) -> None:
    folder = vectors_root / "litemono"
    expected = _tensors(folder / "loss_expected.npz")
    out, _, _ = _loss_step(folder, monkeypatch, noise=False)
    torch.testing.assert_close(out.total.double(), expected["loss_nonoise"], rtol=2e-5, atol=0)


def test_poses_and_warp_match_the_reference(vectors_root: Path) -> None:
    folder = vectors_root / "litemono"
    i, expected = _tensors(folder / "loss_inputs.npz"), _tensors(folder / "loss_expected.npz")
    matrices = {}
    for index, frame in enumerate((-1, 1)):
        aa, tr = i["axisangle"][:, index], i["translation"][:, index]
        matrices[frame] = PoseOutput(aa[:, None, None], tr[:, None, None]).matrix(invert=frame < 0)
        torch.testing.assert_close(
            matrices[frame], expected[f"cam_T_cam_{frame}"], rtol=0, atol=1e-6
        )
    from train.geometry import disp_to_depth

    _, depth = disp_to_depth(i["disp_0"], 0.1, 100.0)
    warped = warp(i["color_-1_0"], depth, i["K_0"], i["inv_K_0"], matrices[-1])
    torch.testing.assert_close(warped, expected["warped_-1_0"], rtol=0, atol=1e-5)


def test_learning_rates_match_the_recipe(vectors_root: Path) -> None:
    recipe = np.load(vectors_root / "litemono" / "recipe.npz")
    a, b, c, d, e, f = recipe["default_lr"]
    params = LiteMonoParams()
    assert params.lr_depth == (a, b, int(c)) and params.lr_pose == (d, e, int(f))
    for name, (top, low, period) in (("depth", params.lr_depth), ("pose", params.lr_pose)):
        ours = np.array([cosine_restart_lr(ep, top, low, period) for ep in range(70)])
        np.testing.assert_allclose(ours, recipe[f"lr_{name}_epoch_0_69"], rtol=1e-12, atol=0)
        np.testing.assert_allclose(ours[:31], recipe[f"lr_{name}_epoch"], rtol=1e-12, atol=0)
    # the method's two AdamW, driven by the engine's once-per-epoch step
    config = apply_overrides(preset("litemono-m"), {"pretrained": False})
    method, nets, optimisers = method_parts(config)
    assert [o.name for o in optimisers] == ["depth", "pose"]
    for spec in optimisers:
        group = spec.optimiser.param_groups[0]
        assert isinstance(spec.optimiser, torch.optim.AdamW) and spec.interval == "epoch"
        assert group["weight_decay"] == recipe["weight_decay"]
        assert (
            group["betas"] == tuple(recipe["adamw_betas"]) and group["eps"] == recipe["adamw_eps"]
        )
    depth_ids = {id(p) for p in nets["depth"].parameters() if p.requires_grad}
    assert {id(p) for p in optimisers[0].parameters()} == depth_ids
    within = []  # epoch 0: constant over its optimiser steps
    for _ in range(5):
        for spec in optimisers:
            for q in spec.parameters():
                q.grad = torch.zeros_like(q)
            spec.optimiser.step()
        within.append([o.optimiser.param_groups[0]["lr"] for o in optimisers])
    np.testing.assert_allclose(within, recipe["lr_epoch0_after_steps_1_to_5"], rtol=1e-12)
    lrs = []
    for _ in range(31):
        lrs.append([o.optimiser.param_groups[0]["lr"] for o in optimisers])
        for spec in optimisers:
            spec.scheduler.step()
    lrs_array = np.array(lrs)
    np.testing.assert_allclose(lrs_array[:, 0], recipe["lr_depth_epoch"], rtol=1e-12)
    np.testing.assert_allclose(lrs_array[:, 1], recipe["lr_pose_epoch"], rtol=1e-12)


def test_preset_is_the_readme_recipe(vectors_root: Path) -> None:
    recipe = np.load(vectors_root / "litemono" / "recipe.npz")
    config = preset("litemono-m")
    p = config.params
    # the README's command, not the option defaults (50 epochs, batch 16)
    assert (recipe["default_num_epochs"], recipe["default_batch_size"]) == (50, 16)
    # right after construction the reference's schedulers sit at the minimum; its first
    # start-of-epoch step moves them to epoch 0's rate, which is where ours start
    assert tuple(recipe["lr_after_construction"]) == (p.lr_depth[1], p.lr_pose[1])
    assert (config.epochs, config.batch_size) == (recipe["num_epochs"], recipe["batch_size"])
    assert (config.height, config.width) == (recipe["height"], recipe["width"])
    assert p.drop_path == recipe["drop_path_rate"] and p.scales == len(recipe["scales"])
    assert p.frame_ids == tuple(recipe["frame_ids"])
    assert (p.min_depth, p.max_depth) == (recipe["min_depth"], recipe["max_depth"])
    assert p.disparity_smoothness == recipe["disparity_smoothness"]
    assert p.weight_decay == recipe["weight_decay"]


def test_presets_cover_every_published_row() -> None:
    rows = {
        name: (c.params.variant, c.height, c.width)
        for name, c in presets().items()
        if c.method == "litemono"
    }
    assert rows == {
        "litemono-m": ("lite-mono", 192, 640),
        "litemono-small-m": ("lite-mono-small", 192, 640),
        "litemono-tiny-m": ("lite-mono-tiny", 192, 640),
        "litemono-8m-m": ("lite-mono-8m", 192, 640),
        "litemono-1024-m": ("lite-mono", 320, 1024),
        "litemono-small-1024-m": ("lite-mono-small", 320, 1024),
        "litemono-tiny-1024-m": ("lite-mono-tiny", 320, 1024),
        "litemono-8m-1024-m": ("lite-mono-8m", 320, 1024),
    }


def test_lr_settings_parse_and_validate() -> None:
    config = apply_overrides(preset("litemono-m"), ["lr_depth=2e-4,1e-5,10", "jitter=frame"])
    assert config.params.lr_depth == (2e-4, 1e-5, 10) and config.params.jitter == "frame"
    for bad in ("lr_pose=1e-4,1e-3,31", "lr_depth=1e-4,0", "variant=lite-mono-xl", "scales=4"):
        with pytest.raises(ValueError):
            apply_overrides(preset("litemono-m"), [bad])
    schedule = CosineRestartLR(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), 1.0, 0.5, 2)
    assert schedule.get_last_lr() == [cosine_restart_lr(0, 1.0, 0.5, 2)]


def test_parameter_line_has_the_spec_counts() -> None:
    config = apply_overrides(preset("litemono-m"), TINY)
    _, nets, _ = method_parts(config)
    line = parameter_line(nets)
    assert line.startswith("parameters: depth 3,074,747 (encoder 2,848,120 + decoder 226,627)")


def _imagenet_file(path: Path, encoder: nn.Module) -> dict[str, Tensor]:
    torch.manual_seed(5)
    model = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in encoder.state_dict().items()}
    extra = {"norm.weight": torch.ones(128), "head.weight": torch.zeros(1000, 128)}
    torch.save({"model": {**model, **extra}, "epoch": 3}, path)
    return model


def test_encoder_init_loads_the_imagenet_model_entry(tmp_path: Path) -> None:
    config = apply_overrides(preset("litemono-m"), TINY)
    method, nets, _ = method_parts(config)
    model = _imagenet_file(tmp_path / "imagenet.pth", nets["depth"].encoder)
    method = LiteMono(apply_overrides(config, {"encoder_init": str(tmp_path / "imagenet.pth")}))
    method.initialise(nets)
    for key, value in nets["depth"].encoder.state_dict().items():
        assert torch.equal(value, model[key]), key
    other = apply_overrides(
        config, {"variant": "lite-mono-tiny", "encoder_init": str(tmp_path / "imagenet.pth")}
    )
    with pytest.raises(ValueError, match="another variant"):
        LiteMono(other).initialise(method_parts(other)[1])
    torch.save({"state": 1}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="no 'model' entry"):
        LiteMono(apply_overrides(config, {"encoder_init": str(tmp_path / "bad.pth")})).initialise(
            nets
        )


def _batch(n: int = 3, size: tuple[int, int] = (32, 64)) -> Batch:
    g = torch.Generator().manual_seed(0)

    def image() -> Tensor:
        return torch.randint(0, 256, (n, 3, *size), generator=g, dtype=torch.uint8)

    K = torch.tensor([[50.0, 0, 32], [0, 50, 16], [0, 0, 1]]).expand(n, 3, 3).clone()
    return Batch(
        index=torch.arange(n), row=torch.arange(n), target=image(), prev=image(), next=image(), K=K,
        side=torch.zeros(n, dtype=torch.uint8), baseline=torch.full((n,), 0.54),
        has_prev=torch.ones(n, dtype=torch.bool), has_next=torch.ones(n, dtype=torch.bool),
    )  # fmt: skip


def test_frame_jitter_draws_per_frame_and_scale_and_item_is_unchanged() -> None:
    batch = _batch()
    cfg = AugmentConfig(height=32, width=64, scales=3, jitter_prob=1.0, flip_prob=0.0)
    item = Augment(cfg).draw(batch, torch.Generator().manual_seed(1))
    frame_cfg = AugmentConfig(**{**cfg.__dict__, "jitter_draws": "frame"})
    frame = Augment(frame_cfg).draw(batch, torch.Generator().manual_seed(1))
    assert item.frame_jitter is None and frame.frame_jitter is not None
    # every draw of the item mode comes first, unchanged
    assert torch.equal(item.jitter.brightness, frame.jitter.brightness)
    assert torch.equal(item.flipped, frame.flipped)
    factors = torch.stack([p.brightness for p in frame.frame_jitter.params])  # (scales, 3 * n)
    assert factors.unique().numel() == factors.numel()  # each frame and scale its own draw
    out = Augment(frame_cfg)(batch, draw=frame)
    assert not torch.equal(out.color_aug["target"][0], out.color_aug["prev"][0])
    plain = AugmentConfig(**{**frame_cfg.__dict__, "jitter_prob": 0.0})
    none = Augment(plain)(batch, torch.Generator().manual_seed(1))
    for name in ("target", "prev", "next"):  # the sample's decision holds for all its frames
        for s in range(3):
            assert torch.equal(none.color_aug[name][s], none.color[name][s])


def test_jitter_follows_exact_and_the_header_names_it() -> None:
    store = SimpleNamespace(
        dataset="kitti-raw", camera={"resize_method": "lanczos"}, image_size=(192, 640),
        source={"split_file": "/s/eigen_zhou/train_files.txt", "images": {"ext": "jpg"}},
    )  # fmt: skip
    runtime = SimpleNamespace(
        amp=False, device=torch.device("cpu"),
        augment=SimpleNamespace(config=SimpleNamespace(scales=1)),
    )  # fmt: skip
    base = preset("litemono-m")
    assert LiteMono(base).augment_config().jitter_draws == "item"
    text = "\n".join(deviations(base, store, runtime, 1))
    assert "colour jitter: one draw per sample" in text and "--set encoder_init=FILE" in text
    exact = apply_overrides(base, {"exact": True, "encoder_init": "imagenet.pth"})
    assert LiteMono(exact).augment_config().jitter_draws == "frame"
    assert deviations(exact, store, runtime, 1) == ["encoder_init 'imagenet.pth' (reference: None)"]
    small = apply_overrides(base, {"height": 96, "width": 128, "jitter": "frame"})
    assert "encoder dilations of 192x640 at 96x128" in "\n".join(
        deviations(small, store, runtime, 1)
    )


@pytest.mark.slow
def test_training_resumes_exactly_with_two_schedules(tmp_path: Path) -> None:
    """An uninterrupted run and one resumed at an epoch boundary and inside an epoch give the
    same loss at every step and the same weights (CPU): both AdamW, both cosine schedules,
    drop path (global generator) and per-frame jitter."""
    from pipelines.store.toystore import ToySpec, write_toy_store
    from train.engine.checkpoint import read_checkpoint
    from train.engine.runlog import read_log
    from train.engine.trainer import train

    store = tmp_path / "train.zarr"
    write_toy_store(
        store, ToySpec(n_sequences=1, frames_per_sequence=6, image_size=(64, 64), chunk=4)
    )
    tiny = {"pretrained": False, "height": 64, "width": 64, "batch_size": 4, "workers": 0}
    tiny |= {"log_every": 1, "device": "cpu", "variant": "lite-mono-tiny", "jitter": "frame"}
    tiny |= {"lr_depth": (1e-4, 1e-5, 2), "lr_pose": (1e-4, 1e-5, 2)}

    def config(**changes: object):
        return apply_overrides(preset("litemono-m"), tiny | changes)

    def logged(run: Path, tag: str) -> dict[int, float]:
        return {r["step"]: r["value"] for r in read_log(run) if r["tag"] == tag}

    train(config(epochs=2), store, tmp_path / "a", progress=False, echo=lambda _: None)
    train(config(epochs=1), store, tmp_path / "b", progress=False, echo=lambda _: None)
    epoch0 = max(logged(tmp_path / "b", "train/loss"))
    mid = config(epochs=2, max_steps=epoch0 + 1)
    train(mid, store, tmp_path / "b", resume=True, progress=False, echo=lambda _: None)
    train(config(epochs=2), store, tmp_path / "b", resume=True, progress=False, echo=lambda _: None)
    a, b = logged(tmp_path / "a", "train/loss"), logged(tmp_path / "b", "train/loss")
    assert a == b and max(a) > epoch0 + 1
    lrs = logged(tmp_path / "a", "train/lr_depth")
    assert set(lrs.values()) == {cosine_restart_lr(e, 1e-4, 1e-5, 2) for e in (0, 1)}  # restart
    wa = read_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["models"]
    wb = read_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["models"]
    for net in wa:
        assert all(torch.equal(wa[net][k], wb[net][k]) for k in wa[net]), net
