"""Named presets: a method with the reference hyper-parameters of one published setting.

Monodepth2 (training.md section 4): ResNet-18 depth and pose networks, 192x640, batch 12, Adam
1e-4, 20 epochs, learning rate x0.1 from epoch 15 (the reference's behaviour under PyTorch 0.4.1),
depth 0.1-100, smoothness 1e-3, scales 0-3.

DenseDepth (training.md section 8): DenseNet-169 + Keras decoder, 480x640, batch 8, Adam (AMSGrad)
1e-4, 20 epochs at a constant learning rate (the Keras ReduceLROnPlateau never goes below 9e-5),
mirror p = 0.5, channel swap p = 0.25, no colour jitter; on the labeled set's in-painted depths,
or on a raw store prepared with ``prepare-nyu --fill`` (the paper's 50K pairs).
"""

from __future__ import annotations

from train.engine.config import TrainConfig
from train.methods import DenseDepthParams, Monodepth2Params, SegDepthParams

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
    # DenseDepth (supervised, training.md 8): labeled_train.zarr, or a raw store made with --fill.
    **{
        name: TrainConfig(
            preset=name,
            method="densedepth",
            dataset=dataset,
            height=480,
            width=640,
            batch_size=8,
            epochs=20,
            scheduler_step=20,
            scheduler_gamma=1.0,
            jitter_prob=0.0,
            flip_prob=0.5,
            params=DenseDepthParams(),
        )
        for name, dataset in (("densedepth-nyu", "nyu-labeled"), ("densedepth-nyu-raw", "nyu-raw"))
    },
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
