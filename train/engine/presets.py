"""Named presets: a method with the reference hyper-parameters of one published setting.

Monodepth2 (training.md section 4): ResNet-18 depth and pose networks, 192x640, batch 12, Adam
1e-4, 20 epochs, learning rate x0.1 from epoch 15 (the reference's behaviour under PyTorch 0.4.1),
depth 0.1-100, smoothness 1e-3, scales 0-3.

FeatDepth (training.md section 5): stage 1 ``featdepth-ae`` (ResNet-50 FeatureNet, 256x800, 5
images, 30 epochs, LR x0.5 at epochs 10 and 20) and ``featdepth-ae-nyu`` (the same on an NYU raw
store at 192x480); stage 2 ``featdepth-m`` / ``featdepth-ms`` (ResNet-50 depth, ResNet-18 pose,
320x1024, 2 images per process, 40 epochs, LR x0.5 at 20 and 30; with the stereo source no
automask, no disparity normalisation, baseline 0.015, evaluation x36). Both: Adam 1e-4, clipping
at 35, 500 warm-up steps from lr/3. The seed study's combination, Monodepth2 unchanged plus the
feature-metric term (weight 1e-3, ResNet-50 extractor): ``monodepth2-fm-m``, ``monodepth2-fm-s``,
``monodepth2-fm-nyu-m`` (NYU raw at 192x480 as in the study). Stage-2 presets name their stage-1
checkpoint with ``--set extractor=RUN/checkpoints/last.pt``.

DenseDepth (training.md section 8): DenseNet-169 + Keras decoder, 480x640, batch 8, Adam (AMSGrad)
1e-4, 20 epochs at a constant learning rate (the Keras ReduceLROnPlateau never goes below 9e-5),
mirror p = 0.5, channel swap p = 0.25, no colour jitter; on the labeled set's in-painted depths,
or on a raw store prepared with ``prepare-nyu --fill`` (the paper's 50K pairs).
"""

from __future__ import annotations

from train.engine.config import TrainConfig
from train.methods import (
    DenseDepthParams,
    FeatDepthParams,
    Monodepth2Params,
    SegDepthParams,
    method_class,
)
from train.methods.manydepth import manydepth_presets

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
    # FeatDepth: stage 1 (the auto-encoder), then stage 2 (depth with the frozen extractor).
    **{
        name: TrainConfig(
            preset=name,
            method="featdepth",
            dataset=dataset,
            height=height,
            width=width,
            batch_size=5,
            epochs=30,
            params=FeatDepthParams(stage="autoencoder", lr_steps=(10, 20)),
        )
        for name, dataset, height, width in (
            ("featdepth-ae", "kitti-raw", 256, 800),
            ("featdepth-ae-nyu", "nyu-raw", 192, 480),
        )
    },
    **{
        name: TrainConfig(
            preset=name,
            method="featdepth",
            height=320,
            width=1024,
            batch_size=2,
            epochs=40,
            params=FeatDepthParams(stage="depth", frame_ids=frames, automask=mono, disp_norm=mono),
        )
        for name, frames, mono in (
            ("featdepth-m", (0, -1, 1), True),
            ("featdepth-ms", (0, -1, 1, "s"), False),
        )
    },
    # The seed study: Monodepth2 unchanged plus FeatDepth's feature-metric term.
    "monodepth2-fm-m": TrainConfig(
        preset="monodepth2-fm-m", params=Monodepth2Params(frame_ids=(0, -1, 1), feature_metric=1e-3)
    ),
    "monodepth2-fm-s": TrainConfig(
        preset="monodepth2-fm-s", params=Monodepth2Params(frame_ids=(0, "s"), feature_metric=1e-3)
    ),
    "monodepth2-fm-nyu-m": TrainConfig(
        preset="monodepth2-fm-nyu-m",
        dataset="nyu-raw",
        height=192,
        width=480,
        params=Monodepth2Params(
            frame_ids=(0, -1, 1), max_depth=10.0, intrinsics="store", feature_metric=1e-3
        ),
    ),
    **manydepth_presets(),  # temporary, until issue 20 (presets live in train/methods/manydepth.py)
}


def preset(name: str) -> TrainConfig:
    """The preset called ``name``; ValueError listing the presets otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def depth_presets(method: str) -> list[str]:
    """The presets of ``method`` that train a depth network (not an auto-encoder stage), in
    registry order."""
    return [
        name
        for name, c in PRESETS.items()
        if c.method == method and method_class(method)(c).predicts_depth
    ]


def describe_presets() -> str:
    """One line per preset: name, method, dataset, input size (for ``train --help``)."""
    return "\n".join(
        f"{name}: {c.method} on {c.dataset}, {c.height}x{c.width}" for name, c in PRESETS.items()
    )
