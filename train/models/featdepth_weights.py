"""Load FeatDepth's released checkpoints (mmcv ``.pth``: ``{"meta", "state_dict", ...}``) into
:class:`~train.models.featdepth_depth.FeatDepthNet`.

FeatDepth's ``mono_fm`` model keeps its networks as attributes, so the depth network's keys in
``state_dict`` carry the prefixes ``DepthEncoder.`` and ``DepthDecoder.`` (other networks' keys -
``PoseEncoder.``, ``Encoder.`` ... - are not the depth network and are left out). Its decoder
names each level N = 1..4 (4 = coarsest) in attributes; ours is level s = N - 1:

* ``reduceN[.conv].weight``                   -> ``decoder.reduce.{s}.weight``
* ``iconvN.conv.*`` / ``mergeN.conv.*``          -> ``decoder.stages.{s}.iconv.conv.*`` / ``merge``
* ``crpN.0.{i}_<name>[.conv].weight`` (i = 1..4) -> ``decoder.stages.{s}.crp.convs.{i-1}.weight``
* ``dispN.0.conv.*`` (conv before the sigmoid)   -> ``decoder.stages.{s}.head.conv.*``

The encoder's ``DepthEncoder.encoder.*`` keys are torchvision ResNet keys, ours under
``encoder.encoder.*`` (the unused ``fc`` is dropped). A leading ``module.`` (DataParallel) is
removed first.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor

ENCODER_PREFIX = "DepthEncoder."
DECODER_PREFIX = "DepthDecoder."

_DECODER_RULES = (
    (re.compile(r"reduce([1-4])(?:\.conv)?\.weight"), "reduce.{s}.weight"),
    (re.compile(r"iconv([1-4])\.conv\.(weight|bias)"), "stages.{s}.iconv.conv.{p}"),
    (re.compile(r"merge([1-4])\.conv\.(weight|bias)"), "stages.{s}.merge.conv.{p}"),
    (re.compile(r"disp([1-4])\.0\.conv\.(weight|bias)"), "stages.{s}.head.conv.{p}"),
    (
        re.compile(r"crp([1-4])\.0\.([1-9])_\w+?(?:\.conv)?\.weight"),
        "stages.{s}.crp.convs.{p}.weight",
    ),
)


def featdepth_depth_state(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Our ``featdepth_depth`` state dict from a FeatDepth ``state_dict`` (module docstring).

    Raises:
        ValueError: no ``DepthEncoder.`` / ``DepthDecoder.`` keys, or a decoder key of unknown
            layout (named).
    """
    out: dict[str, Tensor] = {}
    for raw, value in state_dict.items():
        key = raw.removeprefix("module.")
        if key.startswith(ENCODER_PREFIX):
            rest = key[len(ENCODER_PREFIX) :]
            if not rest.startswith("encoder.fc."):
                out[f"encoder.{rest}"] = value
        elif key.startswith(DECODER_PREFIX):
            out[f"decoder.{_decoder_key(key[len(DECODER_PREFIX) :])}"] = value
    if not any(k.startswith("encoder.") for k in out) or not any(
        k.startswith("decoder.") for k in out
    ):
        raise ValueError(
            "not a FeatDepth depth model: no DepthEncoder. and DepthDecoder. keys in state_dict"
        )
    return out


def _decoder_key(key: str) -> str:
    for pattern, template in _DECODER_RULES:
        match = pattern.fullmatch(key)
        if match is None:
            continue
        level = int(match[1]) - 1
        part = match[2] if match.lastindex and match.lastindex > 1 else ""
        if "crp" in template:
            part = str(int(part) - 1)
        return template.format(s=level, p=part)
    raise ValueError(f"unexpected FeatDepth depth decoder key {DECODER_PREFIX}{key!r}")


def read_featdepth_file(path: Path) -> dict[str, Tensor]:
    """The ``state_dict`` of a FeatDepth (mmcv) checkpoint file, read with
    ``weights_only=True`` (a bare state dict is accepted too).

    Raises:
        ValueError: missing, unreadable, or not a dict of tensors; the message names the file.
    """
    if not path.is_file():
        raise ValueError(f"FeatDepth checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot read FeatDepth checkpoint {path}: {first}") from exc
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a FeatDepth (mmcv) checkpoint with a state_dict")
    return state


def depth_layers(state: dict[str, Tensor]) -> int:
    """ResNet depth of a converted state dict's encoder (18, 34 or 50)."""
    from .monodepth2_weights import resnet_depth

    return resnet_depth(state, prefix="encoder.encoder.")
