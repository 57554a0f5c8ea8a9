"""The training step never makes the CPU wait for the device, and poses stay float32 under AMP.

On the CPU a :class:`TorchDispatchMode` counts the operations that synchronise with a CUDA
device (reading a value back, data-dependent shapes, error checks of ``linalg.inv``, tensors made
from Python data) inside :func:`train.engine.step.device_step`; on CUDA,
``torch.cuda.set_sync_debug_mode("error")`` turns any synchronisation into an error.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tests.golden_monodepth2 import fixed_batch
from tests.helpers import method_parts
from train.engine.config import apply_overrides
from train.engine.runtime import build_runtime
from train.engine.step import device_step
from train.methods import preset
from train.models import PoseOutput

aten = torch.ops.aten
SYNCING = {
    aten._local_scalar_dense.default,  # .item(), bool(tensor), int(tensor)
    aten.is_nonzero.default,
    aten.nonzero.default,
    aten.masked_select.default,
    aten.linalg_inv_ex.default,
    aten._linalg_check_errors.default,
    aten.lift_fresh.default,  # torch.tensor(python data): a blocking host-to-device copy
    aten.equal.default,
    aten.unique_consecutive.default,
    aten._unique2.default,
    aten.repeat_interleave.Tensor,
}
TINY = {"pretrained": False, "height": 64, "width": 96, "device": "cpu", "batch_size": 2}


class SyncCounter(TorchDispatchMode):
    """Counts syncing operations (boolean-mask indexing included) by name."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func in SYNCING or _bool_index(func, args):
            self.counts[str(func)] += 1
        return func(*args, **kwargs)


def _bool_index(func, args) -> bool:  # noqa: ANN001
    if func not in (aten.index.Tensor, aten.index_put.default, aten.index_put_.default):
        return False
    indices = args[1] if len(args) > 1 else []
    return any(i is not None and i.dtype == torch.bool for i in indices)


@pytest.mark.parametrize("name", ["monodepth2-m", "monodepth2-ms"])
def test_device_step_issues_at_most_two_syncing_ops(name: str) -> None:
    config = apply_overrides(preset(name), TINY | {"jitter_prob": 1.0, "flip_prob": 0.5})
    method, nets, optimisers = method_parts(config)
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    batch = fixed_batch()
    draw = runtime.augment.draw(batch, torch.Generator().manual_seed(0), train=True)
    device_step(runtime, method, optimisers, batch, draw, torch.Generator())  # creates Adam's state
    counter = SyncCounter()
    with counter:
        result = device_step(runtime, method, optimisers, batch, draw, torch.Generator())
    assert result.samples == 2
    assert sum(counter.counts.values()) <= 2, dict(counter.counts)


def test_the_counter_sees_syncing_code() -> None:
    counter = SyncCounter()
    x = torch.rand(8)
    with counter:
        x[x > 0.5].sum().item()
        torch.linalg.inv(torch.eye(3))
    assert sum(counter.counts.values()) >= 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (no GPU here)")
def test_cuda_step_has_no_synchronisation() -> None:
    config = apply_overrides(preset("monodepth2-m"), TINY | {"device": "cuda"})
    method, nets, optimisers = method_parts(config)
    device = torch.device("cuda")
    for module in nets.named().values():
        module.to(device)
    optimisers = method.optimisers(nets)
    runtime = build_runtime(config, method, nets, device)
    batch = fixed_batch()
    draw = runtime.augment.draw(batch, torch.Generator().manual_seed(0)).to(device)
    gpu_batch = batch.to(device)
    device_step(runtime, method, optimisers, gpu_batch, draw, torch.Generator(device))  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        device_step(runtime, method, optimisers, gpu_batch, draw, torch.Generator(device))
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_poses_are_float32_under_bf16_autocast() -> None:
    config = apply_overrides(preset("monodepth2-m"), TINY)
    method, nets, _ = method_parts(config)
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    runtime.amp = True  # bf16 autocast on the CPU emulates the CUDA run
    aug = runtime.augment(fixed_batch(), torch.Generator().manual_seed(0))
    raw = []
    hook = nets["pose"].register_forward_hook(lambda m, i, out: raw.append(out))
    poses = method.poses(runtime, aug, aug.color_aug["target"][0])
    hook.remove()
    assert all(p.dtype == torch.float32 for p in poses)
    for out, pose, frame in zip(raw, poses, (-1, 1), strict=True):
        fp32 = PoseOutput(out.axisangle.float(), out.translation.float())
        torch.testing.assert_close(pose, fp32.matrix(invert=frame < 0), rtol=0, atol=0)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # what the bug computed
            wrong = fp32.matrix(invert=frame < 0)
        assert not torch.equal(wrong.float(), pose)
