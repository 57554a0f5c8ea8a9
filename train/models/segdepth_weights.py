"""SegDepth's ImageNet EfficientNet-B3 (lukemelas/EfficientNet-PyTorch layout) on torchvision's.

SegDepth's U-Net encoder starts from ``efficientnet-b3-5fb5a3c3.pth``, the ImageNet weights of
lukemelas' ``EfficientNet`` (through segmentation_models_pytorch). Its keys name the stem, the 26
MBConv blocks in one flat list and the head; torchvision's ``efficientnet_b3().features`` nests
the same blocks by stage (2, 3, 3, 5, 5, 6, 2 blocks). Block i of the flat list is block j of
stage s in that order, and inside a block:

======================================  ==========================================
lukemelas                               torchvision (``features.{s}.{j}.block.*``)
======================================  ==========================================
``_conv_stem.weight``, ``_bn0.*``       ``features.0.0.weight``, ``features.0.1.*``
``_blocks.i._expand_conv.weight``       ``0.0.weight`` (only blocks that expand)
``_blocks.i._bn0.*``                    ``0.1.*``
``_blocks.i._depthwise_conv.weight``    ``{e}.0.weight`` (e = 1 if expanding, else 0)
``_blocks.i._bn1.*``                    ``{e}.1.*``
``_blocks.i._se_reduce.*`` / ``_se_expand.*``  ``{e+1}.fc1.*`` / ``{e+1}.fc2.*``
``_blocks.i._project_conv.weight``      ``{e+2}.0.weight``
``_blocks.i._bn2.*``                    ``{e+2}.1.*``
``_conv_head.weight``, ``_bn1.*``       ``features.8.0.weight``, ``features.8.1.*``
``_fc.*``                               ``classifier.1.*``
======================================  ==========================================

Two numeric settings of that network differ from torchvision's and go with its weights
(:func:`apply_reference_arithmetic`): BatchNorm eps 1e-3 and momentum 0.01 (TensorFlow's 0.99),
and TensorFlow's "same" padding computed once for the 300 x 300 input of B3
(``Conv2dStaticSamePadding``): the stride-2 3x3 convolutions of the stem and of stages 2 and 4
pad 0 before and 1 after (torchvision: 1 and 1); every other convolution pads as torchvision's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch.nn.functional as F
from torch import Tensor, nn

B3_STAGE_BLOCKS = (2, 3, 3, 5, 5, 6, 2)
B3_IMAGE_SIZE = 300  # efficientnet_params("efficientnet-b3"): the size its padding is fixed for
BN_EPS, BN_MOMENTUM = 1e-3, 0.01
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(.+)")
_TOP = {"_conv_stem": "features.0.0", "_bn0": "features.0.1", "_conv_head": "features.8.0",
        "_bn1": "features.8.1", "_fc": "classifier.1"}  # fmt: skip


def is_lukemelas_layout(state: Mapping[str, Tensor]) -> bool:
    """True for a lukemelas ``EfficientNet`` state dict (``_conv_stem.weight``, ``_blocks.*``)."""
    keys = [k.removeprefix("module.") for k in state]
    return "_conv_stem.weight" in keys and any(k.startswith("_blocks.") for k in keys)


def _block_places() -> list[tuple[int, int]]:
    """(stage, block) of torchvision's ``features`` for each flat block index."""
    return [(s + 1, j) for s, n in enumerate(B3_STAGE_BLOCKS) for j in range(n)]


def efficientnet_b3_from_lukemelas(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """torchvision ``efficientnet_b3`` keys for a lukemelas state dict (module docstring).

    Raises:
        ValueError: a key of unknown layout, or more blocks than B3 has (named).
    """
    places = _block_places()
    expanding = {
        int(m.group(1))
        for k in state
        if (m := _BLOCK_KEY.fullmatch(k.removeprefix("module."))) and m.group(2) == "_expand_conv"
    }
    out: dict[str, Tensor] = {}
    for raw, value in state.items():
        key = raw.removeprefix("module.")
        top, _, rest = key.partition(".")
        if top in _TOP:
            out[f"{_TOP[top]}.{rest}"] = value
            continue
        m = _BLOCK_KEY.fullmatch(key)
        if m is None or int(m.group(1)) >= len(places):
            raise ValueError(f"{raw}: not a key of lukemelas' EfficientNet-B3")
        i, part, rest = int(m.group(1)), m.group(2), m.group(3)
        e = 1 if i in expanding else 0
        where = {
            "_expand_conv": "0.0", "_bn0": "0.1", "_depthwise_conv": f"{e}.0", "_bn1": f"{e}.1",
            "_se_reduce": f"{e + 1}.fc1", "_se_expand": f"{e + 1}.fc2",
            "_project_conv": f"{e + 2}.0", "_bn2": f"{e + 2}.1",
        }.get(part)  # fmt: skip
        if where is None:
            raise ValueError(f"{raw}: not a key of lukemelas' EfficientNet-B3")
        s, j = places[i]
        out[f"features.{s}.{j}.block.{where}.{rest}"] = value
    return out


def static_same_pads(features: nn.Sequential, size: int = B3_IMAGE_SIZE) -> dict[str, tuple]:
    """TensorFlow "same" padding (left, right) of every convolution of ``features`` whose
    padding differs from torchvision's, for a ``size`` x ``size`` input (module docstring):
    name -> (left, right)."""
    out = {}
    for name, conv in features.named_modules():
        if not isinstance(conv, nn.Conv2d):
            continue
        k, s = conv.kernel_size[0], conv.stride[0]
        if s == 1:  # "same" with stride 1 is symmetric, as torchvision's
            continue
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        left = total // 2
        if (left, total - left) != (conv.padding[0], conv.padding[0]):
            out[name] = (left, total - left)
        size = math.ceil(size / s)
    return out


def apply_reference_arithmetic(features: nn.Sequential) -> None:
    """Give torchvision's EfficientNet-B3 ``features`` lukemelas' BatchNorm eps / momentum and
    static "same" padding (module docstring), in place; the state-dict keys stay the same."""
    for m in features.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = BN_EPS, BN_MOMENTUM
    convs = dict(features.named_modules())
    for name, (left, right) in static_same_pads(features).items():
        conv = convs[name]
        conv.padding = (0, 0)
        conv.register_forward_pre_hook(_Pad((left, right, left, right)))


class _Pad:
    """Forward pre-hook: zero-pad the input (left, right, top, bottom) before the convolution."""

    def __init__(self, pad: tuple[int, int, int, int]) -> None:
        self.pad = pad

    def __call__(self, _module: nn.Module, args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return (F.pad(args[0], self.pad), *args[1:])
