"""SegDepth's segmentation U-Net (training.md 6): disparity -> 2-class foreground scores.

The reference vendors segmentation_models_pytorch's ``Unet("efficientnet-b3")``; this is the same
design on torchvision's EfficientNet-B3 (the reference's lukemelas weights file loads into it,
see :mod:`train.models.segdepth_weights`): a learnable 3x3 conv lifts the 1-channel disparity to 3
channels, the encoder gives five maps at H/2..H/32 (channels 40, 32, 48, 136, 384), and five
decoder blocks (nearest x2, skip, two conv-BN-ReLU) lead to a 3x3 head with a sigmoid.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import EfficientNet_B3_Weights, efficientnet_b3

from .registry import register_network
from .segdepth_weights import (
    apply_reference_arithmetic,
    efficientnet_b3_from_lukemelas,
    is_lukemelas_layout,
)
from .weights import Weights, weights_state_dict

ENCODER_CHANNELS = (40, 32, 48, 136, 384)
DECODER_CHANNELS = (256, 128, 64, 32, 16)
TAPS = (0, 2, 3, 5, 7)
"""Indices into torchvision's ``efficientnet_b3().features`` whose outputs are the five maps:
the stem (H/2) and the last block of the 32-, 48-, 136- and 384-channel stages (H/4 .. H/32).
smp's stages split the blocks the same way (stage indices 5, 8, 18, 26); the 24-channel stage
at H/2 and the final 1x1 conv to 1536 channels are not tapped (the latter is dropped)."""

"""``None`` (random init), a torchvision enum member (or its name), a file, or a state dict."""


class EfficientNetEncoder(nn.Module):
    """torchvision EfficientNet-B3 trunk (``features.0`` .. ``features.7``), no normalisation.

    ``(B, 3, H, W)`` -> five maps at H/2, H/4, H/8, H/16, H/32 with channels
    :data:`ENCODER_CHANNELS`. Stochastic depth (p up to 0.2) is active in train mode, as
    smp's drop-connect is. State-dict keys are torchvision's ``features.*``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = efficientnet_b3(weights=None).features[: TAPS[-1] + 1]
        self.num_ch_enc = ENCODER_CHANNELS

    def load_imagenet(self, state: Mapping[str, Tensor]) -> None:
        """Load an EfficientNet-B3 state dict (classifier and ``features.8`` ignored):
        torchvision's keys, or lukemelas/EfficientNet-PyTorch's (the reference's
        ``efficientnet-b3-5fb5a3c3.pth``), remapped by
        :func:`~train.models.segdepth_weights.efficientnet_b3_from_lukemelas`; the latter also
        take that network's BatchNorm eps / momentum and static "same" padding
        (:func:`~train.models.segdepth_weights.apply_reference_arithmetic`).

        Raises:
            ValueError: keys or shapes do not fit.
        """
        reference = is_lukemelas_layout(state)
        if reference:
            state = efficientnet_b3_from_lukemelas(state)
        drop = f"features.{TAPS[-1] + 1}."
        kept = {
            k: v for k, v in state.items() if k.startswith("features.") and not k.startswith(drop)
        }
        try:
            self.load_state_dict(kept)
        except RuntimeError as exc:
            raise ValueError(f"weights do not fit efficientnet_b3: {exc}") from exc
        if reference:
            apply_reference_arithmetic(self.features)

    def forward(self, x: Tensor) -> list[Tensor]:
        maps = []
        for i, stage in enumerate(self.features):
            x = stage(x)
            if i in TAPS:
                maps.append(x)
        return maps


