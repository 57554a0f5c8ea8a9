"""The data commands: synthetic worlds, store inspection, preparation and the store passes.

``synth``, ``info``, ``masks``, ``hints``, ``prepare-kitti`` and ``prepare-nyu``; ``cli.py`` adds
them to its app. Each parses options, calls one library function of :mod:`pipelines` and prints.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer


# --------------------------------------------------------------------------- synthetic worlds
class SynthKind(str, Enum):
    nyu_raw = "nyu-raw"
    nyu_labeled = "nyu-labeled"
    kitti = "kitti"


def synth(
    kind: SynthKind = typer.Argument(..., help="Which world: nyu-raw, nyu-labeled or kitti."),
    out: Path = typer.Argument(..., help="Output folder (created; refused if not empty)."),
    frames: int = typer.Option(None, "--frames", "-n", help="Frames per scene / drive (>= 4)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same files."),
    corrupt: bool = typer.Option(
        False, "--corrupt", help="nyu-raw: also write truncated / wrong-size files."
    ),
    truth: bool = typer.Option(
        True, "--truth/--no-truth", help="Save true depth and poses as truth.npz."
    ),
    masks: bool = typer.Option(
        False,
        "--masks",
        help="kitti: also save the true object masks as masks.npz (prepare-kitti --masks truth "
        "puts them into the stores: SegDepth without DeepLabv3 weights).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a world written here before (nothing else)."
    ),
) -> None:
    """Write a small synthetic dataset in the real raw file formats, with known ground truth."""
    from pipelines.synth import write_world

    summary = write_world(
        kind.value, out, frames=frames, seed=seed, corrupt=corrupt, truth=truth, masks=masks,
        overwrite=overwrite,
    )  # fmt: skip
    typer.echo(summary)


class SegArch(str, Enum):
    mobilenet_v3_large = "mobilenet_v3_large"
    resnet50 = "resnet50"
    resnet101 = "resnet101"


class MaskRecipe(str, Enum):
    default = "default"
    segdepth = "segdepth"


def masks(
    store: str = typer.Argument(..., help="Store path or fsspec URL (complete)."),
    recipe: MaskRecipe = typer.Option(
        MaskRecipe.default,
        "--recipe",
        help="default: the store's RGB images; segdepth: SegDepth's create_segmentation_masks.py "
        "from the raw PNGs (BGR, bilinear 640x192; needs --kitti-root and a 192x640 store).",
    ),
    kitti_root: Path = typer.Option(
        None, "--kitti-root", help="KITTI raw root of the store (--recipe segdepth)."
    ),
    arch: SegArch = typer.Option(SegArch.mobilenet_v3_large, "--arch", help="Backbone."),
    seg_weights: Path = typer.Option(
        None,
        "--seg-weights",
        help="Weights file: a torchvision DeepLabv3 state dict of --arch (default: "
        "COCO-with-VOC-labels weights from the torch hub cache).",
    ),
    batch_size: int = typer.Option(
        None,
        "--batch-size",
        help="Images per forward pass (default 16; segdepth: 1, the reference's arithmetic).",
    ),
    device: str = typer.Option(
        None, "--device", help="cuda, cuda:1 or cpu (default: cuda when available, else the CPU)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute every chunk."),
    truth: Path = typer.Option(
        None,
        "--truth",
        help="A synthetic KITTI world written by `synth kitti --masks`: its true masks, no model.",
    ),
) -> None:
    """Fill the store's seg array with DeepLabv3 VOC class indices (resumable)."""
    from pipelines.store.options import check_count

    if batch_size is None:
        batch_size = 1 if recipe is MaskRecipe.segdepth else 16
    check_count("--batch-size", batch_size)
    if truth is not None:
        from pipelines.passes.true_masks import fill_true_masks

        typer.echo(str(fill_true_masks(store, truth, progress=True, overwrite=overwrite)))
        return
    from pipelines.passes.masks import compute_masks, mask_device

    weights = "default" if seg_weights is None else seg_weights
    resolved, note = mask_device(device)
    if note:
        typer.echo(note, err=True)
    how = {"batch_size": batch_size, "device": resolved, "overwrite": overwrite}
    if recipe is MaskRecipe.segdepth:
        from pipelines.passes.segdepth_masks import SEGDEPTH_ARCH, compute_segdepth_masks

        if kitti_root is None:
            raise ValueError("--recipe segdepth reads the raw PNGs: pass --kitti-root ROOT")
        if arch.value != SEGDEPTH_ARCH:
            raise ValueError(f"--recipe segdepth uses DeepLabv3 {SEGDEPTH_ARCH}, not {arch.value}")
        typer.echo(str(compute_segdepth_masks(store, kitti_root, weights, **how)))
        return
    if kitti_root is not None:
        raise ValueError("--kitti-root is for --recipe segdepth (the default reads the store)")
    typer.echo(str(compute_masks(store, arch.value, weights, **how)))


