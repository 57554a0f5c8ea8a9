"""Whole Monodepth2 networks (encoder + decoder) and their registered builders."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .depth_decoder import DepthDecoder, DepthOutput
from .pose_decoder import PoseDecoder, PoseOutput
from .registry import register_network
from .resnet_encoder import ResnetEncoder, resnet_encoder
from .weights import WeightsArg


class DepthNet(nn.Module):
    """ResNet encoder + depth decoder: ``(B, 3, H, W)`` RGB in [0, 1] -> :class:`DepthOutput`.

    H and W must be multiples of 32 and at least 64 (the decoder reflection-pads the H/32 map).
    Attributes ``encoder`` and ``decoder``.
    """

    def __init__(self, encoder: ResnetEncoder, decoder: DepthDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, image: Tensor) -> DepthOutput:
        _check_size(image, min_size=64)
        return self.decoder(self.encoder(image))


class PoseNet(nn.Module):
    """Separate-ResNet pose network: stacked frames ``(B, 3 * n, H, W)`` -> :class:`PoseOutput`.

    Build the input with :func:`pose_input`. H and W must be multiples of 32.
    Attributes ``encoder`` and ``decoder``.
    """

    def __init__(self, encoder: ResnetEncoder, decoder: PoseDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, frames: Tensor) -> PoseOutput:
        _check_size(frames)
        return self.decoder([self.encoder(frames)[-1]])


@register_network("monodepth2_depth", summary="ResNet encoder + Monodepth2 depth decoder")
def depth_net(
    num_layers: int = 18, encoder_weights: WeightsArg = None, num_scales: int = 4
) -> DepthNet:
    """Monodepth2 depth network.

    Args:
        num_layers: ResNet depth (18, 34, 50, 101, 152).
        encoder_weights: ImageNet weights for the encoder (enum, enum name, file, or ``None`` for
            random initialisation; see :func:`train.models.resnet_encoder.resnet_encoder`).
            The decoder always starts from PyTorch's default initialisation.
        num_scales: disparity outputs (scales 0 .. num_scales - 1).
    """
    encoder = resnet_encoder(num_layers, encoder_weights, num_input_images=1)
    return DepthNet(encoder, DepthDecoder(encoder.num_ch_enc, num_scales))


@register_network(
    "monodepth2_pose", input_channels=6, min_size=32, summary="separate-ResNet pose network"
)
def pose_net(
    num_layers: int = 18, encoder_weights: WeightsArg = None, num_input_images: int = 2
) -> PoseNet:
    """Monodepth2 separate-ResNet pose network (``pose_model_type = separate_resnet``).

    The encoder takes ``num_input_images`` frames stacked on channels; ImageNet weights get their
    first kernel tiled ``num_input_images`` times and divided by it. The decoder predicts
    ``num_input_images`` poses (monodepth2 keeps a dead second pose for pairs).
    """
    encoder = resnet_encoder(num_layers, encoder_weights, num_input_images=num_input_images)
    decoder = PoseDecoder(encoder.num_ch_enc, num_inputs=1, num_predictions=num_input_images)
    return PoseNet(encoder, decoder)


def pose_input(target: Tensor, source: Tensor, frame_offset: int) -> Tensor:
    """Stack two ``(B, 3, H, W)`` frames in temporal order: ``[source, target]`` when
    ``frame_offset < 0`` (source earlier), else ``[target, source]``. Returns ``(B, 6, H, W)``."""
    pair = (source, target) if frame_offset < 0 else (target, source)
    return torch.cat(pair, dim=1)


def predict_cam_T_cam(net: PoseNet, target: Tensor, source: Tensor, frame_offset: int) -> Tensor:
    """``(B, 4, 4)`` transform from the target camera to the source camera at ``frame_offset``.

    Runs ``net`` on the temporally ordered pair and inverts the prediction when the source is
    earlier (``frame_offset < 0``), as monodepth2 does. Images are ``(B, 3, H, W)`` in [0, 1]
    (monodepth2 feeds the colour-augmented frames).
    """
    return net(pose_input(target, source, frame_offset)).matrix(invert=frame_offset < 0)


def _check_size(x: Tensor, min_size: int = 32) -> None:
    h, w = x.shape[-2:]
    if h % 32 or w % 32 or min(h, w) < min_size:
        raise ValueError(
            f"input height and width must be multiples of 32 and at least {min_size}, got {h}x{w}"
        )
