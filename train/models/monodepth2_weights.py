"""Load weights released with monodepth2 (``encoder.pth``, ``depth.pth``, ``pose_encoder.pth``,
``pose.pth``) into :class:`DepthNet` / :class:`PoseNet`.

Their decoders keep modules in a ``ModuleList`` in creation order, so key names differ from ours:

* depth decoder ``decoder.{n}.*``: n = 2 (4 - i) + j is ConvBlock j (0 = before, 1 = after the
  upsampling) of level i, i.e. our ``upconv_in.{i}`` / ``upconv_out.{i}``; n = 10 + s is the
  disparity head of scale s (``disp_heads.{s}``).
* pose decoder ``net.0..3``: our ``squeeze``, ``pose0``, ``pose1``, ``pose2``.
* encoders: ``encoder.*`` keys are the same as our ``ResnetEncoder``'s; their unused ``fc`` and
  the ``height``, ``width``, ``use_stereo`` entries of ``encoder.pth`` are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from .monodepth2 import DepthNet, PoseNet

ENCODER_METADATA = ("height", "width", "use_stereo")
_POSE_NAMES = ("squeeze", "pose0", "pose1", "pose2")


def encoder_state_from_monodepth2(state: dict[str, object]) -> dict[str, Tensor]:
    """Our ``ResnetEncoder`` state dict from a monodepth2 (pose) encoder state dict (same
    ``encoder.*`` keys, without ``fc`` and metadata)."""
    return {
        key: value
        for key, value in state.items()
        if key not in ENCODER_METADATA and not key.startswith("encoder.fc.")
    }


def depth_decoder_state_from_monodepth2(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Our ``DepthDecoder`` state dict from a monodepth2 ``depth.pth``."""
    out = {}
    for key, value in state.items():
        match = re.fullmatch(r"decoder\.(\d+)\.(.+)", key)
        if match is None:
            raise ValueError(f"unexpected monodepth2 depth decoder key {key!r}")
        n, rest = int(match[1]), match[2]
        if n < 10:
            stage = "upconv_in" if n % 2 == 0 else "upconv_out"
            out[f"{stage}.{4 - n // 2}.{rest}"] = value
        else:
            out[f"disp_heads.{n - 10}.{rest}"] = value
    return out


def pose_decoder_state_from_monodepth2(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Our ``PoseDecoder`` state dict from a monodepth2 ``pose.pth``."""
    out = {}
    for key, value in state.items():
        match = re.fullmatch(r"net\.([0-3])\.(.+)", key)
        if match is None:
            raise ValueError(f"unexpected monodepth2 pose decoder key {key!r}")
        out[f"{_POSE_NAMES[int(match[1])]}.{match[2]}"] = value
    return out


# Blocks per ResNet stage, and whether blocks are bottlenecks (conv3), by depth.
RESNET_LAYOUTS = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}


def resnet_depth(state: dict[str, object], prefix: str = "encoder.") -> int:
    """The ResNet depth (18, 34, 50, 101, 152) of an encoder state dict, from its block counts.

    Raises:
        ValueError: the keys are not those of a torchvision ResNet under ``prefix``.
    """
    blocks = []
    for stage in range(1, 5):
        found = {
            int(key[len(f"{prefix}layer{stage}.") :].split(".")[0])
            for key in state
            if key.startswith(f"{prefix}layer{stage}.")
        }
        blocks.append(len(found))
    bottleneck = f"{prefix}layer1.0.conv3.weight" in state
    for depth, (layout, is_bottleneck) in RESNET_LAYOUTS.items():
        if tuple(blocks) == layout and bottleneck == is_bottleneck:
            return depth
    raise ValueError(f"not a ResNet encoder state dict (blocks per stage {blocks})")


def read_monodepth2_file(path: Path) -> dict[str, object]:
    """A monodepth2 ``.pth`` state dict (tensors, plus ints/bools in ``encoder.pth``).

    Raises:
        ValueError: missing, unreadable or not a dict; the message names the file.
    """
    if not path.is_file():
        raise ValueError(f"monodepth2 weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot read monodepth2 weights file {path}: {first}") from exc
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return state


def load_monodepth2_depth(net: DepthNet, encoder_file: Path, decoder_file: Path) -> dict:
    """Load ``encoder.pth`` + ``depth.pth`` into ``net``; returns the encoder's metadata
    (``height``, ``width``, ``use_stereo`` where present).

    Raises:
        ValueError: a file is missing/unreadable or its tensors do not fit ``net``.
    """
    encoder_state = _load(net.encoder, encoder_state_from_monodepth2, encoder_file)
    _load(net.decoder, depth_decoder_state_from_monodepth2, decoder_file)
    return {k: encoder_state[k] for k in ENCODER_METADATA if k in encoder_state}


def load_monodepth2_pose(net: PoseNet, encoder_file: Path, decoder_file: Path) -> None:
    """Load ``pose_encoder.pth`` + ``pose.pth`` into ``net`` (ValueError as above)."""
    _load(net.encoder, encoder_state_from_monodepth2, encoder_file)
    _load(net.decoder, pose_decoder_state_from_monodepth2, decoder_file)


def _load(
    module: nn.Module, convert: Callable[[dict], dict[str, Tensor]], path: Path
) -> dict[str, object]:
    """Read ``path``, rename its keys with ``convert`` and load them strictly into ``module``."""
    state = read_monodepth2_file(path)
    try:
        module.load_state_dict(convert(state))
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{path} does not fit {type(module).__name__}: {exc}") from exc
    return state