# ------------------------------------------------------------------------------- prepare-kitti
class KittiGT(str, Enum):
    auto = "auto"
    velodyne = "velodyne"
    improved = "improved"


class MaskKind(str, Enum):
    none = "none"
    deeplabv3 = "deeplabv3"


class KittiMaskKind(str, Enum):
    none = "none"
    deeplabv3 = "deeplabv3"
    truth = "truth"


ImageExt = Enum("ImageExt", {v: v for v in ("auto", "png", "jpg")}, type=str)
Resize = Enum("Resize", {v: v for v in ("area", "lanczos")}, type=str)


# Options both prepare commands share.
SEG_ARCH_OPTION = typer.Option(SegArch.mobilenet_v3_large, "--seg-arch", help="Backbone.")
SEG_WEIGHTS_OPTION = typer.Option(None, "--seg-weights", help="DeepLabv3 weights file.")
WORKERS_OPTION = typer.Option(None, "--workers", help="Local threads, >= 1 (default: all cores).")
SCHEDULER_OPTION = typer.Option(
    None, "--scheduler", help="dask.distributed scheduler address (tcp://host:8786)."
)
STORE_OVERWRITE_OPTION = typer.Option(
    False, "--overwrite", help="Replace stores made with other arguments (from scratch)."
)
CHUNK_OPTION = typer.Option(16, "--chunk", help="Frames per chunk (>= 1).")
HINT_SIZE_OPTION = typer.Option("320x1024", "--hint-size", help="HxW the raw pairs are matched at.")


def hints(
    store: str = typer.Argument(..., help="Two-view KITTI store (complete), e.g. train.zarr."),
    kitti_root: Path = typer.Option(..., "--kitti-root", help="KITTI raw root of the store."),
    hint_size: str = HINT_SIZE_OPTION,
    image_ext: ImageExt = typer.Option(
        "auto",
        "--image-ext",
        help="Raw images read: auto (the files the store was made from, its source.images), "
        "png or jpg.",
    ),
    workers: int = WORKERS_OPTION,
    scheduler: str = SCHEDULER_OPTION,
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute every chunk."),
) -> None:
    """Fill hint_depth (and hint_depth_flipped) with Depth Hints' fused-SGM hints of the raw
    pairs, resized as depth-hints' loader does (resumable)."""
    from pipelines.store.options import check_count, parse_size

    check_count("--workers", workers)
    parse_size(hint_size, "--hint-size")
    from pipelines.passes.hints_pass import compute_hints

    how = {"hint_size": hint_size, "image_ext": image_ext.value, "workers": workers}
    how["scheduler"] = scheduler
    typer.echo(str(compute_hints(store, kitti_root, overwrite=overwrite, **how)))


def prepare_kitti(
    kitti_root: Path = typer.Argument(..., help="KITTI raw root (holds the date folders)."),
    split_dir: Path = typer.Argument(
        ..., help="monodepth2 split folder: train_files.txt, val_files.txt and/or test_files.txt."
    ),
    out_dir: Path = typer.Argument(..., help="Output folder: train.zarr, val.zarr, test.zarr."),
    size: str = typer.Option("192x640", "--size", help="Stored image size HxW (each side >= 32)."),
    resize: Resize = typer.Option(
        "area", "--resize", help="area: cv2.INTER_AREA; lanczos: PIL LANCZOS, monodepth2's bytes."
    ),
    image_ext: ImageExt = typer.Option(
        "auto", "--image-ext", help="Colour images: auto (per frame .png, else .jpg), png, jpg."
    ),
    gt: KittiGT = typer.Option(
        KittiGT.auto,
        "--gt",
        help="Test ground truth: velodyne (eigen, vel_depth=True), improved (eigen_benchmark "
        "annotated PNGs) or auto (follows the split folder as monodepth2's export_gt_depth.py: "
        "improved for eigen_benchmark, velodyne for eigen and the others).",
    ),
    masks: KittiMaskKind = typer.Option(
        KittiMaskKind.none,
        "--masks",
        help="deeplabv3: fill seg of train/val stores afterwards (needs the DeepLabv3 weights "
        "in the torch hub cache or --seg-weights; checked before converting); truth: the true "
        "masks of a world written by `synth kitti --masks`. Default none: seg stays 255 (run "
        "`masks` later).",
    ),
    seg_arch: SegArch = SEG_ARCH_OPTION,
    seg_weights: Path = SEG_WEIGHTS_OPTION,
    hints_: bool = typer.Option(False, "--hints", help="Also fill hint_depth of train/val."),
    hint_size: str = HINT_SIZE_OPTION,
    skip_missing: bool = typer.Option(
        False, "--skip-missing", help="Drop split lines whose files are missing (listed)."
    ),
    workers: int = WORKERS_OPTION,
    scheduler: str = SCHEDULER_OPTION,
    overwrite: bool = STORE_OVERWRITE_OPTION,
    chunk: int = CHUNK_OPTION,
) -> None:
    """KITTI raw + split files -> schema v1 stores (resumable: re-run the same command)."""
    from pipelines.prepare.kitti.prepare import KittiPrepareOptions
    from pipelines.prepare.kitti.prepare import prepare_kitti as run
    from pipelines.store.options import parse_size

    options = KittiPrepareOptions(
        size=parse_size(size),
        gt=gt.value,
        image_ext=image_ext.value,
        resize=resize.value,
        masks=masks.value,
        seg_arch=seg_arch.value,
        seg_weights=None if seg_weights is None else str(seg_weights),
        hints=hints_,
        hint_size=parse_size(hint_size, "--hint-size"),
        skip_missing=skip_missing,
        workers=workers,
        scheduler=scheduler,
        overwrite=overwrite,
        chunk=chunk,
    )
    typer.echo(str(run(kitti_root, split_dir, out_dir, options)))


