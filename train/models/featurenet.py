"""FeatDepth stage-1 auto-encoder "FeatureNet" (training.md 5.1).

A ResNet encoder on raw [0, 1] RGB (no normalisation) and a decoder without skip connections that
reconstructs the image at 4 scales. In stage 2 the trained ``encoder`` alone is the frozen feature
extractor of the feature-metric loss (its level-0 map, 64 channels at H/2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .depth_decoder import NUM_CH_DEC, Conv3x3, ConvBlock
from .registry import register_network
from .resnet_encoder import ResnetEncoder
from .weights import Weights, resnet_weights_enum, weights_state_dict

LAYERS = (18, 34, 50)
NUM_SCALES = 4

"""``None`` (random init), a torchvision enum member (or its name), a file, or a state dict."""


@dataclass
class FeatureNetOutput:
    """What :class:`FeatureNet` returns.

    Attributes:
        features: encoder maps f0..f4, ``(B, C_i, H / 2**(i + 1), W / 2**(i + 1))``, channels
            ``encoder.num_ch_enc`` (ResNet-50: 64, 256, 512, 1024, 2048).
        reconstructions: sigmoid images, scale s = 0..3 ``(B, 3, H / 2**s, W / 2**s)`` in (0, 1);
            ``reconstructions[0]`` is full resolution.
    """

    features: list[Tensor]
    reconstructions: list[Tensor]


class RawResnetEncoder(ResnetEncoder):
    """:class:`ResnetEncoder` without input normalisation (FeatureNet feeds raw [0, 1] RGB).

    ``(B, 3, H, W)`` -> ``[f0, ..., f4]`` at H/2 .. H/32. Same ``encoder.*`` keys, ``num_ch_enc``
    and :meth:`load_imagenet` as the Monodepth2 encoder.
    """

    def __init__(self, num_layers: int = 50) -> None:
        super().__init__(num_layers, normalise=False)


class ReconstructionDecoder(nn.Module):
    """Skip-less decoder: f4 ``(B, C4, H/32, W/32)`` -> 4 reconstructions, finest first.

    For level i = 4..0: ``ConvBlock(c_in -> NUM_CH_DEC[i])`` (``upconv_in[i]``), nearest x2,
    ``ConvBlock(NUM_CH_DEC[i] -> NUM_CH_DEC[i])`` (``upconv_out[i]``); level i is at H / 2**i.
    Levels s = 0..3 get a head ``sigmoid(Conv3x3(NUM_CH_DEC[s] -> 3))`` (``heads[s]``; channels
    16, 32, 64, 128). ConvBlock = reflect-pad 3x3 conv + ELU. Default PyTorch initialisation.
    """

    def __init__(self, top_channels: int) -> None:
        super().__init__()
        c_in = [*NUM_CH_DEC[1:], top_channels]
        self.upconv_in = nn.ModuleList(ConvBlock(c_in[i], NUM_CH_DEC[i]) for i in range(5))
        self.upconv_out = nn.ModuleList(ConvBlock(NUM_CH_DEC[i], NUM_CH_DEC[i]) for i in range(5))
        self.heads = nn.ModuleList(Conv3x3(NUM_CH_DEC[s], 3) for s in range(NUM_SCALES))

    def forward(self, top: Tensor) -> list[Tensor]:
        images: dict[int, Tensor] = {}
        x = top
        for i in range(4, -1, -1):
            x = F.interpolate(self.upconv_in[i](x), scale_factor=2.0, mode="nearest")
            x = self.upconv_out[i](x)
            if i < NUM_SCALES:
                images[i] = torch.sigmoid(self.heads[i](x))
        return [images[s] for s in range(NUM_SCALES)]


class FeatureNet(nn.Module):
    """FeatDepth auto-encoder: ``(B, 3, H, W)`` RGB in [0, 1] -> :class:`FeatureNetOutput`.

    H and W must be multiples of 32 and at least 64. Attributes ``encoder`` (a
    :class:`RawResnetEncoder`, usable alone as the stage-2 feature extractor: image -> f0..f4)
    and ``decoder``.
    """

    def __init__(self, encoder: RawResnetEncoder, decoder: ReconstructionDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, image: Tensor) -> FeatureNetOutput:
        h, w = image.shape[-2:]
        if h % 32 or w % 32 or min(h, w) < 64:
            raise ValueError(f"input height and width must be multiples of 32, >= 64; got {h}x{w}")
        features = self.encoder(image)
        return FeatureNetOutput(features=features, reconstructions=self.decoder(features[4]))


@register_network("featdepth_featurenet", summary="FeatDepth stage-1 auto-encoder (FeatureNet)")
def featurenet(num_layers: int = 50, weights: Weights = None) -> FeatureNet:
    """FeatDepth's FeatureNet (``mono_autoencoder``), randomly initialised or with ImageNet weights.

    Args:
        num_layers: ResNet depth, 18, 34 or 50 (FeatDepth: 50).
        weights: ImageNet weights for the encoder only: ``None``, a member (or name) of
            ``ResNet{num_layers}_Weights``, a state-dict file, or a torchvision ResNet state dict.
            The decoder always starts from PyTorch's default initialisation.

    Raises:
        MissingWeightsError: enum weights not in the local torch cache, or the file is absent.
        ValueError: unsupported depth, or weights that do not fit.
    """
    if num_layers not in LAYERS:
        raise ValueError(f"num_layers must be one of {LAYERS}, got {num_layers}")
    encoder = RawResnetEncoder(num_layers)
    state = weights_state_dict(weights, resnet_weights_enum(num_layers))
    if state is not None:
        encoder.load_imagenet(state)
    return FeatureNet(encoder, ReconstructionDecoder(encoder.num_ch_enc[4]))
