"""The Lite-Mono encoder (modern_methods.md 1.1-1.3), registered as ``litemono_encoder``.

Three stages at H/4, H/8, H/16; in each stage every block but the last is a
:class:`~train.models.litemono_blocks.DilatedConvBlock` and the last an
:class:`~train.models.litemono_blocks.LGFIBlock` (positional encoding in stage 0 only). The
input image, average-pooled to each stage's resolution, is concatenated to every downsampling.

The dilations of the conv blocks depend on the input size, and the reference defines them for
192 x 640 and 320 x 1024 only (its constructor fails for any other size). Here any other size
uses the 192 x 640 pattern (:func:`dilations`, which says so through ``reference_size``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .litemono_blocks import Conv, DilatedConvBlock, LGFIBlock
from .registry import register_network

IMAGE_MEAN = 0.45
IMAGE_STD = 0.225
HEADS = 8
LAYER_SCALE_INIT = 1e-6


@dataclass(frozen=True)
class Variant:
    """Channels and blocks per stage of one Lite-Mono variant (``--model``)."""

    channels: tuple[int, int, int]
    depths: tuple[int, int, int]


VARIANTS: dict[str, Variant] = {
    "lite-mono": Variant((48, 80, 128), (4, 4, 10)),
    "lite-mono-small": Variant((48, 80, 128), (4, 4, 7)),
    "lite-mono-tiny": Variant((32, 64, 128), (4, 4, 7)),
    "lite-mono-8m": Variant((64, 128, 224), (4, 4, 10)),
}
REFERENCE_SIZES = ((192, 640), (320, 1024))

_DILATIONS = {  # (variant group, size) -> per-stage dilations of the conv blocks
    ("deep", (192, 640)): ([1, 2, 3], [1, 2, 3], [1, 2, 3, 1, 2, 3, 2, 4, 6]),
    ("deep", (320, 1024)): ([1, 2, 5], [1, 2, 5], [1, 2, 5, 1, 2, 5, 2, 4, 10]),
    ("short", (192, 640)): ([1, 2, 3], [1, 2, 3], [1, 2, 3, 2, 4, 6]),
    ("short", (320, 1024)): ([1, 2, 5], [1, 2, 5], [1, 2, 5, 2, 4, 10]),
}


def check_variant(variant: str) -> Variant:
    """The :class:`Variant` called ``variant``; ValueError listing the variants otherwise."""
    if variant not in VARIANTS:
        raise ValueError(
            f"unknown Lite-Mono variant {variant!r}; choose from {', '.join(VARIANTS)}"
        )
    return VARIANTS[variant]


def reference_size(variant: str, height: int, width: int) -> tuple[int, int]:
    """The input size whose dilation pattern the encoder uses at ``height x width``: that size
    for 192x640 and 320x1024 (lite-mono-8m: always 192x640's), 192x640 for any other."""
    check_variant(variant)
    size = (height, width)
    if variant == "lite-mono-8m" or size not in REFERENCE_SIZES:
        return (192, 640)
    return size


def dilations(variant: str, height: int, width: int) -> tuple[list[int], list[int], list[int]]:
    """Dilation of every conv block, per stage (LM depth_encoder.py:309-339)."""
    spec = check_variant(variant)
    group = "deep" if spec.depths[2] == 10 else "short"
    return _DILATIONS[(group, reference_size(variant, height, width))]


def drop_path_rates(depths: tuple[int, ...], rate: float) -> list[float]:
    """Per-block drop-path probability, growing linearly from 0 to ``rate`` over all blocks
    (float32 values of ``torch.linspace``, as the reference computes them)."""
    return [float(r) for r in torch.linspace(0, rate, sum(depths))]


class LiteMonoEncoder(nn.Module):
    """``(B, 3, H, W)`` RGB in [0, 1] -> ``[f0, f1, f2]`` at H/4, H/8, H/16 with ``num_ch_enc``
    channels (H, W multiples of 16).

    Args:
        variant: ``lite-mono``, ``lite-mono-small``, ``lite-mono-tiny`` or ``lite-mono-8m``.
        height, width: the training input size (selects the dilations, module docstring).
        drop_path_rate: largest drop-path probability (the last block's); 0 = none.
    """

    def __init__(
        self,
        variant: str = "lite-mono",
        height: int = 192,
        width: int = 640,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        spec = check_variant(variant)
        self.variant = variant
        self.num_ch_enc = spec.channels
        c0 = spec.channels[0]
        stem = nn.Sequential(
            Conv(3, c0, 3, stride=2, padding=1, bn_act=True),
            Conv(c0, c0, 3, stride=1, padding=1, bn_act=True),
            Conv(c0, c0, 3, stride=1, padding=1, bn_act=True),
        )
        self.downsample_layers = nn.ModuleList([stem])
        self.stem2 = nn.Sequential(Conv(c0 + 3, c0, 3, stride=2, padding=1))
        for i in (1, 2):
            c_in = 2 * spec.channels[i - 1] + 3
            conv = Conv(c_in, spec.channels[i], 3, stride=2, padding=1)
            self.downsample_layers.append(nn.Sequential(conv))
        rates = iter(drop_path_rates(spec.depths, drop_path_rate))
        stages = []
        for i, (dim, pattern) in enumerate(
            zip(spec.channels, dilations(variant, height, width), strict=True)
        ):
            blocks: list[nn.Module] = [
                DilatedConvBlock(dim, d, next(rates), LAYER_SCALE_INIT) for d in pattern
            ]
            blocks.append(LGFIBlock(dim, next(rates), LAYER_SCALE_INIT, use_pos_emb=i == 0))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.apply(_init_weights)

    def forward(self, image: Tensor) -> list[Tensor]:
        x = (image - IMAGE_MEAN) / IMAGE_STD
        pooled = [F.avg_pool2d(x, 3, stride=2, padding=1)]
        for _ in range(2):
            pooled.append(F.avg_pool2d(pooled[-1], 3, stride=2, padding=1))
        x = self.stem2(torch.cat([self.downsample_layers[0](x), pooled[0]], dim=1))
        features = []
        inputs = [x]
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.downsample_layers[i](torch.cat([*inputs, pooled[i]], dim=1))
                inputs = [x]
            x = stage(x)
            inputs.append(x)
            features.append(x)
        return features


def _init_weights(module: nn.Module) -> None:
    """From-scratch initialisation (LM depth_encoder.py:391-403): Kaiming-normal (fan_out,
    relu) conv and linear weights; LayerNorm 1 / 0. BatchNorm, biases, layer scales (1e-6)
    and temperatures (1) keep their construction values."""
    if isinstance(module, nn.Conv2d | nn.Linear):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


@register_network("litemono_encoder", summary="Lite-Mono encoder (CDC + LGFI blocks)")
def litemono_encoder(
    variant: str = "lite-mono",
    height: int = 192,
    width: int = 640,
    drop_path_rate: float = 0.0,
    weights: str | Path | None = None,
) -> LiteMonoEncoder:
    """The Lite-Mono encoder, from scratch or from ``weights``: an ImageNet-pretrained
    Lite-Mono file (``--mypretrain``'s, :func:`train.models.litemono_weights.load_pretrained`)."""
    encoder = LiteMonoEncoder(variant, height, width, drop_path_rate)
    if weights is not None:
        from .litemono_weights import load_pretrained

        load_pretrained(encoder, Path(weights))
    return encoder
