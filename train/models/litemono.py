"""The whole Lite-Mono depth network (encoder + 3-scale decoder), registered as
``litemono_depth``. Its pose network is Monodepth2's separate ResNet-18 (``monodepth2_pose``)."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from .depth_decoder import DepthOutput
from .litemono_decoder import MAX_SCALES, LiteMonoDecoder
from .litemono_encoder import LiteMonoEncoder, litemono_encoder
from .registry import register_network


class LiteMonoDepthNet(nn.Module):
    """``(B, 3, H, W)`` RGB in [0, 1] -> :class:`DepthOutput` (sigmoid disparities at H, H/2,
    H/4). H and W must be multiples of 32 and at least 64 (the decoder reflection-pads the H/16
    map). Attributes ``encoder`` (reference keys of ``encoder.pth``) and ``decoder`` (of
    ``depth.pth``)."""

    def __init__(self, encoder: LiteMonoEncoder, decoder: LiteMonoDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    @property
    def variant(self) -> str:
        return self.encoder.variant

    def forward(self, image: Tensor) -> DepthOutput:
        h, w = image.shape[-2:]
        if h % 32 or w % 32 or min(h, w) < 64:
            raise ValueError(
                f"input height and width must be multiples of 32 and at least 64, got {h}x{w}"
            )
        return self.decoder(self.encoder(image))


@register_network("litemono_depth", summary="Lite-Mono encoder + 3-scale bilinear decoder")
def litemono_depth(
    variant: str = "lite-mono",
    height: int = 192,
    width: int = 640,
    drop_path_rate: float = 0.0,
    encoder_weights: str | Path | None = None,
    num_scales: int = MAX_SCALES,
) -> LiteMonoDepthNet:
    """Lite-Mono depth network.

    Args:
        variant: ``lite-mono``, ``lite-mono-small``, ``lite-mono-tiny``, ``lite-mono-8m``.
        height, width: training input size (selects the encoder's dilations).
        drop_path_rate: the encoder's largest drop-path probability (training: 0.2).
        encoder_weights: an ImageNet-pretrained Lite-Mono file (``--mypretrain``), or None.
        num_scales: disparity outputs (1..3).
    """
    encoder = litemono_encoder(variant, height, width, drop_path_rate, encoder_weights)
    return LiteMonoDepthNet(encoder, LiteMonoDecoder(encoder.num_ch_enc, num_scales))
