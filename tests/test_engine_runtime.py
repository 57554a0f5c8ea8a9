"""Runtime details of the engine: determinism switches, compile-friendly inputs, optimiser state
layout after a resume, and checkpoints whose random state comes from another device."""

from __future__ import annotations

from pathlib import Path

import torch

from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts
from train.engine.checkpoint import match_optimiser_layout, read_checkpoint
from train.engine.config import apply_overrides
from train.engine.runtime import build_runtime, configure_determinism
from train.engine.trainer import train
from train.methods import preset

TINY = {"pretrained": False, "height": 64, "width": 64, "batch_size": 4, "workers": 0}
TINY |= {"device": "cpu", "log_every": 1}


def test_determinism_switches() -> None:
    try:
        configure_determinism(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.benchmark
        configure_determinism(False)
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark
    finally:
        configure_determinism(False)


def test_compiled_runtime_marks_the_batch_dynamic() -> None:
    config = apply_overrides(preset("monodepth2-m"), TINY | {"compile": True})
    method, nets, _ = method_parts(config)
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    x = runtime.prepare(torch.rand(3, 3, 64, 64))
    assert 0 in getattr(x, "_dynamo_dynamic_indices", set())
    plain = build_runtime(apply_overrides(config, {"compile": False}), method, nets, x.device)
    assert not hasattr(plain.prepare(torch.rand(3, 3, 64, 64)), "_dynamo_dynamic_indices")


def test_optimiser_state_follows_channels_last_weights() -> None:
    conv = torch.nn.Conv2d(3, 4, 3)
    optimiser = torch.optim.Adam(conv.parameters())
    conv(torch.rand(1, 3, 8, 8)).sum().backward()
    optimiser.step()  # moments created contiguous
    conv.to(memory_format=torch.channels_last)
    moments = optimiser.state[conv.weight]
    assert moments["exp_avg"].stride() != conv.weight.stride()
    before = moments["exp_avg"].clone()
    from train.methods import OptimiserSpec

    match_optimiser_layout(
        [OptimiserSpec(optimiser, torch.optim.lr_scheduler.LambdaLR(optimiser, lambda e: 1.0))]
    )
    after = optimiser.state[conv.weight]["exp_avg"]
    assert after.stride() == conv.weight.stride() and torch.equal(after, before)


def test_resume_with_random_state_from_another_device(tmp_path: Path) -> None:
    """A checkpoint holding CUDA random states (and, as version-1 files did, a CUDA generator
    state) resumes on a CPU-only machine."""
    store = tmp_path / "train.zarr"
    write_toy_store(store, ToySpec(n_sequences=1, frames_per_sequence=6, image_size=(64, 64)))
    config = apply_overrides(preset("monodepth2-m"), TINY | {"epochs": 1})
    train(config, store, tmp_path / "run", progress=False)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    payload = read_checkpoint(last)
    cuda_state = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA generator's state
    payload["rng"]["ranks"][0]["cuda"] = [cuda_state, cuda_state]
    payload["rng"]["ranks"][0]["generators"] = {"noise": cuda_state}
    torch.save(payload, last)
    summary = train(
        apply_overrides(config, {"epochs": 2}), store, tmp_path / "run", resume=True, progress=False
    )
    assert summary.epochs_done == 2