# ------------------------------------------------------------------------------- prepare-nyu
def prepare_nyu(
    raw_root: Path = typer.Argument(..., help="NYU raw root: scene folders and/or .zip files."),
    out_dir: Path = typer.Argument(
        ..., help="Output folder: raw_train.zarr, raw_val.zarr, labeled_train/test.zarr."
    ),
    labeled: Path = typer.Option(
        None, "--labeled", help="nyu_depth_v2_labeled.mat: labeled stores, test scenes excluded."
    ),
    splits: Path = typer.Option(None, "--splits", help="splits.mat (with --labeled)."),
    glob: str = typer.Option(None, "--glob", help="Only scenes whose name matches, e.g. 'bed*'."),
    size: str = typer.Option(
        "288x384",
        "--size",
        help="Raw store image size HxW, each side >= 32 (image INTER_AREA, depth nearest "
        "neighbour).",
    ),
    stride: int = typer.Option(1, "--stride", help="Keep every K-th synced frame of a scene."),
    neighbour_gap: int = typer.Option(
        1,
        "--neighbour-gap",
        help="Sample neighbours at -/+ G kept frames (G*stride synced frames); samples need both.",
    ),
    sample: int = typer.Option(
        None,
        "--sample",
        help="Draw N synced frames at random across the kept scenes (by --seed), each stored "
        "with its -/+ G synced neighbours, instead of the --stride grid.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of --sample: same seed, same frames."),
    fill: bool = typer.Option(
        False, "--fill/--no-fill", help="Store colorization in-painted depth (~0.6 s/frame)."
    ),
    val_fraction: float = typer.Option(
        0.0, "--val-fraction", help="Fraction of raw scenes for raw_val.zarr (by name hash)."
    ),
    include_test_scenes: bool = typer.Option(
        False, "--include-test-scenes", help="Keep raw scenes that hold labeled test images."
    ),
    masks: MaskKind = typer.Option(
        MaskKind.none,
        "--masks",
        help="deeplabv3: fill seg of the raw stores afterwards (needs the DeepLabv3 weights in "
        "the torch hub cache or --seg-weights; checked before converting). Default none: seg "
        "stays 255 (run `masks` later).",
    ),
    seg_arch: SegArch = SEG_ARCH_OPTION,
    seg_weights: Path = SEG_WEIGHTS_OPTION,
    workers: int = WORKERS_OPTION,
    scheduler: str = SCHEDULER_OPTION,
    overwrite: bool = STORE_OVERWRITE_OPTION,
    chunk: int = CHUNK_OPTION,
) -> None:
    """NYU Depth V2 raw scenes (+ labeled .mat) -> schema v1 stores (resumable: re-run it)."""
    from pipelines.prepare.nyu.prepare import NyuPrepareOptions
    from pipelines.prepare.nyu.prepare import prepare_nyu as run
    from pipelines.store.options import parse_size

    options = NyuPrepareOptions(
        size=parse_size(size),
        stride=stride,
        neighbour_gap=neighbour_gap,
        sample=sample,
        seed=seed,
        fill=fill,
        val_fraction=val_fraction,
        include_test_scenes=include_test_scenes,
        glob=glob,
        masks=masks.value,
        seg_arch=seg_arch.value,
        seg_weights=None if seg_weights is None else str(seg_weights),
        workers=workers,
        scheduler=scheduler,
        overwrite=overwrite,
        chunk=chunk,
    )
    typer.echo(str(run(raw_root, out_dir, labeled, splits, options)))
