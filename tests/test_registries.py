"""Every registered network and every registered preset goes through the same checks.

Networks (torchvision-style): output shapes, a backward pass reaching every parameter, and
``torch.export`` matching eager. Presets (every one, so every method, plug-ins included): a few
CPU steps on one tiny batch lower the loss, the checkpoint round-trips, and a predictor gives
depth of the input's batch size. Tiny sizes: 96x128 inputs, ResNet-18 where a preset has a
ResNet depth setting.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from pipelines.loader import Batch
from pipelines.loader.dataset import make_loader
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts
from train.engine.checkpoint import (
    TrainState,
    checkpoint_config,
    load_networks,
    read_checkpoint,
    save_checkpoint,
)
from train.engine.config import TrainConfig, apply_overrides
from train.engine.runtime import build_runtime
from train.engine.step import train_step
from train.methods import Method, presets
from train.models import NETWORKS, build_network

TINY = {
    "pretrained": False,
    "height": 96,
    "width": 128,
    "batch_size": 2,
    "workers": 0,
    "device": "cpu",
    "jitter_prob": 0.0,
    "flip_prob": 0.0,
    "lr": 1e-3,
}


def flatten(out: object) -> list[Tensor]:
    """Every tensor in a network output (tensor, dataclass, list/tuple/dict of those)."""
    if isinstance(out, Tensor):
        return [out]
    if dataclasses.is_dataclass(out):
        return [t for f in dataclasses.fields(out) for t in flatten(getattr(out, f.name))]
    if isinstance(out, list | tuple):
        return [t for item in out for t in flatten(item)]
    if isinstance(out, dict):
        return [t for item in out.values() for t in flatten(item)]
    return []


class Flat(nn.Module):
    """A network whose output is flattened to a tuple of tensors (what tracing needs)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(flatten(self.net(x)))


def example_input(name: str) -> Tensor:
    entry = NETWORKS[name]
    size = max(entry.min_size, 64)
    return torch.rand(
        2, entry.input_channels, size, size + 32, generator=torch.Generator().manual_seed(0)
    )


@pytest.mark.parametrize("name", sorted(NETWORKS))
class TestRegisteredNetwork:
    def test_outputs_and_backward(self, name: str) -> None:
        torch.manual_seed(0)
        net = build_network(name)
        x = example_input(name)
        outputs = flatten(net(x))
        assert outputs and all(o.shape[0] == 2 and torch.isfinite(o).all() for o in outputs)
        sum(o.float().mean() for o in outputs).backward()
        missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, f"no gradient reaches {missing[:5]}"

    @pytest.mark.slow
    def test_export_matches_eager(self, name: str) -> None:
        torch.manual_seed(0)
        net = Flat(build_network(name)).eval()
        x = example_input(name)
        exported = torch.export.export(net, (x,)).module()
        with torch.no_grad():
            for a, b in zip(exported(x), net(x), strict=True):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


SMALL_RESNETS = ("num_layers", "feature_layers", "pose_layers")


def tiny(name: str) -> TrainConfig:
    """Preset ``name`` at :data:`TINY` sizes, its ResNets at depth 18."""
    config = apply_overrides(presets()[name], TINY)
    own = {f.name for f in dataclasses.fields(config.params)}
    return apply_overrides(config, {k: "18" for k in SMALL_RESNETS if k in own})


@pytest.fixture(scope="module")
def toy_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One toy store per dataset a preset trains on (96x128, one sequence of 4 frames), with
    masks (``seg``) and, for KITTI, depth hints, so that every method finds its extras."""
    root = tmp_path_factory.mktemp("toy_methods")
    stores = {}
    for dataset in sorted({c.dataset for c in presets().values()}):
        path = root / f"{dataset}.zarr"
        spec = ToySpec(
            dataset=dataset,
            n_sequences=1,
            frames_per_sequence=4,
            image_size=(96, 128),
            seg=True,
            hints=dataset == "kitti-raw",
        )
        write_toy_store(path, spec)
        stores[dataset] = str(path)
    return stores


def first_batch(config: TrainConfig, method: Method, stores: dict[str, str]) -> Batch:
    """The first batch of two samples with every frame the method asks for."""
    request = method.loader_request()
    loader = make_loader(
        stores[config.dataset], 2, workers=0, shuffle=False, frames=request.frames,
        extras=request.extras,
    )  # fmt: skip
    return next(b for b in loader if bool(b.has_prev is None or b.has_prev.all()))


FIRST_PRESETS = {c.method: name for name, c in reversed(list(presets().items()))}


@pytest.mark.parametrize("name", sorted(FIRST_PRESETS.values()))
def test_steps_lower_the_loss(name: str, toy_stores: dict[str, str]) -> None:
    """Learning, on each method's first preset: four steps on one batch lower the loss (the
    toy images are noise, so only the first preset's well-posed setting is asked to learn)."""
    config = tiny(name)
    method, nets, optimisers = method_parts(config)
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    batch = first_batch(config, method, toy_stores)
    gen = torch.Generator().manual_seed(0)
    losses = [float(train_step(runtime, method, optimisers, batch, gen).loss) for _ in range(4)]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", list(presets()))
class TestRegisteredPreset:
    def test_a_step_trains_every_trainable_network(
        self, name: str, toy_stores: dict[str, str]
    ) -> None:
        config = apply_overrides(tiny(name), {"lr": 1e-4})
        method, nets, optimisers = method_parts(config)
        runtime = build_runtime(config, method, nets, torch.device("cpu"))
        before = {k: [p.detach().clone() for p in m.parameters()] for k, m in nets.named().items()}
        result = train_step(
            runtime, method, optimisers, first_batch(config, method, toy_stores),
            torch.Generator().manual_seed(0),
        )  # fmt: skip
        assert result is not None and bool(torch.isfinite(result.loss))
        for key, module in nets.named().items():
            now = list(module.parameters())
            moved = any(not torch.equal(a, b) for a, b in zip(before[key], now, strict=True))
            assert moved == (key in nets.trainable()), key

    def test_checkpoint_round_trip_and_predictor(self, name: str, tmp_path: Path) -> None:
        config = tiny(name)
        method, nets, optimisers = method_parts(config)
        path = save_checkpoint(tmp_path / "c.pt", config, nets, optimisers, TrainState(1, 2))
        payload = read_checkpoint(path)
        assert checkpoint_config(payload) == config
        _, other, _ = method_parts(apply_overrides(config, {"seed": 1}))
        load_networks(payload, other)
        for key, module in nets.named().items():
            for a, b in zip(
                module.state_dict().values(), other[key].state_dict().values(), strict=True
            ):
                assert torch.equal(a, b)
        if not method.predicts_depth:  # a stage without a depth network (an auto-encoder)
            with pytest.raises(ValueError):
                method.predictor(other)
            return
        predictor = method.predictor(other).eval()
        depth = predictor(*predictor.arguments(torch.rand(3, 3, 96, 128)))
        assert depth.shape[:2] == (3, 1) and bool((depth > 0).all())
