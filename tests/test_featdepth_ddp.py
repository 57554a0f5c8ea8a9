"""DDP with a frozen network: 2 gloo processes on the CPU (``torch.multiprocessing.spawn``).

FeatDepth's users hit "Expected to have finished reduction in the prior iteration" under DDP
because its frozen extractor sat inside the DDP-wrapped model. Here the engine never wraps
frozen networks: two ranks train Monodepth2 + the feature-metric term on different batches, keep
identical trainable weights after every step (which needed the engine to show DDP the tensors of
the networks' dataclass outputs), leave the extractor untouched, and the trainer runs a whole
DDP run.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pipelines.loader import make_loader
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts
from train.engine.checkpoint import TrainState, read_checkpoint, save_checkpoint
from train.engine.config import TrainConfig, apply_overrides
from train.engine.runtime import DistributedNet, build_runtime
from train.engine.step import train_step
from train.engine.trainer import train
from train.methods import preset

WORLD = 2
SMALL = {"pretrained": False, "height": 64, "width": 64, "batch_size": 2, "workers": 0}
SMALL |= {"device": "cpu", "log_every": 1, "jitter_prob": 0.0, "flip_prob": 0.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _flat(modules: dict[str, torch.nn.Module]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for m in modules.values() for p in m.parameters()])


def _worker(rank: int, port: int, store: str, config: TrainConfig, run: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
        WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank),
    )  # fmt: skip
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        method, nets, optimisers = method_parts(config)
        method.initialise(nets)
        extractor = _flat({"x": nets["extractor"]})
        runtime = build_runtime(config, method, nets, torch.device("cpu"), distributed=True)
        wrapped = {k for k, m in runtime.nets.items() if isinstance(m, DistributedNet)}
        assert wrapped == {"depth", "pose"}, wrapped  # the frozen extractor is never wrapped
        request = method.loader_request()
        loader = make_loader(store, 2, workers=0, shuffle=False, frames=request.frames,
                             rank=rank, world_size=WORLD, even="drop")  # fmt: skip
        batches = [b for b in loader if bool(b.has_prev.all() and b.has_next.all())][:2]
        nets.train(True)
        for batch in batches:  # each rank its own samples
            assert train_step(runtime, method, optimisers, batch, torch.Generator())
            weights = _flat(nets.trainable())
            gathered = [torch.empty_like(weights) for _ in range(WORLD)]
            dist.all_gather(gathered, weights)
            assert torch.equal(gathered[0], gathered[1])  # gradients were all-reduced
        assert torch.equal(_flat({"x": nets["extractor"]}), extractor)
        train(config, store, run, progress=False, echo=lambda _: None)  # the whole trainer
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_train_with_a_frozen_extractor(tmp_path: Path) -> None:
    store = tmp_path / "train.zarr"
    write_toy_store(store, ToySpec(n_sequences=2, frames_per_sequence=6, image_size=(64, 64)))
    ae = apply_overrides(preset("featdepth-ae"), SMALL | {"feature_layers": 18})
    _, ae_nets, ae_opts = method_parts(ae)
    ae_path = save_checkpoint(tmp_path / "ae.pt", ae, ae_nets, ae_opts, TrainState(), {})
    config = apply_overrides(
        preset("monodepth2-fm-m"),
        SMALL | {"feature_layers": 18, "extractor": str(ae_path), "max_steps": 2},
    )
    run = tmp_path / "run"
    mp.spawn(_worker, args=(_free_port(), str(store), config, str(run)), nprocs=WORLD)
    payload = read_checkpoint(run / "checkpoints" / "last.pt")
    assert payload["step"] == 2
    encoder = {k.removeprefix("encoder."): v for k, v in ae_nets["featurenet"].state_dict().items()
               if k.startswith("encoder.")}  # fmt: skip
    saved = payload["models"]["extractor"]
    assert all(torch.equal(saved[f"encoder.{k}"], v) for k, v in encoder.items())
