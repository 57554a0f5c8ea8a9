"""SegDepth's U-Net encoder from the reference's ImageNet file (lukemelas EfficientNet-PyTorch
layout, ``efficientnet-b3-5fb5a3c3.pth``): key remapping onto torchvision's EfficientNet-B3, the
reference's BatchNorm eps / momentum and static "same" padding, and ``--set unet_weights=FILE``.

The synthetic state dict is built from lukemelas' own description of B3 (B0's block arguments,
width 1.2 and depth 1.4 with its rounding rules, squeeze ratio 0.25, no ``num_batches_tracked``
as in the 2019 file), not from the mapping under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import method_parts
from train.engine.config import apply_overrides
from train.methods import preset
from train.models.segdepth_unet import EfficientNetEncoder, segdepth_unet
from train.models.segdepth_weights import (
    efficientnet_b3_from_lukemelas,
    is_lukemelas_layout,
    static_same_pads,
)

# lukemelas' B0 blocks: kernel, stride, expand ratio, input and output filters, repeats
B0_BLOCKS = ((3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2),
             (3, 2, 6, 40, 80, 3), (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4),
             (3, 1, 6, 192, 320, 1))  # fmt: skip
WIDTH, DEPTH = 1.2, 1.4


def round_filters(filters: int) -> int:
    """lukemelas' ``round_filters`` (depth_divisor 8)."""
    scaled = filters * WIDTH
    new = max(8, int(scaled + 4) // 8 * 8)
    return int(new + 8) if new < 0.9 * scaled else int(new)


def lukemelas_b3_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict with the keys and shapes of lukemelas' ``EfficientNet`` B3."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def conv(name: str, *shape: int, bias: bool = False) -> None:
        state[f"{name}.weight"] = torch.randn(*shape, generator=g) * 0.1
        if bias:
            state[f"{name}.bias"] = torch.randn(shape[0], generator=g) * 0.1

    def bn(name: str, n: int) -> None:
        state[f"{name}.weight"] = 1 + 0.1 * torch.randn(n, generator=g)
        state[f"{name}.bias"] = 0.1 * torch.randn(n, generator=g)
        state[f"{name}.running_mean"] = 0.1 * torch.randn(n, generator=g)
        state[f"{name}.running_var"] = 0.5 + torch.rand(n, generator=g)

    stem = round_filters(32)
    conv("_conv_stem", stem, 3, 3, 3)
    bn("_bn0", stem)
    i = 0
    for k, _s, e, inp, out, repeats in B0_BLOCKS:
        inp, out = round_filters(inp), round_filters(out)
        for r in range(math.ceil(DEPTH * repeats)):
            cin = inp if r == 0 else out
            mid = cin * e
            p = f"_blocks.{i}"
            if e != 1:
                conv(f"{p}._expand_conv", mid, cin, 1, 1)
                bn(f"{p}._bn0", mid)
            conv(f"{p}._depthwise_conv", mid, 1, k, k)
            bn(f"{p}._bn1", mid)
            squeezed = max(1, int(cin * 0.25))
            conv(f"{p}._se_reduce", squeezed, mid, 1, 1, bias=True)
            conv(f"{p}._se_expand", mid, squeezed, 1, 1, bias=True)
            conv(f"{p}._project_conv", out, mid, 1, 1)
            bn(f"{p}._bn2", out)
            i += 1
    head = round_filters(1280)
    conv("_conv_head", head, round_filters(320), 1, 1)
    bn("_bn1", head)
    conv("_fc", 1000, head, bias=True)
    return state


def test_keys_and_shapes_fit_torchvision_b3() -> None:
    state = lukemelas_b3_state()
    assert is_lukemelas_layout(state) and len([k for k in state if "_depthwise" in k]) == 26
    mapped = efficientnet_b3_from_lukemelas(state)
    from torchvision.models import efficientnet_b3

    reference = efficientnet_b3().state_dict()
    tracked = {k for k in reference if k.endswith("num_batches_tracked")}
    assert set(mapped) == set(reference) - tracked  # every tensor, nothing else
    assert all(mapped[k].shape == reference[k].shape for k in mapped)
    # block 7 = the third block of the third stage (2 + 3 blocks before it); block 0 expands not
    torch.testing.assert_close(
        mapped["features.3.2.block.1.0.weight"], state["_blocks.7._depthwise_conv.weight"]
    )
    torch.testing.assert_close(
        mapped["features.1.0.block.2.0.weight"], state["_blocks.0._project_conv.weight"]
    )
    prefixed = {f"module.{k}": v for k, v in state.items()}
    assert efficientnet_b3_from_lukemelas(prefixed).keys() == mapped.keys()
    with pytest.raises(ValueError, match="_blocks.26._bn0.weight: not a key"):
        efficientnet_b3_from_lukemelas({**state, "_blocks.26._bn0.weight": torch.zeros(1)})


def test_reference_arithmetic_of_the_encoder() -> None:
    state = lukemelas_b3_state()
    encoder = EfficientNetEncoder()
    assert static_same_pads(encoder.features) == {
        "0.0": (0, 1),  # stem 3x3 / 2 at 300 -> 150
        "2.0.block.1.0": (0, 1),  # stage 2, 3x3 / 2 at 150 -> 75
        "4.0.block.1.0": (0, 1),  # stage 4, 3x3 / 2 at 38 -> 19 (the 5x5 ones pad 2, 2)
    }
    encoder.load_imagenet(state)
    encoder.eval()
    bns = [m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.eps == 1e-3 and m.momentum == 0.01 for m in bns)
    x = torch.rand(1, 3, 64, 96)
    stem = F.conv2d(F.pad(x, (0, 1, 0, 1)), state["_conv_stem.weight"], stride=2)
    stem = F.batch_norm(stem, state["_bn0.running_mean"], state["_bn0.running_var"],
                        state["_bn0.weight"], state["_bn0.bias"], eps=1e-3)  # fmt: skip
    torch.testing.assert_close(encoder.features[0](x), F.silu(stem))
    assert [f.shape[-2:] for f in encoder(x)] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3)]
    plain = EfficientNetEncoder()  # torchvision layout: torchvision's arithmetic, untouched
    plain.load_imagenet(efficientnet_b3_from_lukemelas(state))
    assert plain.features[0][0].padding == (1, 1) and plain.features[0][1].eps == 1e-5


def test_unet_weights_file_in_the_reference_layout(tmp_path: Path) -> None:
    state = lukemelas_b3_state(seed=1)
    path = tmp_path / "efficientnet-b3-5fb5a3c3.pth"
    torch.save(state, path)
    unet = segdepth_unet(weights=path)
    got = unet.encoder.features[5][1].block[3][1].running_var
    torch.testing.assert_close(got, state["_blocks.14._bn2.running_var"])
    tiny = {"pretrained": False, "height": 64, "width": 96, "device": "cpu", "num_layers": 18}
    config = apply_overrides(preset("segdepth-m"), {**tiny, "unet_weights": str(path)})
    _, nets, _ = method_parts(config)
    torch.testing.assert_close(
        nets["unet"].encoder.features[0][0].weight, state["_conv_stem.weight"]
    )
    assert nets["unet"].encoder.features[0][1].eps == 1e-3
