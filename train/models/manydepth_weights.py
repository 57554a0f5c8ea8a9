"""Load weights in ManyDepth's own layout (its release folders: ``encoder.pth``, ``depth.pth``,
``pose_encoder.pth``, ``pose.pth``, ``mono_encoder.pth``, ``mono_depth.pth``).

* ``encoder.pth``: the matching encoder under the reference's names (ours are the same), plus
  entries that are not weights: ``height``, ``width`` (the input size), ``min_depth_bin``,
  ``max_depth_bin`` (the adaptive depth range, which becomes our ``min_depth_bin`` /
  ``max_depth_bin`` buffers). Dropped: the unused ``prematching_conv.*`` and the fixed-size
  back-projection grids ``backprojector.*`` (rebuilt for any size at run time).
* ``depth.pth``, ``mono_encoder.pth`` + ``mono_depth.pth``, ``pose_encoder.pth`` + ``pose.pth``:
  Monodepth2's layouts (:mod:`train.models.monodepth2_weights`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from .manydepth import ManyDepthNet
from .manydepth_encoder import ResnetEncoderMatching
from .monodepth2_weights import depth_decoder_state_from_monodepth2, read_monodepth2_file

ENCODER_METADATA = ("height", "width", "min_depth_bin", "max_depth_bin")
DROPPED_PREFIXES = ("prematching_conv.", "backprojector.")
RANGE_KEYS = ("min_depth_bin", "max_depth_bin")


def matching_encoder_state(state: dict[str, object]) -> dict[str, Tensor]:
    """Our :class:`ResnetEncoderMatching` state dict from a ManyDepth ``encoder.pth`` state:
    weights unchanged, the depth range as float64 buffers (kept as they are when absent)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith(DROPPED_PREFIXES) or key in ("height", "width"):
            continue
        if key in RANGE_KEYS:
            out[key] = torch.as_tensor(float(value), dtype=torch.float64)  # type: ignore[arg-type]
        elif isinstance(value, Tensor):
            out[key] = value
        else:
            raise ValueError(f"unexpected entry {key!r} ({type(value).__name__})")
    return out


def load_matching_encoder(encoder: ResnetEncoderMatching, state: dict[str, object]) -> None:
    """Load a ManyDepth encoder state dict (or ``encoder.pth`` contents) into ``encoder``;
    without depth-range entries the buffers keep their values.

    Raises:
        ValueError: the tensors do not fit (names or shapes).
    """
    converted = matching_encoder_state(state)
    strict = all(k in converted for k in RANGE_KEYS)
    missing, unexpected = encoder.load_state_dict(converted, strict=False)
    missing = [k for k in missing if strict or k not in RANGE_KEYS]
    if missing or unexpected:
        raise ValueError(
            f"not a ResnetEncoderMatching of ResNet-{encoder.num_layers} with "
            f"{encoder.num_depth_bins} bins: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )


def load_manydepth_depth(net: ManyDepthNet, encoder_file: Path, decoder_file: Path) -> dict:
    """Load ``encoder.pth`` + ``depth.pth`` into ``net``; returns the encoder's metadata
    (``height``, ``width``, ``min_depth_bin``, ``max_depth_bin`` where present).

    Raises:
        ValueError: a file is missing, unreadable or does not fit (naming it).
    """
    encoder_state = read_monodepth2_file(encoder_file)
    try:
        load_matching_encoder(net.encoder, encoder_state)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{encoder_file} does not fit the matching encoder: {exc}") from exc
    decoder_state = read_monodepth2_file(decoder_file)
    try:
        net.decoder.load_state_dict(depth_decoder_state_from_monodepth2(decoder_state))
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(f"{decoder_file} does not fit the depth decoder: {first}") from exc
    return {k: encoder_state[k] for k in ENCODER_METADATA if k in encoder_state}


def matching_layers(state: dict[str, object]) -> int:
    """ResNet depth of a ManyDepth encoder state dict (18, 34: basic blocks; 50+: bottlenecks),
    from its block counts.

    Raises:
        ValueError: not a matching encoder's keys.
    """
    from .monodepth2_weights import resnet_depth

    renamed = {}
    for key in state:
        if key.startswith("layer1.1."):
            renamed["encoder.layer1." + key.removeprefix("layer1.1.")] = None
        elif key.startswith(("layer2.", "layer3.", "layer4.")):
            renamed["encoder." + key] = None
    if "reduce_conv.0.weight" not in state:
        raise ValueError("no reduce_conv.0.weight: not a ManyDepth matching encoder")
    return resnet_depth(renamed)
