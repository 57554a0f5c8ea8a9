"""Named presets: a method with the reference hyper-parameters of one published setting.

Monodepth2 (training.md section 4): ResNet-18 depth and pose networks, 192x640, batch 12, Adam
1e-4, 20 epochs, learning rate x0.1 from epoch 15 (the reference's behaviour under PyTorch 0.4.1),
depth 0.1-100, smoothness 1e-3, scales 0-3.
"""

from __future__ import annotations

from train.engine.config import TrainConfig
from train.methods import Monodepth2Params, SegDepthParams

PRESETS: dict[str, TrainConfig] = {
    "monodepth2-m": TrainConfig(
        preset="monodepth2-m", params=Monodepth2Params(frame_ids=(0, -1, 1))
    ),
    "monodepth2-s": TrainConfig(preset="monodepth2-s", params=Monodepth2Params(frame_ids=(0, "s"))),
    "monodepth2-ms": TrainConfig(
        preset="monodepth2-ms", params=Monodepth2Params(frame_ids=(0, -1, 1, "s"))
    ),
    # Indoor self-supervised setting (P2Net / StructDepth, nyuv2.md 7.5): 288x384, 0.1..10 m,
    # the store's own intrinsics (NYU's principal point is not centred).
    "monodepth2-nyu-m": TrainConfig(
        preset="monodepth2-nyu-m",
        dataset="nyu-raw",
        height=288,
        width=384,
        params=Monodepth2Params(frame_ids=(0, -1, 1), max_depth=10.0, intrinsics="store"),
    ),
    # SegDepth (training.md 6): monodepth2-m plus the U-Net on the disparity, masks from `masks`.
    "segdepth-m": TrainConfig(
        preset="segdepth-m", method="segdepth", params=SegDepthParams(frame_ids=(0, -1, 1))
    ),
    "segdepth-nyu-m": TrainConfig(
        preset="segdepth-nyu-m",
        method="segdepth",
        dataset="nyu-raw",
        height=288,
        width=384,
        params=SegDepthParams(frame_ids=(0, -1, 1), max_depth=10.0, intrinsics="store"),
    ),
    # Depth Hints (training.md 7): Monodepth2 stereo with the hint term (hint_depth from `hints`);
    # the paper's recipe: eigen_full stores, LR x0.1 every 5 epochs, no smoothness term.
    "depthhints-s": TrainConfig(
        preset="depthhints-s",
        scheduler_step=5,
        params=Monodepth2Params(frame_ids=(0, "s"), hints=True, disparity_smoothness=0.0),
    ),
    "depthhints-ms": TrainConfig(
        preset="depthhints-ms",
        scheduler_step=5,
        params=Monodepth2Params(frame_ids=(0, -1, 1, "s"), hints=True, disparity_smoothness=0.0),
    ),
}


def preset(name: str) -> TrainConfig:
    """The preset called ``name``; ValueError listing the presets otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def describe_presets() -> str:
    """One line per preset: name, method, dataset, input size (for ``train --help``)."""
    return "\n".join(
        f"{name}: {c.method} on {c.dataset}, {c.height}x{c.width}" for name, c in PRESETS.items()
    )
