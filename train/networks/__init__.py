"""Monodepth2 networks: ResNet encoders, depth decoder, pose decoder and their builders."""

from .builders import DepthNet, PoseNet, depth_net, pose_input, pose_net, predict_cam_T_cam
from .depth_decoder import Conv3x3, ConvBlock, DepthDecoder, DepthOutput
from .monodepth2_weights import load_monodepth2_depth, load_monodepth2_pose
from .pose_decoder import PoseDecoder, PoseOutput
from .resnet_encoder import (
    ResnetEncoder,
    encoder_channels,
    resnet18_encoder,
    resnet34_encoder,
    resnet50_encoder,
    resnet_encoder,
    tile_first_conv,
)
from .weights import MissingWeightsError, WeightsArg, cached_weights_path, resolve_weights

__all__ = [
    "Conv3x3",
    "ConvBlock",
    "DepthDecoder",
    "DepthNet",
    "DepthOutput",
    "MissingWeightsError",
    "PoseDecoder",
    "PoseNet",
    "PoseOutput",
    "ResnetEncoder",
    "WeightsArg",
    "cached_weights_path",
    "depth_net",
    "encoder_channels",
    "load_monodepth2_depth",
    "load_monodepth2_pose",
    "pose_input",
    "pose_net",
    "predict_cam_T_cam",
    "resnet18_encoder",
    "resnet34_encoder",
    "resnet50_encoder",
    "resnet_encoder",
    "resolve_weights",
    "tile_first_conv",
]