class ConvBNReLU(nn.Sequential):
    """3x3 conv (zero pad 1, no bias) + BatchNorm + ReLU, shape-preserving in h, w."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UpBlock(nn.Module):
    """Nearest x2, concatenate the skip (if any), two :class:`ConvBNReLU`.

    ``(B, in_channels, h, w)`` (+ skip ``(B, skip_channels, 2h, 2w)``) -> ``(B, out, 2h, 2w)``.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(in_channels + skip_channels, out_channels)
        self.conv2 = ConvBNReLU(out_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class UNetDecoder(nn.Module):
    """smp's U-Net decoder: from the H/32 map up through the four skips to full resolution.

    Block k (k = 0..4) maps ``in[k] + skip[k] -> DECODER_CHANNELS[k]`` with ``in = (C4, 256, 128,
    64, 32)`` and skips f3, f2, f1, f0, none. Output ``(B, 16, H, W)``.
    """

    def __init__(self, num_ch_enc: tuple[int, ...] = ENCODER_CHANNELS) -> None:
        super().__init__()
        c_in = (num_ch_enc[4], *DECODER_CHANNELS[:-1])
        c_skip = (*num_ch_enc[3::-1], 0)
        self.blocks = nn.ModuleList(
            UpBlock(i, s, o) for i, s, o in zip(c_in, c_skip, DECODER_CHANNELS, strict=True)
        )

    def forward(self, features: list[Tensor]) -> Tensor:
        skips = [*features[3::-1], None]
        x = features[4]
        for block, skip in zip(self.blocks, skips, strict=True):
            x = block(x, skip)
        return x


class SegDepthUNet(nn.Module):
    """Disparity ``(B, 1, H, W)`` -> class scores ``(B, num_classes, H, W)`` in (0, 1).

    ``input_conv`` (3x3, 1 -> 3, pad 1, bias; PyTorch default init), :class:`EfficientNetEncoder`,
    :class:`UNetDecoder`, ``head`` (3x3 conv 16 -> num_classes, pad 1) and a **sigmoid** (the
    reference's activation; its loss then applies log-softmax to these). Channel 1 is the
    foreground. Decoder convs Kaiming-uniform (fan_in, relu), BatchNorm 1 / 0, head
    Xavier-uniform, biases 0. H and W must be multiples of 32.
    """

    def __init__(self, encoder: EfficientNetEncoder, num_classes: int = 2) -> None:
        super().__init__()
        self.input_conv = nn.Conv2d(1, 3, 3, padding=1)
        self.encoder = encoder
        self.decoder = UNetDecoder(encoder.num_ch_enc)
        self.head = nn.Conv2d(DECODER_CHANNELS[-1], num_classes, 3, padding=1)
        _init_decoder(self.decoder)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, disp: Tensor) -> Tensor:
        h, w = disp.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"input height and width must be multiples of 32, got {h}x{w}")
        features = self.encoder(self.input_conv(disp))
        return torch.sigmoid(self.head(self.decoder(features)))


@register_network(
    "segdepth_unet", input_channels=1, min_size=32, summary="SegDepth U-Net on the disparity"
)
def segdepth_unet(weights: Weights = None, num_classes: int = 2) -> SegDepthUNet:
    """SegDepth's U-Net, randomly initialised or with an ImageNet EfficientNet-B3 encoder.

    Args:
        weights: encoder weights: ``None``, a member (or name) of ``EfficientNet_B3_Weights``
            (torchvision's ImageNet weights), a state-dict file or a state dict, in
            torchvision's layout or lukemelas/EfficientNet-PyTorch's (the reference's
            ``efficientnet-b3-5fb5a3c3.pth``: remapped, with that network's arithmetic).
        num_classes: output channels (2: background, foreground).

    Raises:
        MissingWeightsError: enum weights not in the local torch cache, or the file is absent.
        ValueError: weights that do not fit.
    """
    encoder = EfficientNetEncoder()
    state = weights_state_dict(weights, EfficientNet_B3_Weights)
    if state is not None:
        encoder.load_imagenet(state)
    return SegDepthUNet(encoder, num_classes)


def _init_decoder(module: nn.Module) -> None:
    """smp's decoder initialisation: Kaiming-uniform convs, BatchNorm 1 / 0, biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
