"""Lite-Mono's weight files: release folders (``encoder.pth``, ``depth.pth``) and the
ImageNet-pretrained encoders of ``--mypretrain``.

Our modules use the reference's attribute names (:mod:`train.models.litemono_encoder`,
:mod:`train.models.litemono_decoder`), so no key is renamed:

* ``encoder.pth``: the encoder's state dict plus the entries ``height``, ``width`` (and
  ``use_stereo``), which are dropped; the unused ``stages.S.J.norm.*`` of the conv blocks load
  into our frozen copies of them.
* ``depth.pth``: the decoder's ``decoder.N.*`` keys.
* ImageNet file: a dict whose ``model`` entry is the classifier's state dict; as the reference
  (LM trainer.py:656-664), entries whose key the encoder has and that do not start with
  ``norm`` are copied, every other is ignored (the classifier's final norm and head).

The variant of a release is read from its weights (:func:`infer_variant`): the stage-0 width
and the number of blocks in stage 2 tell the four apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor, nn

from .litemono import LiteMonoDepthNet
from .litemono_encoder import VARIANTS

ENCODER_METADATA = ("height", "width", "use_stereo")


def read_litemono_file(path: Path, what: str = "Lite-Mono weights file") -> dict[str, object]:
    """The dict saved in ``path`` (state dicts, with ints / bools in ``encoder.pth``), read with
    ``weights_only=True`` (``argparse.Namespace`` allowed: training checkpoints store their
    arguments).

    Raises:
        ValueError: missing, unreadable or not a dict; the message names the file.
    """
    if not path.is_file():
        raise ValueError(f"{what} not found: {path}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot read {what} {path}: {first}") from exc
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a dict of weights")
    return state


def tensors_only(state: dict[str, object]) -> dict[str, Tensor]:
    """``state`` without its non-tensor entries (``height``, ``width``, ``use_stereo``)."""
    return {k: v for k, v in state.items() if isinstance(v, Tensor)}


def infer_variant(encoder_state: dict[str, object]) -> str:
    """The Lite-Mono variant of an encoder state dict, from its stage widths and block counts.

    Raises:
        ValueError: not a Lite-Mono encoder (no ``stages.*`` keys of a known layout).
    """
    widths, depths = [], []
    for stage in range(3):
        gamma = encoder_state.get(f"stages.{stage}.0.gamma")
        blocks = {
            int(key.split(".")[2])
            for key in encoder_state
            if key.startswith(f"stages.{stage}.") and key.count(".") >= 3
        }
        if not isinstance(gamma, Tensor) or not blocks:
            raise ValueError(f"not a Lite-Mono encoder: no stages.{stage}.* weights")
        widths.append(int(gamma.shape[0]))
        depths.append(max(blocks) + 1)
    for name, spec in VARIANTS.items():
        if spec.channels == tuple(widths) and spec.depths == tuple(depths):
            return name
    raise ValueError(
        f"not a known Lite-Mono variant (channels {tuple(widths)}, blocks {tuple(depths)})"
    )


def load_litemono_depth(
    net: LiteMonoDepthNet, encoder_file: Path, decoder_file: Path
) -> dict[str, object]:
    """Load ``encoder.pth`` + ``depth.pth`` into ``net`` (strictly); returns the encoder file's
    metadata (``height``, ``width``, ``use_stereo`` where present).

    Raises:
        ValueError: a file is missing / unreadable or its tensors do not fit ``net``.
    """
    encoder = read_litemono_file(encoder_file)
    _load(net.encoder, tensors_only(encoder), encoder_file)
    _load(net.decoder, tensors_only(read_litemono_file(decoder_file)), decoder_file)
    return {k: encoder[k] for k in ENCODER_METADATA if k in encoder}


def load_pretrained(encoder: nn.Module, path: Path) -> int:
    """Copy an ImageNet-pretrained Lite-Mono classifier's weights (``--mypretrain``: the
    ``model`` entry of ``path``) into ``encoder`` as the reference does (module docstring).
    Returns the number of tensors copied.

    Raises:
        ValueError: unreadable file, no ``model`` dict, no key in common, or a shape that does
            not fit (another variant's file).
    """
    payload = read_litemono_file(path, "ImageNet-pretrained Lite-Mono file")
    model = payload.get("model")
    if not isinstance(model, dict):
        raise ValueError(f"{path}: no 'model' entry (not a Lite-Mono ImageNet checkpoint)")
    own = encoder.state_dict()
    chosen = {k: v for k, v in model.items() if k in own and not k.startswith("norm")}
    if not chosen:
        raise ValueError(f"{path}: no weight of the Lite-Mono encoder in its 'model' entry")
    bad = [k for k, v in chosen.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise ValueError(
            f"{path}: {bad[0]} is {tuple(chosen[bad[0]].shape)}, the encoder's "
            f"{tuple(own[bad[0]].shape)} (a file of another variant?)"
        )
    encoder.load_state_dict({**own, **chosen})
    return len(chosen)


def _load(module: nn.Module, state: dict[str, Tensor], path: Path) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:2])
        raise ValueError(f"{path} does not fit the {type(module).__name__}: {detail}") from exc
