"""The training header: what a run computes, and where it departs from the published setting.

:func:`header_lines` gives the lines the trainer prints before the first step (rank 0 only):

1. the run: method, preset, store, sizes, device, processes, batch per process and global,
   precision, ``torch.compile``, SyncBN;
2. every choice that differs from the reference the preset stands for (monodepth2's published
   setting for the ``monodepth2-*`` presets, training.md section 4, kitti.md sections 1 and 4):
   settings changed from the preset, bf16 autocast and TF32 instead of float32,
   ``torch.compile``, the store's resize (the reference: PIL LANCZOS of the full frame) and image
   files (the reference reads the README's JPEGs by default), a stored size other than the
   network's, the on-device scale pyramid, the split (``monodepth2-s`` trains on
   ``eigen_full``), a global batch other than the reference's one-GPU batch and per-process
   batch norm under DDP;
3. the reference's own quirks the method reproduces on purpose
   (:meth:`~train.methods.Method.reference_notes`, e.g. ManyDepth's constant learning rate).

With ``exact`` (``--exact``: float32, no compile, no TF32; applied by
:class:`~train.engine.config.TrainConfig` and :func:`~train.engine.runtime.build_runtime`),
:func:`exact_warnings` says why the store cannot be vouched for: made without
``--resize lanczos``, from other image files than the reference's, or at another size than
the network's. Those lines start with ``warning:``.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import PurePath
from typing import Any

import torch

from pipelines.store import Store
from train.engine.config import TrainConfig
from train.engine.runtime import Runtime
from train.methods import method_class

# The split folder each KITTI preset trains on in the reference (training.md section 4).
REFERENCE_SPLITS = {
    "monodepth2-m": "eigen_zhou",
    "monodepth2-s": "eigen_full",
    "monodepth2-ms": "eigen_zhou",
    "manydepth-m": "eigen_zhou",
    "manydepth-hr-m": "eigen_zhou",
}
# What the reference's loader reads for each dataset: image files and resize (kitti.md 1, 4).
REFERENCE_IMAGES = {"kitti-raw": ("jpg", "lanczos")}
REFERENCE_GPUS = 1  # every published monodepth2 setting trains on one GPU
# Settings that change how a run goes, not what it computes.
RUN_ONLY = {
    "preset", "workers", "shuffle_chunks", "device", "amp", "channels_last", "compile",
    "log_every", "val_batches", "checkpoint_every", "keep_epochs", "check_dataset", "exact",
    "sync_bn", "seed", "deterministic",
}  # fmt: skip


def store_recipe(store: Store) -> dict[str, Any]:
    """How the store's images were made: ``resize`` (area / lanczos), ``images`` (png / jpg /
    mixed), ``size`` (H, W) and ``split`` (the split folder's name, or None).

    Stores written before ``prepare-kitti`` recorded these were always INTER_AREA from PNG.
    """
    camera, source = store.camera or {}, store.source or {}
    split_file = source.get("split_file")
    return {
        "resize": camera.get("resize_method", "area"),
        "images": (source.get("images") or {}).get("ext", "png"),
        "size": tuple(store.image_size),
        "split": PurePath(split_file).parent.name if split_file else None,
    }


def exact_warnings(config: TrainConfig, store: Store) -> list[str]:
    """Why ``--exact`` cannot vouch for ``store`` (empty when it can, or when not exact)."""
    if not config.exact:
        return []
    reference = REFERENCE_IMAGES.get(store.dataset)
    if reference is None:
        return [
            f"warning: --exact: no reference recipe for {store.dataset} stores; "
            "only float32 and eager mode are guaranteed"
        ]
    images, resize = reference
    recipe = store_recipe(store)
    out = []
    if recipe["resize"] != resize:
        out.append(
            f"warning: --exact: the store was resized with {recipe['resize']} "
            f"(cv2.INTER_AREA), the reference with PIL LANCZOS: prepare it again with "
            f"prepare-kitti --resize {resize}"
        )
    if recipe["images"] != images:
        out.append(
            f"warning: --exact: the store was made from {recipe['images']} files, the reference "
            f"reads .{images} (monodepth2's README: quality 92, 4:2:0 chroma): prepare-kitti "
            f"--image-ext {images} on a converted tree"
        )
    if recipe["size"] != (config.height, config.width):
        out.append(
            f"warning: --exact: the store is {_size(recipe['size'])}, the network "
            f"{config.height}x{config.width}: the images are resized again on the device "
            f"(bilinear), the reference resizes the full frame once (prepare-kitti --size "
            f"{config.height}x{config.width})"
        )
    return out


def deviations(config: TrainConfig, store: Store, runtime: Runtime, world_size: int) -> list[str]:
    """Every way this run differs from the reference setting of its preset (module docstring)."""
    out = _changed_settings(config)
    if runtime.amp:
        out.append("bf16 autocast (reference: float32; --exact or --no-amp)")
    elif runtime.device.type == "cuda" and torch.backends.cudnn.allow_tf32:
        out.append("convolutions may run in TF32 (reference: float32; --exact)")
    if config.compile:
        out.append("torch.compile (reference: eager; --exact or --no-compile)")
    reference = REFERENCE_IMAGES.get(store.dataset)
    recipe = store_recipe(store)
    if reference is not None:
        images, resize = reference
        if recipe["resize"] != resize:
            out.append(
                "store resized with cv2.INTER_AREA (reference: PIL LANCZOS; prepare-kitti "
                "--resize lanczos)"
            )
        if recipe["images"] != images:
            out.append(
                f"store made from {recipe['images']} files (reference: .{images}, quality 92, "
                "4:2:0)"
            )
    if recipe["size"] != (config.height, config.width):
        out.append(
            f"store images {_size(recipe['size'])} resized to {config.height}x{config.width} "
            "on the device, bilinear (reference: one resize of the full frame)"
        )
    scales = runtime.augment.config.scales
    if scales > 1:
        out.append(
            f"scales 1-{scales - 1} made on the device by chained bilinear antialiased resizes "
            "(reference: chained PIL LANCZOS)"
        )
    split = REFERENCE_SPLITS.get(config.preset)
    if split is not None and recipe["split"] not in (None, split):
        out.append(f"trained on split {recipe['split']} (reference for {config.preset}: {split})")
    global_batch = config.batch_size * world_size
    reference_batch = _preset_value(config, "batch_size")
    if world_size > REFERENCE_GPUS and reference_batch is not None:
        if global_batch != reference_batch:
            out.append(
                f"global batch {global_batch} = {config.batch_size} per process x {world_size} "
                f"(reference: {reference_batch} on one GPU; --batch-size "
                f"{reference_batch // world_size} per process keeps it)"
            )
        if not config.sync_bn:
            out.append(
                f"batch norm statistics over {config.batch_size} samples per process "
                f"(reference: over the batch of {reference_batch}; --sync-bn)"
            )
    return out


def header_lines(
    config: TrainConfig, store: Store, runtime: Runtime, world_size: int = 1
) -> list[str]:
    """The training header (module docstring) of a run on ``world_size`` processes."""
    precision = "bf16 autocast" if runtime.amp else "float32"
    if config.exact:
        precision += " (--exact: no TF32, no compile)"
    bn = "SyncBN" if config.sync_bn and world_size > 1 else "per-process BN"
    lines = [
        f"training {config.method} (preset {config.preset}) on {store.path}: "
        f"{store.n_samples:,} samples, stored {_size(store.image_size)}, network "
        f"{config.height}x{config.width}",
        f"device {runtime.device}, {world_size} process(es); --batch-size {config.batch_size} "
        f"per process, global batch {config.batch_size * world_size}; {precision}; "
        f"compile {'on' if config.compile else 'off'}; {bn if world_size > 1 else 'BN'}",
    ]
    found = deviations(config, store, runtime, world_size)
    if found:
        lines.append(f"differs from the reference setting of {config.preset}:")
        lines += [f"  - {item}" for item in found]
    else:
        lines.append(f"matches the reference setting of {config.preset} in every choice checked")
    notes = method_class(config.method)(config).reference_notes()
    if notes:
        lines.append("reproduces these choices of the reference:")
        lines += [f"  - {item}" for item in notes]
    return lines + exact_warnings(config, store)


def _changed_settings(config: TrainConfig) -> list[str]:
    """Settings that differ from the preset (which holds the reference values)."""
    from train.methods import presets

    base = presets().get(config.preset)
    if base is None or base.method != config.method:
        return [f"no preset {config.preset!r} of method {config.method} to compare with"]
    out = []
    for f in fields(config):
        if f.name in RUN_ONLY or f.name == "params":
            continue
        new, old = getattr(config, f.name), getattr(base, f.name)
        if new != old:
            out.append(f"{f.name} {new!r} (reference: {old!r})")
    new_p, old_p = asdict(config.params), asdict(base.params)
    out += [
        f"{key} {new_p[key]!r} (reference: {old_p[key]!r})"
        for key in new_p
        if new_p[key] != old_p.get(key)
    ]
    return out


def _preset_value(config: TrainConfig, name: str) -> Any:
    from train.methods import presets

    base = presets().get(config.preset)
    return None if base is None else getattr(base, name)


def _size(size: tuple[int, ...] | list[int]) -> str:
    return f"{size[0]}x{size[1]}"
