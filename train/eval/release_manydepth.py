"""ManyDepth's released weights -> a depthkit checkpoint (``cli.py import manydepth``).

A release folder (``KITTI_MR``, ``KITTI_HR``, ...) holds ``encoder.pth`` (the matching encoder,
plus ``height``, ``width``, ``min_depth_bin``, ``max_depth_bin``), ``depth.pth``,
``pose_encoder.pth``, ``pose.pth`` and the single-frame teacher's ``mono_encoder.pth`` +
``mono_depth.pth`` (:mod:`train.models.manydepth_weights`; the unused ``prematching_conv`` and
the stored back-projection grids are dropped). The ResNet depth and the number of depth bins are
read from the encoder; the input size and the depth range from its entries. Without the teacher
files the checkpoint still evaluates, predicts and exports the two-frame model (not
``--set teacher=true``). The result is a weights-only checkpoint
(:func:`train.engine.checkpoint.save_weights`) of the ``manydepth`` method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from train.engine.checkpoint import TrainState, save_weights
from train.engine.config import apply_overrides
from train.eval.release import encoder_size, release_folder
from train.methods import Networks, method_class, preset
from train.models.manydepth_weights import load_manydepth_depth, matching_layers
from train.models.monodepth2_weights import (
    load_monodepth2_depth,
    load_monodepth2_pose,
    read_monodepth2_file,
    resnet_depth,
)

REQUIRED = ("encoder.pth", "depth.pth", "pose_encoder.pth", "pose.pth")
TEACHER = ("mono_encoder.pth", "mono_depth.pth")


@dataclass
class ManyDepthImport:
    """What :func:`import_manydepth` wrote."""

    out: str
    preset: str
    size: tuple[int, int]
    num_layers: int
    depth_range: tuple[float, float]
    networks: list[str]
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        h, w = self.size
        lo, hi = self.depth_range
        lines = [
            f"wrote {self.out}: method manydepth, preset {self.preset}, ResNet-{self.num_layers} "
            f"matching encoder, {h}x{w}, depth bins {lo:.4g}..{hi:.4g}, networks: "
            f"{', '.join(self.networks)}"
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def import_manydepth(
    weights_dir: str | Path, out: str | Path, preset_name: str = "manydepth-m"
) -> ManyDepthImport:
    """Convert a ManyDepth release folder into a checkpoint at ``out`` (module docstring).

    Raises:
        ValueError: not a folder, a file missing or of the wrong kind, or a preset of another
            method.
    """
    folder = release_folder(weights_dir, REQUIRED, "ManyDepth")
    base = preset(preset_name)
    if base.method != "manydepth":
        raise ValueError(f"preset {preset_name!r} is for method {base.method}, not manydepth")
    encoder_file = folder / "encoder.pth"
    encoder = read_monodepth2_file(encoder_file)
    height, width = encoder_size(encoder, encoder_file, "ManyDepth")
    try:
        layers = matching_layers(encoder)
    except ValueError as e:
        raise ValueError(f"{encoder_file}: {e}") from e
    bins = int(encoder["reduce_conv.0.weight"].shape[1]) - (64 if layers <= 34 else 256)  # type: ignore[union-attr]
    changes = {"height": height, "width": width, "pretrained": False, "num_layers": layers}
    config = apply_overrides(base, changes | {"num_depth_bins": bins})
    nets = method_class("manydepth")(config).build_networks("cpu")
    load_manydepth_depth(nets["depth"], encoder_file, folder / "depth.pth")
    load_monodepth2_pose(nets["pose"], folder / "pose_encoder.pth", folder / "pose.pth")
    saved: dict[str, nn.Module] = {"depth": nets["depth"], "pose": nets["pose"]}
    notes = []
    if all((folder / name).is_file() for name in TEACHER):
        mono = read_monodepth2_file(folder / TEACHER[0])
        if resnet_depth(mono) != 18:
            raise ValueError(f"{folder / TEACHER[0]}: the teacher is a ResNet-18 in ManyDepth")
        load_monodepth2_depth(nets["teacher"], *(folder / name for name in TEACHER))
        saved["teacher"] = nets["teacher"]
    else:
        notes.append(
            "no mono_encoder.pth + mono_depth.pth: the checkpoint has no teacher (--set "
            "teacher=true and train --init start it afresh)"
        )
    path = save_weights(out, config, Networks(saved), TrainState())
    encoder_net = nets["depth"].encoder
    depth_range = (float(encoder_net.min_depth_bin), float(encoder_net.max_depth_bin))
    if "min_depth_bin" not in encoder:
        notes.append("encoder.pth has no depth bins: the trainer's start values 0.1..10 are used")
    return ManyDepthImport(
        str(path), preset_name, (height, width), layers, depth_range, list(saved), notes
    )
