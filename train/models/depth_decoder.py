"""Monodepth2 depth decoder (training.md 1.3): U-Net upsampling with sigmoid disparity heads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NUM_CH_DEC = (16, 32, 64, 128, 256)


@dataclass
class DepthOutput:
    """Sigmoid disparities of a depth network.

    ``disps[s]`` is scale ``s``: shape ``(B, 1, H / 2**s, W / 2**s)``, values in (0, 1) (turn them
    into depth with :func:`train.geometry.disp_to_depth`). ``disps[0]`` is full input resolution.
    """

    disps: list[Tensor]


class Conv3x3(nn.Module):
    """Reflection pad 1 then a 3x3 convolution with bias (shape-preserving)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pad(x))


class ConvBlock(nn.Module):
    """:class:`Conv3x3` followed by ELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv3x3(in_channels, out_channels)
        self.nonlin = nn.ELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlin(self.conv(x))


class DepthDecoder(nn.Module):
    """Decoder from five encoder maps to ``num_scales`` sigmoid disparity maps.

    For level i = 4..0: ``ConvBlock`` (``upconv_in[i]``), nearest x2 upsampling, concatenation
    of encoder map ``f_{i-1}`` (for i > 0), ``ConvBlock`` (``upconv_out[i]``), and at levels
    i < ``num_scales`` a head ``sigmoid(Conv3x3(num_ch_dec[i] -> 1))`` (``disp_heads[i]``).
    Level i's output has resolution H / 2**i. Default PyTorch initialisation.

    Args:
        num_ch_enc: channels of the encoder maps f0..f4.
        num_scales: number of disparity outputs, scales 0 .. num_scales - 1 (1..5; default 4).
    """

    def __init__(self, num_ch_enc: Sequence[int], num_scales: int = 4) -> None:
        super().__init__()
        if not 1 <= num_scales <= 5:
            raise ValueError(f"num_scales must be in 1..5, got {num_scales}")
        self.num_ch_enc = tuple(num_ch_enc)
        self.num_ch_dec = NUM_CH_DEC
        self.num_scales = num_scales
        upconv_in, upconv_out = [], []
        for i in range(5):
            c_in = self.num_ch_enc[4] if i == 4 else NUM_CH_DEC[i + 1]
            upconv_in.append(ConvBlock(c_in, NUM_CH_DEC[i]))
            c_skip = self.num_ch_enc[i - 1] if i > 0 else 0
            upconv_out.append(ConvBlock(NUM_CH_DEC[i] + c_skip, NUM_CH_DEC[i]))
        # Indexed by level i (0 = finest), although they run from i = 4 down to 0.
        self.upconv_in = nn.ModuleList(upconv_in)
        self.upconv_out = nn.ModuleList(upconv_out)
        self.disp_heads = nn.ModuleList(Conv3x3(NUM_CH_DEC[s], 1) for s in range(num_scales))

    def forward(self, features: Sequence[Tensor]) -> DepthOutput:
        """``features``: encoder maps f0..f4; returns disparities at scales 0..num_scales-1."""
        disps: dict[int, Tensor] = {}
        x = features[4]
        for i in range(4, -1, -1):
            x = F.interpolate(self.upconv_in[i](x), scale_factor=2.0, mode="nearest")
            if i > 0:
                x = torch.cat([x, features[i - 1]], dim=1)
            x = self.upconv_out[i](x)
            if i < self.num_scales:
                disps[i] = torch.sigmoid(self.disp_heads[i](x))
        return DepthOutput(disps=[disps[s] for s in range(self.num_scales)])
