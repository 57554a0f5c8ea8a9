"""Lite-Mono release folders -> depthkit checkpoints (``cli.py import litemono DIR --out CKPT``).

A release folder (Lite-Mono's ``lite-mono_640x192/`` ..., or a training run's ``models/
weights_N/``) holds ``encoder.pth`` (the encoder's state dict plus ``height``, ``width`` and
``use_stereo``), ``depth.pth`` and, from training runs, ``pose_encoder.pth`` + ``pose.pth``
(Monodepth2's separate ResNet pose network). The variant is read from the encoder's weights
(:func:`train.models.litemono_weights.infer_variant`; ``--variant`` overrides it, the weights
must then fit), the input size from ``height`` / ``width``, and the preset is the published
row of that variant and size (``litemono-m`` ... ``litemono-8m-1024-m``; other sizes take the
variant's 640x192 preset with the size changed).

The checkpoint is a weights-only ``depthkit-checkpoint/2`` file that ``eval``, ``predict``,
``export`` and ``train --init`` read like any other; without pose files it holds the depth
network only (everything but ``--resume``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from train.engine.checkpoint import TrainState, save_weights
from train.engine.config import apply_overrides
from train.eval.release import MONODEPTH2_POSE_FILES, encoder_size, release_folder
from train.methods import Networks, build_method, preset
from train.models.litemono_encoder import VARIANTS
from train.models.litemono_weights import (
    infer_variant,
    load_litemono_depth,
    read_litemono_file,
    tensors_only,
)
from train.models.monodepth2_weights import load_monodepth2_pose, read_monodepth2_file, resnet_depth

LITEMONO_FILES = ("encoder.pth", "depth.pth")


@dataclass
class LiteMonoImportReport:
    """What :func:`import_litemono` wrote."""

    out: str
    preset: str
    variant: str
    size: tuple[int, int]
    networks: list[str]
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        h, w = self.size
        line = (
            f"wrote {self.out}: method litemono, preset {self.preset}, {self.variant}, {h}x{w}, "
            f"networks: {', '.join(self.networks)}"
        )
        return "\n".join([line] + [f"note: {n}" for n in self.notes])


def release_preset(variant: str, height: int, width: int) -> str:
    """The preset of ``variant``'s published row at ``height x width`` (its 640x192 one for a
    size without a row)."""
    short = variant.removeprefix("lite-mono").removeprefix("-")
    stem = f"litemono-{short}-" if short else "litemono-"
    return stem + ("1024-m" if (height, width) == (320, 1024) else "m")


def import_litemono(
    weights_dir: str | Path,
    out: str | Path,
    variant: str | None = None,
    preset_name: str | None = None,
) -> LiteMonoImportReport:
    """Convert a Lite-Mono release folder into a checkpoint at ``out`` (module docstring).

    Raises:
        ValueError: not a folder, a file missing or unreadable, no ``height`` / ``width``,
            weights of no known variant or that do not fit ``variant``, a preset of another
            method.
    """
    folder = release_folder(weights_dir, LITEMONO_FILES, "Lite-Mono")
    encoder_file = folder / "encoder.pth"
    encoder = read_litemono_file(encoder_file)
    height, width = encoder_size(encoder, encoder_file, "Lite-Mono")
    try:
        found = infer_variant(tensors_only(encoder))
    except ValueError as e:
        if variant is None:
            raise ValueError(f"{encoder_file}: {e} (give --variant)") from e
        found = None
    notes = []
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"--variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if variant is not None and variant != found:
        notes.append(f"--variant {variant} given; the weights look like {found or 'no variant'}")
    chosen = variant or found
    assert chosen is not None
    base = preset(preset_name or release_preset(chosen, height, width))
    if base.method != "litemono":
        raise ValueError(f"preset {base.preset!r} is for method {base.method}, not litemono")
    if encoder.get("use_stereo") is True:
        notes.append("use_stereo=True in encoder.pth: evaluated with median scaling (mono) anyway")
    changes: dict[str, object] = {"height": height, "width": width, "pretrained": False}
    changes["variant"] = chosen
    pose_files = [folder / name for name in MONODEPTH2_POSE_FILES]
    has_pose = all(p.is_file() for p in pose_files)
    if has_pose:
        try:
            changes["pose_layers"] = resnet_depth(read_monodepth2_file(pose_files[0]))
        except ValueError as e:
            raise ValueError(f"{pose_files[0]}: {e}") from e
    config = apply_overrides(base, changes)
    nets = build_method(config).build_networks("cpu")
    load_litemono_depth(nets["depth"], encoder_file, folder / "depth.pth")
    saved = {"depth": nets["depth"]}
    if has_pose:
        load_monodepth2_pose(nets["pose"], *pose_files)
        saved["pose"] = nets["pose"]
    else:
        notes.append(
            "no pose_encoder.pth + pose.pth: depth-only checkpoint (eval, predict, export, "
            "train --init; the pose network starts from its initialisation)"
        )
    path = save_weights(out, config, Networks(saved), TrainState())
    return LiteMonoImportReport(
        str(path), config.preset, chosen, (height, width), list(saved), notes
    )
