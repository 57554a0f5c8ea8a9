"""Networks, one per file, and their registry (:mod:`train.models.registry`).

Monodepth2: :mod:`resnet_encoder`, :mod:`depth_decoder`, :mod:`pose_decoder`, the whole networks
in :mod:`monodepth2` (registered as ``monodepth2_depth`` and ``monodepth2_pose``) and the
released-weights fix-ups in :mod:`monodepth2_weights`. FeatDepth: :mod:`featdepth_depth`
(``featdepth_depth``) and the auto-encoder :mod:`featurenet` (``featdepth_featurenet``).
SegDepth: :mod:`segdepth_unet` (``segdepth_unet``). DenseDepth: :mod:`densedepth`
(``densedepth_depth``). Lite-Mono: :mod:`litemono_encoder` (``litemono_encoder``) and
:mod:`litemono` (``litemono_depth``), built from :mod:`litemono_blocks` and
:mod:`litemono_decoder`; its weight files in :mod:`litemono_weights`. ManyDepth: the matching
encoder :mod:`manydepth_encoder` (``manydepth_encoder``, its plane sweep in :mod:`cost_volume`),
the multi-frame network :mod:`manydepth` (``manydepth_depth``), its released-weights loader
:mod:`manydepth_weights`. Pretrained weights go through the one resolver in :mod:`weights`.
"""

# Importing the network modules registers their builders.
from . import (  # noqa: F401
    densedepth,
    featdepth_depth,
    featurenet,
    litemono,
    manydepth,
    manydepth_encoder,
    segdepth_unet,
)
from .depth_decoder import Conv3x3, ConvBlock, DepthDecoder, DepthOutput
from .monodepth2 import DepthNet, PoseNet, depth_net, pose_input, pose_net, predict_cam_T_cam
from .monodepth2_weights import load_monodepth2_depth, load_monodepth2_pose
from .pose_decoder import PoseDecoder, PoseOutput
from .registry import NETWORKS, NetworkEntry, build_network, register_network
from .resnet_encoder import (
    ResnetEncoder,
    encoder_channels,
    resnet18_encoder,
    resnet34_encoder,
    resnet50_encoder,
    resnet_encoder,
    tile_first_conv,
)
from .weights import (
    MissingWeightsError,
    WeightsArg,
    cached_weights_path,
    load_weights,
    resolve_weights,
)

__all__ = [
    "NETWORKS",
    "Conv3x3",
    "ConvBlock",
    "DepthDecoder",
    "DepthNet",
    "DepthOutput",
    "MissingWeightsError",
    "NetworkEntry",
    "PoseDecoder",
    "PoseNet",
    "PoseOutput",
    "ResnetEncoder",
    "WeightsArg",
    "build_network",
    "cached_weights_path",
    "depth_net",
    "encoder_channels",
    "load_monodepth2_depth",
    "load_monodepth2_pose",
    "load_weights",
    "pose_input",
    "pose_net",
    "predict_cam_T_cam",
    "register_network",
    "resnet18_encoder",
    "resnet34_encoder",
    "resnet50_encoder",
    "resnet_encoder",
    "resolve_weights",
    "tile_first_conv",
]
