"""Published weights -> depthkit checkpoints (``cli.py import monodepth2|featdepth``).

The checkpoint written is a weights-only ``depthkit-checkpoint/2`` file
(:func:`train.engine.checkpoint.save_weights`), so ``eval``, ``predict``, ``export`` and
``train --init`` read it like any other. A release without a pose network gives a depth-only
checkpoint: enough for everything but ``--resume`` (``train --init`` starts the pose network from
its usual initialisation).

* monodepth2: a release folder (``mono_640x192/`` ...) with ``encoder.pth`` (whose ``height``,
  ``width`` and ``use_stereo`` entries give the input size and the scaling), ``depth.pth`` and,
  optionally, ``pose_encoder.pth`` + ``pose.pth``. The ResNet depth is read from the encoder.
* featdepth: one mmcv checkpoint whose ``state_dict`` holds ``DepthEncoder.`` / ``DepthDecoder.``
  keys (:mod:`train.models.featdepth_weights`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from train.engine.checkpoint import TrainState, save_weights
from train.engine.config import TrainConfig, apply_overrides
from train.methods import Networks, depth_presets, method_class, preset
from train.models.featdepth_weights import depth_layers, featdepth_depth_state, read_featdepth_file
from train.models.monodepth2_weights import (
    load_monodepth2_depth,
    load_monodepth2_pose,
    read_monodepth2_file,
    resnet_depth,
)

MONODEPTH2_FILES = ("encoder.pth", "depth.pth")
MONODEPTH2_POSE_FILES = ("pose_encoder.pth", "pose.pth")


@dataclass
class ImportReport:
    """What an import wrote."""

    out: str
    method: str
    preset: str
    size: tuple[int, int]
    num_layers: int
    networks: list[str]
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        h, w = self.size
        lines = [
            f"wrote {self.out}: method {self.method}, preset {self.preset}, ResNet-"
            f"{self.num_layers}, {h}x{w}, networks: {', '.join(self.networks)}"
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def release_folder(weights_dir: str | Path, files: Sequence[str], who: str) -> Path:
    """``weights_dir`` when it is a folder holding every one of ``files``: a release of ``who``
    (e.g. ``"monodepth2"``, ``"Lite-Mono"``).

    Raises:
        ValueError: not a folder, or the files it lacks.
    """
    folder = Path(weights_dir)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder (give {who}'s release folder)")
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"{folder}: not a {who} release folder (no {', '.join(missing)})")
    return folder


def encoder_size(encoder: dict[str, object], path: Path, who: str) -> tuple[int, int]:
    """``(height, width)``: the training size a release's ``encoder.pth`` (read from ``path``)
    records, as monodepth2 and its descendants save it.

    Raises:
        ValueError: no integer ``height`` / ``width`` entries.
    """
    height, width = encoder.get("height"), encoder.get("width")
    if not isinstance(height, int) or not isinstance(width, int):
        raise ValueError(f"{path}: no height/width entries (not {who}'s encoder.pth)")
    return height, width


def import_monodepth2(
    weights_dir: str | Path, out: str | Path, preset_name: str = "monodepth2-m"
) -> ImportReport:
    """Convert a monodepth2 release folder into a checkpoint at ``out`` (module docstring).

    Raises:
        ValueError: not a folder, a file missing or of the wrong kind, a preset of another method,
            or a preset whose stereo setting contradicts ``encoder.pth``'s ``use_stereo``.
    """
    folder = release_folder(weights_dir, MONODEPTH2_FILES, "monodepth2")
    encoder_file = folder / "encoder.pth"
    encoder = read_monodepth2_file(encoder_file)
    height, width = encoder_size(encoder, encoder_file, "monodepth2")
    try:
        layers = resnet_depth(encoder)
    except ValueError as e:
        raise ValueError(f"{encoder_file}: {e}") from e
    base = preset(preset_name)
    if base.method != "monodepth2":
        raise ValueError(f"preset {preset_name!r} is for method {base.method}, not monodepth2")
    stereo = encoder.get("use_stereo")
    if isinstance(stereo, bool) and stereo != base.params.use_stereo:
        kind = "stereo" if stereo else "mono"
        raise ValueError(
            f"{encoder_file} is a {kind}-trained model (use_stereo={stereo}) but preset "
            f"{preset_name} is {'stereo' if base.params.use_stereo else 'mono'}: choose another "
            "--preset (monodepth2-m mono, monodepth2-s stereo, monodepth2-ms both)"
        )
    config = apply_overrides(
        base, {"height": height, "width": width, "pretrained": False, "num_layers": layers}
    )
    method = method_class(config.method)(config)
    nets = method.build_networks("cpu")
    load_monodepth2_depth(nets["depth"], encoder_file, folder / "depth.pth")
    saved = {"depth": nets["depth"]}
    notes = []
    pose_files = [folder / name for name in MONODEPTH2_POSE_FILES]
    present = [p.is_file() for p in pose_files]
    if "pose" in nets and all(present):
        load_monodepth2_pose(nets["pose"], *pose_files)
        saved["pose"] = nets["pose"]
    elif "pose" in nets:
        notes.append(
            "no pose_encoder.pth + pose.pth: depth-only checkpoint (eval, predict, export, "
            "train --init; the pose network starts from its initialisation)"
        )
    elif any(present):
        notes.append(f"preset {preset_name} has no pose network: the pose files were not used")
    return _write(out, config, saved, layers, notes)


def import_featdepth(
    checkpoint_file: str | Path, out: str | Path, preset_name: str | None = None
) -> ImportReport:
    """Convert a FeatDepth (mmcv) checkpoint into a ``featdepth`` checkpoint at ``out``.

    Raises:
        ValueError: the file is not a FeatDepth checkpoint.
    """
    path = Path(checkpoint_file)
    try:
        state = featdepth_depth_state(read_featdepth_file(path))
        layers = depth_layers(state)
    except ValueError as e:
        raise ValueError(f"{path}: {e}" if str(path) not in str(e) else str(e)) from e
    base = _featdepth_config(preset_name)
    overrides: dict[str, object] = {"pretrained": False}
    if "num_layers" in {f for f in base.params.__dataclass_fields__}:
        overrides["num_layers"] = layers
    config = apply_overrides(base, overrides)
    nets = method_class(config.method)(config).build_networks("cpu")
    for name, module in nets.named().items():
        if set(module.state_dict()) == set(state):
            try:
                module.load_state_dict(state)
            except RuntimeError as e:
                raise ValueError(f"{path}: weights do not fit the {name} network: {e}") from e
            return _write(out, config, {name: module}, layers, [])
    raise ValueError(f"{path}: no network of the featdepth method has FeatDepth's depth layout")


def _featdepth_config(preset_name: str | None) -> TrainConfig:
    """The given featdepth preset, else the first that predicts depth (not its auto-encoder)."""
    depth = depth_presets("featdepth")
    if preset_name is None:
        return preset(depth[0])
    config = preset(preset_name)
    if config.method != "featdepth":
        raise ValueError(f"preset {preset_name!r} is for method {config.method}")
    if preset_name not in depth:
        raise ValueError(
            f"preset {preset_name!r} trains no depth network; choose one of {', '.join(depth)}"
        )
    return config


def _write(
    out: str | Path, config: TrainConfig, saved: dict[str, nn.Module], layers: int, notes: list
) -> ImportReport:
    path = save_weights(out, config, Networks(saved), TrainState())
    return ImportReport(
        out=str(path),
        method=config.method,
        preset=config.preset,
        size=(config.height, config.width),
        num_layers=layers,
        networks=list(saved),
        notes=notes,
    )
