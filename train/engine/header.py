"""The training header: what a run computes, and where it departs from the published setting.

:func:`header_lines` gives the lines the trainer prints before the first step (rank 0 only):

1. the run: method, preset, store, sizes, device, processes, batch per process and global,
   precision, ``torch.compile``, SyncBN;
2. every choice that differs from the reference the preset stands for, as its method describes it
   (:meth:`~train.methods.Method.reference`: image files, resize, split, GPUs and batch per GPU,
   batch norm; :meth:`~train.methods.Method.store_deviations`: e.g. the hints' size, the masks'
   recipe): settings changed from the preset, bf16 autocast and TF32 instead of float32,
   ``torch.compile``, the store's resize and image files (KITTI stores), a stored size other
   than the network's, the on-device scale pyramid, the split, the global batch and the samples
   batch norm sees against the reference's GPUs, and the differences the method always has;
3. the reference's own quirks the method reproduces on purpose
   (:meth:`~train.methods.Method.reference_notes`, e.g. ManyDepth's constant learning rate).

With ``exact`` (``--exact``: float32, no compile, no TF32; applied by
:class:`~train.engine.config.TrainConfig` and :func:`~train.engine.runtime.build_runtime`),
:func:`exact_warnings` says why the store cannot be vouched for: made with another resize or
from other image files than the reference's, or at another size than the network's. Those lines
start with ``warning:``.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import PurePath
from typing import Any

import torch

from pipelines.loader.dataset import EXTRA_ARRAYS
from pipelines.store import Store
from train.engine.config import TrainConfig
from train.engine.runtime import Runtime
from train.methods import Method, Networks, Reference, build_method

# Settings that change how a run goes, not what it computes.
RUN_ONLY = {
    "preset", "workers", "shuffle_chunks", "device", "amp", "channels_last", "compile",
    "log_every", "val_batches", "checkpoint_every", "checkpoint_minutes", "keep_epochs",
    "check_dataset", "exact", "sync_bn", "seed", "deterministic", "max_steps",
}  # fmt: skip
IMAGES_CHECKED = "kitti-raw"  # the stores whose image files and resize a Reference describes
RESIZE_NAMES = {"lanczos": "PIL LANCZOS", "area": "cv2.INTER_AREA"}


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
    reference = build_method(config).reference()
    if reference is None or reference.images is None or store.dataset != IMAGES_CHECKED:
        return [
            f"warning: --exact: no reference recipe for {store.dataset} stores; "
            "only float32 and eager mode are guaranteed"
        ]
    recipe = store_recipe(store)
    out = []
    if recipe["resize"] != reference.resize:
        out.append(
            f"warning: --exact: the store was resized with {recipe['resize']} "
            f"({RESIZE_NAMES.get(recipe['resize'], recipe['resize'])}), the reference with "
            f"{RESIZE_NAMES.get(reference.resize or '', reference.resize)}: prepare it again with "
            f"prepare-kitti --resize {reference.resize}"
        )
    if recipe["images"] != reference.images:
        out.append(
            f"warning: --exact: the store was made from {recipe['images']} files, the reference "
            f"reads .{reference.images}{_image_note(reference.images)}: prepare-kitti "
            f"--image-ext {reference.images}"
            + (" on a converted tree" if reference.images == "jpg" else "")
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
    method = build_method(config)
    reference = method.reference()
    out = _changed_settings(config) + _precision(config, runtime)
    recipe = store_recipe(store)
    if reference is not None and store.dataset == IMAGES_CHECKED:
        out += _store_images(reference, recipe)
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
    if reference is None:
        return out + method.store_deviations(store)
    if reference.split is not None and recipe["split"] not in (None, reference.split):
        out.append(
            f"trained on split {recipe['split']} (reference for {config.preset}: {reference.split})"
        )
    out += method.store_deviations(store) + _batches(config, reference, world_size)
    return out + list(reference.notes)


def _precision(config: TrainConfig, runtime: Runtime) -> list[str]:
    out = []
    if runtime.amp:
        out.append("bf16 autocast (reference: float32; --exact or --no-amp)")
    elif runtime.device.type == "cuda" and torch.backends.cudnn.allow_tf32:
        out.append("convolutions may run in TF32 (reference: float32; --exact)")
    if config.compile:
        out.append("torch.compile (reference: eager; --exact or --no-compile)")
    return out


def _store_images(reference: Reference, recipe: dict[str, Any]) -> list[str]:
    out = []
    if reference.resize is not None and recipe["resize"] != reference.resize:
        out.append(
            f"store resized with {RESIZE_NAMES.get(recipe['resize'], recipe['resize'])} "
            f"(reference: {RESIZE_NAMES.get(reference.resize, reference.resize)}; prepare-kitti "
            f"--resize {reference.resize})"
        )
    if reference.images is not None and recipe["images"] != reference.images:
        out.append(
            f"store made from {recipe['images']} files (reference: .{reference.images}"
            f"{_image_note(reference.images)})"
        )
    return out


def _image_note(images: str) -> str:
    return ", quality 92, 4:2:0" if images == "jpg" else ""


def _batches(config: TrainConfig, reference: Reference, world_size: int) -> list[str]:
    """The global batch, and the samples batch norm sees, against the reference's GPUs."""
    per_gpu = reference.batch_per_gpu or _preset_value(config, "batch_size")
    if per_gpu is None:
        return []
    gpus, global_batch = reference.gpus, config.batch_size * world_size
    total = per_gpu * gpus
    out = []
    if global_batch != total:
        where = "on one GPU" if gpus == 1 else f"= {per_gpu} per GPU x {gpus} GPUs"
        keep = total // world_size
        hint = f"; --batch-size {keep} per process keeps it" if keep * world_size == total else ""
        out.append(
            f"global batch {global_batch} = {config.batch_size} per process x {world_size} "
            f"(reference: {total} {where}{hint})"
        )
    synced = config.sync_bn and world_size > 1
    ours = global_batch if synced else config.batch_size
    theirs = total if reference.sync_bn or gpus == 1 else per_gpu
    if ours != theirs:
        hint = "; --sync-bn" if not synced and world_size > 1 and global_batch == theirs else ""
        scope = "" if synced else " per process"
        each = " per GPU" if theirs == per_gpu and gpus > 1 else ""
        out.append(
            f"batch norm statistics over {ours} samples{scope} (reference: {theirs}{each}{hint})"
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
        f"device {runtime.device}{_fallback(config, runtime)}, {world_size} "
        f"process{'es' * (world_size != 1)}; --batch-size {config.batch_size} "
        f"per process, global batch {config.batch_size * world_size}; {precision}; "
        f"compile {'on' if config.compile else 'off'}; {bn if world_size > 1 else 'BN'}",
    ]
    found = deviations(config, store, runtime, world_size)
    if found:
        lines.append(f"differs from the reference setting of {config.preset}:")
        lines += [f"  - {item}" for item in found]
    else:
        lines.append(f"matches the reference setting of {config.preset} in every choice checked")
    notes = build_method(config).reference_notes()
    if notes:
        lines.append("reproduces these choices of the reference:")
        lines += [f"  - {item}" for item in notes]
    return lines + exact_warnings(config, store)


