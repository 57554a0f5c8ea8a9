"""FeatDepth depth network (training.md 5.2): ResNet encoder + RefineNet-style depth decoder.

The decoder starts from the H/32 map, refines it with chained residual pooling (CRP) at each
level, upsamples by 2 and takes the next-finer encoder map as a skip. Its finest disparity is at
**H/2** (f0 is unused): ``disps[s]`` has resolution H / 2**(s + 1), unlike Monodepth2's H / 2**s.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .depth_decoder import Conv3x3, DepthOutput
from .registry import register_network
from .resnet_encoder import ResnetEncoder
from .weights import Weights, resnet_weights_enum, weights_state_dict

LAYERS = (18, 34, 50)
TOP_CHANNELS = 512  # f4 is reduced to this many channels
BOTTLENECK = 256  # every other decoder map
CRP_STAGES = 4
NUM_SCALES = 4

"""``None`` (random init), a torchvision enum member (or its name), a file, or a state dict."""


def conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
    """1x1 convolution without bias (FeatDepth's ``Conv1x1``)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)


class CRPBlock(nn.Module):
    """Chained residual pooling, shape-preserving ``(B, C, h, w)``.

    ``top = x``; ``stages`` times: ``top = conv1x1(maxpool5x5(top))`` (stride 1, pad 2) and
    ``x = x + top``.
    """

    def __init__(self, channels: int, stages: int = CRP_STAGES) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size=5, stride=1, padding=2)
        self.convs = nn.ModuleList(conv1x1(channels, channels) for _ in range(stages))

    def forward(self, x: Tensor) -> Tensor:
        top = x
        for conv in self.convs:
            top = conv(self.pool(top))
            x = x + top
        return x


class RefineStage(nn.Module):
    """One decoder level: ``Conv3x3 -> lrelu -> CRP -> Conv3x3 -> lrelu -> nearest x2``.

    ``(B, in_channels, h, w)`` -> ``(x, disp)``: ``x`` ``(B, 256, 2h, 2w)`` and its sigmoid
    disparity ``disp = sigmoid(Conv3x3(256 -> 1)(x))`` ``(B, 1, 2h, 2w)``. LeakyReLU slope 0.01.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.iconv = Conv3x3(in_channels, BOTTLENECK)
        self.crp = CRPBlock(BOTTLENECK)
        self.merge = Conv3x3(BOTTLENECK, BOTTLENECK)
        self.head = Conv3x3(BOTTLENECK, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.leaky_relu(self.iconv(x))
        x = F.leaky_relu(self.merge(self.crp(x)))
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x, torch.sigmoid(self.head(x))


class RefineDecoder(nn.Module):
    """FeatDepth depth decoder: encoder maps f0..f4 -> 4 sigmoid disparities, finest first.

    Dropout (p = ``dropout``, train mode only) on f4 and f3. Level s (3 = coarsest) takes
    ``reduce[s](f_{s+1})`` (1x1 conv: 512 channels for f4, 256 otherwise), concatenated for
    s < 3 with the previous level's map and disparity (256 + 256 + 1 = 513 channels), and
    outputs ``disps[s]`` at H / 2**(s + 1). Default PyTorch initialisation.

    Args:
        num_ch_enc: channels of f0..f4 (f0 is unused).
        dropout: dropout probability on f3 and f4.
    """

    def __init__(self, num_ch_enc: Sequence[int], dropout: float = 0.5) -> None:
        super().__init__()
        self.num_ch_enc = tuple(num_ch_enc)
        self.dropout = nn.Dropout(dropout)
        reduced = [BOTTLENECK] * (NUM_SCALES - 1) + [TOP_CHANNELS]
        self.reduce = nn.ModuleList(
            conv1x1(self.num_ch_enc[s + 1], reduced[s]) for s in range(NUM_SCALES)
        )
        fused = [2 * BOTTLENECK + 1] * (NUM_SCALES - 1) + [TOP_CHANNELS]
        self.stages = nn.ModuleList(RefineStage(fused[s]) for s in range(NUM_SCALES))

    def forward(self, features: Sequence[Tensor]) -> DepthOutput:
        """``features``: f0..f4 at H/2..H/32; returns disparities at H/2, H/4, H/8, H/16."""
        skips = list(features[1:5])
        skips[2] = self.dropout(skips[2])  # f3
        skips[3] = self.dropout(skips[3])  # f4
        top = NUM_SCALES - 1
        x, disp = self.stages[top](self.reduce[top](skips[top]))
        disps = [disp]
        for s in range(top - 1, -1, -1):
            x, disp = self.stages[s](torch.cat([self.reduce[s](skips[s]), x, disp], dim=1))
            disps.append(disp)
        return DepthOutput(disps=disps[::-1])


class FeatDepthNet(nn.Module):
    """ResNet encoder + :class:`RefineDecoder`: ``(B, 3, H, W)`` RGB in [0, 1] -> DepthOutput.

    The encoder normalises its input as ``(x - 0.45) / 0.225`` (Monodepth2's). ``disps[s]`` is
    ``(B, 1, H / 2**(s + 1), W / 2**(s + 1))`` in (0, 1), s = 0..3: the finest is **H/2**.
    H and W must be multiples of 32 and at least 64. Attributes ``encoder`` and ``decoder``.
    """

    def __init__(self, encoder: ResnetEncoder, decoder: RefineDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, image: Tensor) -> DepthOutput:
        h, w = image.shape[-2:]
        if h % 32 or w % 32 or min(h, w) < 64:
            raise ValueError(f"input height and width must be multiples of 32, >= 64; got {h}x{w}")
        return self.decoder(self.encoder(image))


@register_network(
    "featdepth_depth", summary="FeatDepth: ResNet encoder + RefineNet-style decoder (finest H/2)"
)
def featdepth_depth_net(
    num_layers: int = 50, weights: Weights = None, dropout: float = 0.5
) -> FeatDepthNet:
    """FeatDepth's depth network (``mono_fm``), randomly initialised or with ImageNet weights.

    Args:
        num_layers: ResNet depth, 18, 34 or 50 (FeatDepth: 50; the seed paper: 18).
        weights: ImageNet weights for the encoder only: ``None``, a member (or name) of
            ``ResNet{num_layers}_Weights``, a state-dict file, or a torchvision ResNet state dict.
            The decoder always starts from PyTorch's default initialisation.
        dropout: dropout probability on f3 and f4.

    Raises:
        MissingWeightsError: enum weights not in the local torch cache, or the file is absent.
        ValueError: unsupported depth, or weights that do not fit.
    """
    if num_layers not in LAYERS:
        raise ValueError(f"num_layers must be one of {LAYERS}, got {num_layers}")
    encoder = ResnetEncoder(num_layers)
    state = weights_state_dict(weights, resnet_weights_enum(num_layers))
    if state is not None:
        encoder.load_imagenet(state)
    return FeatDepthNet(encoder, RefineDecoder(encoder.num_ch_enc, dropout))
