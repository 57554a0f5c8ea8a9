"""Monodepth2 ResNet encoder (training.md 1.1) and its multi-image pose variant (1.2).

One class serves both: ``num_input_images = 1`` is the depth encoder, ``num_input_images = 2``
the separate-ResNet pose encoder whose first convolution takes the two frames stacked on
channels (``3 * n`` input channels).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models import ResNet, resnet

from .weights import WeightsArg, load_weights, resnet_weights_enum, resolve_weights

SUPPORTED_LAYERS = (18, 34, 50, 101, 152)
IMAGE_MEAN = 0.45
IMAGE_STD = 0.225


def encoder_channels(num_layers: int) -> tuple[int, int, int, int, int]:
    """Channels of the five encoder maps: ``(64, 64, 128, 256, 512)``, x4 after the first for
    bottleneck ResNets (> 34 layers)."""
    if num_layers not in SUPPORTED_LAYERS:
        raise ValueError(f"num_layers must be one of {SUPPORTED_LAYERS}, got {num_layers}")
    widen = 4 if num_layers > 34 else 1
    return (64, 64 * widen, 128 * widen, 256 * widen, 512 * widen)


def tile_first_conv(state: dict[str, Tensor], num_input_images: int) -> dict[str, Tensor]:
    """An ImageNet ResNet state dict adapted to ``3 * num_input_images`` input channels.

    ``conv1.weight`` (64, 3, 7, 7) is tiled ``num_input_images`` times along the input-channel
    axis and divided by ``num_input_images`` (so a stack of identical frames gives the same
    response as one frame); every other entry is returned unchanged. Returns a new dict.
    """
    out = dict(state)
    if num_input_images > 1:
        kernel = state["conv1.weight"]
        out["conv1.weight"] = torch.cat([kernel] * num_input_images, dim=1) / num_input_images
    return out


class ResnetEncoder(nn.Module):
    """torchvision ResNet trunk returning five feature maps.

    Input: ``(B, 3 * num_input_images, H, W)`` float RGB in [0, 1], H and W multiples of 32.
    Output: list ``[f0, f1, f2, f3, f4]`` at H/2, H/4, H/8, H/16, H/32 with channels
    ``num_ch_enc``. The input is normalised as ``(x - 0.45) / 0.225`` (one scalar for all
    channels, as monodepth2 does) unless ``normalise`` is False (FeatDepth's FeatureNet feeds raw
    [0, 1] RGB).

    Weights are in ``self.encoder`` (a torchvision ``ResNet`` whose unused ``fc`` is replaced by
    an identity), so ``encoder.*`` keys match a monodepth2 ``encoder.pth`` minus its ``fc``.
    Random initialisation is torchvision's: Kaiming-normal (fan_out, relu) convs, BatchNorm 1/0.
    """

    def __init__(
        self, num_layers: int = 18, num_input_images: int = 1, normalise: bool = True
    ) -> None:
        super().__init__()
        self.normalise = normalise
        self.num_ch_enc = encoder_channels(num_layers)
        self.num_layers = num_layers
        self.num_input_images = num_input_images
        trunk: ResNet = getattr(resnet, f"resnet{num_layers}")(weights=None)
        if num_input_images > 1:
            trunk.conv1 = nn.Conv2d(
                3 * num_input_images, 64, kernel_size=7, stride=2, padding=3, bias=False
            )
            nn.init.kaiming_normal_(trunk.conv1.weight, mode="fan_out", nonlinearity="relu")
        trunk.fc = nn.Identity()
        self.encoder = trunk

    def load_imagenet(self, state: dict[str, Tensor]) -> None:
        """Load a torchvision ImageNet ResNet state dict (``fc.*`` ignored, conv1 tiled).

        Raises:
            ValueError: keys or shapes do not match this ResNet depth.
        """
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        state = tile_first_conv(state, self.num_input_images)
        try:
            self.encoder.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"weights do not fit resnet{self.num_layers}: {exc}") from exc

    def forward(self, x: Tensor) -> list[Tensor]:
        t = self.encoder
        f0 = self.first_level(x)
        f1 = t.layer1(t.maxpool(f0))
        f2 = t.layer2(f1)
        f3 = t.layer3(f2)
        f4 = t.layer4(f3)
        return [f0, f1, f2, f3, f4]

    def first_level(self, x: Tensor) -> Tensor:
        """``f0`` alone, ``(B, 64, H/2, W/2)``: the stem without the four stages (all a
        feature-metric loss uses)."""
        t = self.encoder
        if self.normalise:
            x = (x - IMAGE_MEAN) / IMAGE_STD
        return t.relu(t.bn1(t.conv1(x)))


def resnet_encoder(
    num_layers: int = 18, weights: WeightsArg = None, num_input_images: int = 1
) -> ResnetEncoder:
    """A :class:`ResnetEncoder`, randomly initialised (``weights=None``) or from ImageNet weights.

    Args:
        num_layers: 18, 34, 50, 101 or 152.
        weights: see :data:`train.models.weights.WeightsArg`; a file must hold a torchvision
            ResNet state dict of the same depth (3-channel conv1; it is tiled for pose encoders).
        num_input_images: frames stacked on channels (1 = depth encoder, 2 = pose encoder).

    Raises:
        MissingWeightsError: enum weights not in the local torch cache, or the file is absent.
        ValueError: unreadable file or a state dict that does not fit.
    """
    model = ResnetEncoder(num_layers, num_input_images)
    resolved = resolve_weights(weights, resnet_weights_enum(num_layers))
    if resolved is not None:
        state = load_weights(resolved)
        try:
            model.load_imagenet(state)
        except ValueError as exc:
            raise ValueError(f"{resolved}: {exc}") from exc
    return model


def resnet18_encoder(weights: WeightsArg = None, num_input_images: int = 1) -> ResnetEncoder:
    """ResNet-18 :class:`ResnetEncoder` (channels 64, 64, 128, 256, 512)."""
    return resnet_encoder(18, weights, num_input_images)


def resnet34_encoder(weights: WeightsArg = None, num_input_images: int = 1) -> ResnetEncoder:
    """ResNet-34 :class:`ResnetEncoder` (channels 64, 64, 128, 256, 512)."""
    return resnet_encoder(34, weights, num_input_images)


def resnet50_encoder(weights: WeightsArg = None, num_input_images: int = 1) -> ResnetEncoder:
    """ResNet-50 :class:`ResnetEncoder` (channels 64, 256, 512, 1024, 2048)."""
    return resnet_encoder(50, weights, num_input_images)