def validation_note(method: Method, store: Store, with_metrics: bool = True) -> str | None:
    """Why validation on ``store`` will lack its loss or its depth metrics (None when it has
    both): printed once at start-up instead of an empty line every epoch."""
    request = method.loader_request()
    missing = [EXTRA_ARRAYS[e] for e in request.extras if not store.has(EXTRA_ARRAYS[e])]
    reasons = []
    if "stereo" in request.frames and store.views < 2:
        reasons.append(
            f"no loss: {method.config.preset} needs a stereo pair, the store has one view"
        )
    elif missing:
        reasons.append(f"no loss: the store has no {', '.join(missing)}, which it needs")
    if method.predicts_depth and not store.has("gt_depth"):
        reasons.append("no depth metrics: the store has no ground truth (gt_depth)")
    elif method.predicts_depth and not with_metrics:
        reasons.append("no depth metrics: no scorer given (the train command gives one)")
    if not reasons:
        return None
    nothing = " nothing to validate:" if len(reasons) == 2 else ""
    return f"validation on {store.path}:{nothing} " + "; ".join(reasons)


def parameter_line(nets: Networks) -> str:
    """Parameters of every network (with its ``encoder`` / ``decoder`` parts where it has both),
    e.g. ``parameters: depth 3,074,747 (encoder 2,848,120 + decoder 226,627), pose ...``."""
    parts = []
    for name, module in nets.named().items():
        text = f"{name} {_count(module):,}"
        encoder, decoder = getattr(module, "encoder", None), getattr(module, "decoder", None)
        if isinstance(encoder, torch.nn.Module) and isinstance(decoder, torch.nn.Module):
            text += f" (encoder {_count(encoder):,} + decoder {_count(decoder):,})"
        parts.append(text)
    return "parameters: " + ", ".join(parts)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


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


def _fallback(config: TrainConfig, runtime: Runtime) -> str:
    """Say so when no device was asked for and there is no CUDA."""
    return " (no CUDA found)" if config.device is None and runtime.device.type == "cpu" else ""


def _preset_value(config: TrainConfig, name: str) -> Any:
    from train.methods import presets

    base = presets().get(config.preset)
    return None if base is None else getattr(base, name)


def _size(size: tuple[int, ...] | list[int]) -> str:
    return f"{size[0]}x{size[1]}"
