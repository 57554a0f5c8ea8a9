"""The Lite-Mono depth decoder (modern_methods.md 1.4): three scales, bilinear upsampling.

Modules live in one ``ModuleList`` ``decoder`` in the reference's order (index 0-5: the
ConvBlocks ``upconv (2,0), (2,1), (1,0), (1,1), (0,0), (0,1)``; 6, 7, 8: the disparity convs of
scales 0, 1, 2), so the reference's ``depth.pth`` keys load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .depth_decoder import Conv3x3, ConvBlock, DepthOutput

MAX_SCALES = 3


def upsample2(x: Tensor) -> Tensor:
    """Bilinear x2 upsampling, ``align_corners=False`` (Lite-Mono's; Monodepth2 uses nearest)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class LiteMonoDecoder(nn.Module):
    """Encoder maps ``[f0, f1, f2]`` (H/4, H/8, H/16) -> sigmoid disparities at H, H/2, H/4.

    ``num_ch_dec = num_ch_enc // 2``. For i = 2, 1, 0: ConvBlock, bilinear x2, concatenate
    ``f_{i-1}`` (i > 0), ConvBlock; the scale-i disparity is ``sigmoid(up2(Conv3x3(x)))`` (the
    one-channel logits are upsampled before the sigmoid). Conv weights truncated-normal
    (std 0.02), biases 0 (LM depth_decoder.py:42-46).

    Args:
        num_ch_enc: channels of f0, f1, f2.
        num_scales: disparity outputs, scales 0 .. num_scales - 1 (1..3; the reference: 3).
    """

    def __init__(self, num_ch_enc: Sequence[int], num_scales: int = MAX_SCALES) -> None:
        super().__init__()
        if not 1 <= num_scales <= MAX_SCALES:
            raise ValueError(f"num_scales must be in 1..{MAX_SCALES}, got {num_scales}")
        self.num_ch_enc = tuple(num_ch_enc)
        self.num_ch_dec = tuple(c // 2 for c in self.num_ch_enc)
        self.num_scales = num_scales
        enc, dec = self.num_ch_enc, self.num_ch_dec
        modules: list[nn.Module] = []
        for i in (2, 1, 0):
            modules.append(ConvBlock(enc[2] if i == 2 else dec[i + 1], dec[i]))
            modules.append(ConvBlock(dec[i] + (enc[i - 1] if i > 0 else 0), dec[i]))
        modules += [Conv3x3(dec[s], 1) for s in range(num_scales)]
        self.decoder = nn.ModuleList(modules)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, features: Sequence[Tensor]) -> DepthOutput:
        disps: dict[int, Tensor] = {}
        x = features[-1]
        for n, i in enumerate((2, 1, 0)):
            x = upsample2(self.decoder[2 * n](x))
            if i > 0:
                x = torch.cat([x, features[i - 1]], dim=1)
            x = self.decoder[2 * n + 1](x)
            if i < self.num_scales:
                disps[i] = torch.sigmoid(upsample2(self.decoder[6 + i](x)))
        return DepthOutput(disps=[disps[s] for s in range(self.num_scales)])
