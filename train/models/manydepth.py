"""ManyDepth's multi-frame depth network: the matching encoder and Monodepth2's depth decoder
(modern_methods.md 2.1), registered as ``manydepth_depth``."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from .depth_decoder import DepthDecoder
from .manydepth_encoder import NUM_DEPTH_BINS, ResnetEncoderMatching, matching_encoder
from .registry import register_network
from .weights import WeightsArg


@dataclass
class ManyDepthOutput:
    """Sigmoid disparities ``disps[s]`` ``(B, 1, H / 2**s, W / 2**s)`` and the matching's
    ``lowest_cost`` and ``confidence`` ``(B, H/4, W/4)`` (see
    :class:`~train.models.manydepth_encoder.MatchingOutput`)."""

    disps: list[Tensor]
    lowest_cost: Tensor
    confidence: Tensor


class ManyDepthNet(nn.Module):
    """Matching encoder + depth decoder; ``forward`` takes the encoder's arguments (see
    :class:`ResnetEncoderMatching`) and returns a :class:`ManyDepthOutput`. Attributes
    ``encoder`` and ``decoder`` (the reference's ``encoder.pth`` / ``depth.pth``)."""

    def __init__(self, encoder: ResnetEncoderMatching, decoder: DepthDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(
        self,
        current: Tensor,
        lookups: Tensor | None = None,
        poses: Tensor | None = None,
        K: Tensor | None = None,
        inv_K: Tensor | None = None,
        min_depth_bin: Tensor | float | None = None,
        max_depth_bin: Tensor | float | None = None,
    ) -> ManyDepthOutput:
        h, w = current.shape[-2:]
        if h % 32 or w % 32 or min(h, w) < 64:
            raise ValueError(f"input height and width must be multiples of 32 and >= 64: {h}x{w}")
        out = self.encoder(current, lookups, poses, K, inv_K, min_depth_bin, max_depth_bin)
        disps = self.decoder(out.features).disps
        return ManyDepthOutput(disps, out.lowest_cost, out.confidence)


@register_network(
    "manydepth_depth", summary="ManyDepth: matching ResNet encoder + Monodepth2 depth decoder"
)
def manydepth_net(
    num_layers: int = 18,
    encoder_weights: WeightsArg = None,
    num_scales: int = 4,
    num_depth_bins: int = NUM_DEPTH_BINS,
    depth_binning: str = "linear",
) -> ManyDepthNet:
    """ManyDepth's multi-frame depth network: ImageNet weights (``encoder_weights``) for the
    encoder's ResNet layers only; decoder and ``reduce_conv`` PyTorch-default initialised."""
    encoder = matching_encoder(num_layers, encoder_weights, num_depth_bins, depth_binning)
    return ManyDepthNet(encoder, DepthDecoder(encoder.num_ch_enc, num_scales))
