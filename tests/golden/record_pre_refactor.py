"""Re-record ``monodepth2.json`` with the pre-refactor code (needed when torch changes the bits).

The golden values are what the code before the methods refactor computes, so they are recorded
by that code, not by the code under test::

    git worktree add /tmp/pre_refactor 6694bf6
    cp tests/golden/record_pre_refactor.py /tmp/pre_refactor/
    cd /tmp/pre_refactor && python record_pre_refactor.py > CHECKOUT/tests/golden/monodepth2.json

(copied into the worktree's root, so the worktree's packages shadow the installed ones; this
project's venv). One CPU thread and deterministic algorithms, as the test runs them.
"""

from __future__ import annotations

import json

import torch
from train.build import build_models, build_runtime
from train.config import apply_overrides, preset
from train.step import forward_loss

from tests.golden_monodepth2 import GOLDEN_SIZE, fixed_batch

OVERRIDES = {"pretrained": False, "device": "cpu", "amp": False, "channels_last": False}


def record(name: str) -> dict:
    """Total, per-scale losses and per-network gradient norms (hex floats) of preset ``name``."""
    config = apply_overrides(preset(name), OVERRIDES | GOLDEN_SIZE)
    models = build_models(config, "cpu")
    runtime = build_runtime(config, models, torch.device("cpu"))
    models.train(True)
    aug = runtime.augment(fixed_batch(), generator=torch.Generator().manual_seed(7), train=True)
    out, _ = forward_loss(runtime, aug, config, torch.Generator().manual_seed(8))
    out.total.backward()
    grads = {}
    for net, module in models.named().items():
        norms = [p.grad.norm() for p in module.parameters() if p.grad is not None]
        grads[net] = torch.linalg.vector_norm(torch.stack(norms)).item().hex()
    return {
        "total": out.total.item().hex(),
        "per_scale": [float(v).hex() for v in out.per_scale],
        "grad_norm": grads,
    }


if __name__ == "__main__":
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    names = ("monodepth2-m", "monodepth2-s", "monodepth2-ms")
    print(json.dumps({name: record(name) for name in names}, indent=1))
