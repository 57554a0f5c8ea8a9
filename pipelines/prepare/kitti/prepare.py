"""``prepare-kitti``: KITTI raw + monodepth2 split files -> ``{train,val,test}.zarr`` stores.

Steps (:func:`prepare_kitti`):

1. plan (:mod:`pipelines.prepare.kitti.plan`): every line of every split file is checked
   against the raw tree before anything is written; calibration and timestamps are read for
   every drive used;
2. refuse, before touching any store, an existing store made with other arguments (unless
   ``overwrite``);
3. convert all stores in one dask graph with :func:`pipelines.store.runner.run_conversions`
   (tasks = blocks of whole chunks, resumable; block function
   :class:`pipelines.prepare.kitti.blocks.KittiBlocks`);
4. optionally fill ``seg`` of the training stores with DeepLabv3 (:mod:`pipelines.passes.masks`),
   or, ``masks="truth"``, with the true masks of a synthetic world
   (:mod:`pipelines.passes.true_masks`, ``synth kitti --masks``),
   and their ``hint_depth`` with Depth Hints' fused SGM (:mod:`pipelines.passes.hints_pass`).

Training / validation stores hold V = 2 views (0 = camera 02, 1 = camera 03) for every frame a
sample needs; the test store holds camera 02 (V = 1) and native-resolution ``gt_depth`` (with
``prev_frames`` also each test frame's previous frame, without ground truth, for multi-frame
methods: ManyDepth evaluates on (previous, current) pairs).
Images may be PNG or JPEG (``image_ext``, :mod:`pipelines.prepare.kitti.images`), resized with
``cv2.INTER_AREA`` or, ``resize="lanczos"``, exactly as monodepth2 does
(:mod:`pipelines.prepare.kitti.blocks`); each store records both in its attributes
(``source.images``, ``camera.resize_method``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import kitti
from pipelines.prepare.common import (
    mask_args,
    mask_weights,
    package_version,
    resized_intrinsics,
    run_masks,
)
from pipelines.prepare.kitti.blocks import RESIZE_DESCRIPTIONS, KittiBlocks, check_resize
from pipelines.prepare.kitti.images import ImageSummary, check_image_ext
from pipelines.prepare.kitti.plan import StorePlan, plan_stores
from pipelines.store.constants import KITTI_NORMALISED_INTRINSICS
from pipelines.store.options import check_count, check_size
from pipelines.store.runner import Conversion, RunSummary, run_conversions
from pipelines.store.schema import DEFAULT_CHUNK
from pipelines.store.writer import StoreWriter, make_fingerprint, refuse_other_store

TRAIN_ARRAYS = ("image", "intrinsics", "baseline", "seg", "sequence", "frame_in_sequence",
                "timestamp")  # fmt: skip
TEST_ARRAYS = (*TRAIN_ARRAYS, "gt_depth", "gt_size")
# monodepth2's normalised KITTI intrinsics (kitti.md section 5): rows 0 / 1 divided by W / H.
PROTOCOL = {"velodyne": "eigen", "improved": "eigen_benchmark"}


@dataclass(frozen=True)
class KittiPrepareOptions:
    """Options of ``prepare-kitti`` (CLI defaults).

    ``size`` (H, W), ``chunk``, ``gt``, ``resize``, the image files found (``image_ext``) and
    the split files define the content (fingerprint); ``workers``, ``scheduler``, ``progress``
    only how it is computed.
    """

    size: tuple[int, int] = (192, 640)
    gt: str = "auto"  # auto | velodyne | improved
    image_ext: str = "auto"  # auto | png | jpg
    resize: str = "area"  # area | lanczos
    masks: str = "none"  # none | deeplabv3 | truth (a synthetic world's masks.npz)
    seg_arch: str = "mobilenet_v3_large"
    seg_weights: str | None = None  # None = torch hub cache
    hints: bool = False  # fused-SGM depth hints of the training stores afterwards
    hint_size: tuple[int, int] = (320, 1024)
    skip_missing: bool = False
    prev_frames: bool = False  # the test store also holds each test frame's previous frame
    workers: int | None = None  # None = all cores
    scheduler: str | None = None  # dask.distributed scheduler address
    overwrite: bool = False
    chunk: int = DEFAULT_CHUNK
    progress: bool = True

    def __post_init__(self) -> None:
        """Sizes and counts are checked when the options are made, before any work."""
        check_size(self.size, "--size")
        check_size(self.hint_size, "--hint-size")
        check_count("--chunk", self.chunk)
        check_count("--workers", self.workers)


@dataclass(frozen=True)
class PrepareReport:
    """What :func:`prepare_kitti` did: one run summary per store (each followed by the image
    files it read), then the pass reports."""

    stores: tuple[RunSummary, ...]
    masks: tuple[Any, ...] = field(default=())  # pipelines.passes.store_pass.PassReport
    images: tuple[ImageSummary, ...] = field(default=())  # per store, in order
    hints: tuple[Any, ...] = field(default=())

    truths: tuple[str, ...] = field(default=())  # per store: its ground truth, "" for none

    def __str__(self) -> str:
        lines = []
        for i, store in enumerate(self.stores):
            lines.append(str(store))
            if i < len(self.images):
                lines.append(f"  {self.images[i]}")
            if i < len(self.truths) and self.truths[i]:
                lines.append(f"  ground truth: {self.truths[i]}")
        return "\n".join([*lines, *map(str, self.masks), *map(str, self.hints)])


def prepare_kitti(
    root: str | Path,
    split_dir: str | Path,
    out_dir: str | Path,
    options: KittiPrepareOptions | None = None,
) -> PrepareReport:
    """Convert KITTI raw into one schema v1 store per split file (see the module docstring).

    Raises:
        ValueError (or a subclass): missing files (all listed together), malformed split lines,
            calibration or timestamps, unreadable images or scans (naming the file), an existing
            store made with other arguments, missing DeepLabv3 weights.
    """
    opts = options or KittiPrepareOptions()
    check_image_ext(opts.image_ext)
    check_resize(opts.resize)
    root, split_dir, out_dir = Path(root), Path(split_dir), Path(out_dir)
    weights = _mask_source(root, opts)  # fails before converting

    plans = plan_stores(
        root, split_dir, opts.gt, opts.skip_missing, opts.image_ext, opts.prev_frames
    )
    jobs = [_job(root, split_dir, out_dir, plan, opts) for plan in plans]
    for url, _, fingerprint, _ in jobs:
        refuse_other_store(url, fingerprint, opts.overwrite)

    out_dir.mkdir(parents=True, exist_ok=True)
    conversions = []
    for url, plan, fingerprint, (blocks, frame_arrays) in jobs:
        writer = StoreWriter.create(
            url,
            dataset="kitti-raw",
            split=plan.split,
            n_frames=plan.n_frames,
            n_samples=len(plan.samples),
            image_size=opts.size,
            views=len(blocks.sides),
            arrays=TEST_ARRAYS if plan.gt else TRAIN_ARRAYS,
            attrs=_attrs(root, split_dir, plan, blocks, opts),
            fingerprint=fingerprint,
            gt_size=blocks.gt_shape,
            overwrite=opts.overwrite,
            chunk=opts.chunk,
        )
        writer.write_samples(plan.samples)
        conversions.append(
            Conversion(writer, blocks, f"{plan.split}.zarr", plan.skipped, frame_arrays)
        )
    summaries = run_conversions(
        conversions, workers=opts.workers, scheduler=opts.scheduler, progress=opts.progress
    )

    training = [url for url, plan, _, _ in jobs if plan.gt is None]  # masks: training stores only
    if opts.masks == "truth":
        from pipelines.passes.true_masks import fill_true_masks

        masks = tuple(fill_true_masks(url, root, progress=opts.progress) for url in training)
    else:
        masks = run_masks(training, opts.seg_arch, weights, opts.progress)
    hints: tuple[Any, ...] = ()
    if opts.hints:
        from pipelines.passes.hints_pass import compute_hints  # imports torch: only when needed

        hints = tuple(
            compute_hints(url, root, hint_size=opts.hint_size, workers=opts.workers,
                          scheduler=opts.scheduler, progress=opts.progress)
            for url in training
        )  # fmt: skip
    truths = tuple(_truth_line(plan) for plan in plans)
    return PrepareReport(
        tuple(summaries), masks, tuple(plan.images for plan in plans), hints, truths
    )


def _mask_source(root: Path, opts: KittiPrepareOptions) -> str | Path | None:
    """What fills ``seg`` (checked before converting): DeepLabv3 weights, or None (no masks, or
    ``truth``: the world's ``masks.npz``, which must be there)."""
    if opts.masks != "truth":
        return mask_weights(opts.masks, opts.seg_arch, opts.seg_weights)
    if not (root / "masks.npz").is_file():
        raise ValueError(
            f"--masks truth: {root / 'masks.npz'} not found (only a synthetic world written by "
            "`synth kitti --masks` has true masks); use --masks deeplabv3 or none"
        )
    return None


def _truth_line(plan: StorePlan) -> str:
    """The ground truth of a test store in the summary: kind, protocol and why."""
    if not plan.gt:
        return ""
    return f"{plan.gt} (protocol {PROTOCOL[plan.gt]}; {plan.gt_reason})"


def _job(
    root: Path, split_dir: Path, out_dir: Path, plan: StorePlan, opts: KittiPrepareOptions
) -> tuple[str, StorePlan, str, tuple[KittiBlocks, dict[str, np.ndarray]]]:
    """Store location, plan, fingerprint, block function and whole per-frame arrays of one
    store."""
    blocks = _blocks(root, plan, opts.size, opts.resize)
    fingerprint = make_fingerprint(
        "kitti-raw/1", plan.split, str(root.resolve()), plan.sha256, plan.content_hash(),
        list(opts.size), opts.chunk, plan.gt, *(() if opts.resize == "area" else (opts.resize,)),
    )  # fmt: skip
    return str(out_dir / f"{plan.split}.zarr"), plan, fingerprint, blocks


def _blocks(
    root: Path, plan: StorePlan, size: tuple[int, int], resize: str = "area"
) -> tuple[KittiBlocks, dict[str, np.ndarray]]:
    """The block function of a plan and the per-frame arrays that need no pixels (intrinsics,
    baseline, sequence, frame, timestamp), from the calibration and timestamps files."""
    cameras = (2,) if plan.gt else (2, 3)
    n_seq = len(plan.sequences)
    native = np.zeros((n_seq, len(cameras), 2), dtype=np.int64)
    k_seq = np.zeros((n_seq, len(cameras), 3, 3), dtype=np.float32)
    base_seq = np.zeros(n_seq, dtype=np.float32)
    stamps = np.zeros(plan.n_frames, dtype=np.float64)
    for s, folder in enumerate(plan.sequences):
        calib = kitti.Calibration.from_dir(kitti.calib_dir(root, folder))
        for v, cam in enumerate(cameras):
            native[s, v] = calib.size(cam)
            k_seq[s, v] = resized_intrinsics(calib.K(cam), calib.size(cam), size)
        base_seq[s] = calib.baseline
        stamps_path = kitti.timestamps_path(root, folder)
        times = kitti.read_timestamps(stamps_path)
        rows = np.flatnonzero(plan.sequence == s)
        frames = plan.frame[rows]
        if frames.max() >= len(times):
            raise ValueError(
                f"{stamps_path}: {len(times)} timestamps, frame {int(frames.max())} needs more"
            )
        stamps[rows] = times[frames]
    gt_shape = gt_rows = None
    if plan.gt:
        gt_shape = (int(native[:, 0, 0].max()), int(native[:, 0, 1].max()))
        gt_rows = np.zeros(plan.n_frames, dtype=bool)
        gt_rows[plan.samples[:, 0]] = True
    blocks = KittiBlocks(
        root=root,
        sequences=plan.sequences,
        sequence=plan.sequence,
        frame=plan.frame,
        sides=("l",) if plan.gt else ("l", "r"),
        size=size,
        native=native,
        gt=plan.gt,
        gt_shape=gt_shape,
        image_ext=plan.image_ext,
        resize=resize,
        gt_rows=gt_rows,
    )
    frame_arrays = {
        "intrinsics": k_seq[plan.sequence],
        "baseline": base_seq[plan.sequence],
        "sequence": plan.sequence,
        "frame_in_sequence": plan.frame,
        "timestamp": stamps,
    }
    return blocks, frame_arrays


def _attrs(
    root: Path, split_dir: Path, plan: StorePlan, blocks: KittiBlocks, opts: KittiPrepareOptions
) -> dict[str, Any]:
    views = ["image_02"] if plan.gt else ["image_02", "image_03"]
    attrs: dict[str, Any] = {
        "sequences": list(plan.sequences),
        "camera": {
            "views": views,
            "native_size": {
                folder: [int(x) for x in blocks.native[s, 0]]
                for s, folder in enumerate(plan.sequences)
            },
            "K_normalised_monodepth2": [list(row) for row in KITTI_NORMALISED_INTRINSICS],
            "baseline_nominal": 0.54,
            "intrinsics": "P_rect_0c[:, :3] resized: fx*sx, fy*sy, cx'=(cx+0.5)*sx-0.5, "
            "cy'=(cy+0.5)*sy-0.5",
            "resize": RESIZE_DESCRIPTIONS[opts.resize],
            "resize_method": opts.resize,
        },
        "source": {
            "command": _command_line(root, split_dir, opts),
            "version": package_version(),
            "input_root": str(root.resolve()),
            "split_file": str(plan.split_file.resolve()),
            "split_sha256": {plan.split_file.name: plan.sha256},
            "skipped_lines": len(plan.skipped),
            "images": plan.images.attrs(),
        },
    }
    if plan.gt and opts.prev_frames:
        attrs["previous_frames"] = {
            "stored": True,
            "samples_without": int((plan.samples[:, 1] < 0).sum()),
        }
    if plan.gt:
        attrs["ground_truth"] = {
            "kind": plan.gt,
            "protocol": PROTOCOL[plan.gt],
            "camera": 2,
            "vel_depth": plan.gt == "velodyne",
            "chosen_by": plan.gt_reason,
        }
    return attrs


def _command_line(root: Path, split_dir: Path, opts: KittiPrepareOptions) -> str:
    """Canonical command line of the options that shape the content (not workers/scheduler)."""
    parts = ["prepare-kitti", str(root), str(split_dir), "OUT_DIR"]
    parts += [
        "--size",
        f"{opts.size[0]}x{opts.size[1]}",
        "--gt",
        opts.gt,
        "--chunk",
        str(opts.chunk),
    ]
    if opts.image_ext != "auto":
        parts += ["--image-ext", opts.image_ext]
    if opts.resize != "area":
        parts += ["--resize", opts.resize]
    parts += (
        ["--masks", "truth"]
        if opts.masks == "truth"
        else mask_args(opts.masks, opts.seg_arch, opts.seg_weights)
    )
    if opts.hints:
        parts += ["--hints", "--hint-size", f"{opts.hint_size[0]}x{opts.hint_size[1]}"]
    if opts.skip_missing:
        parts.append("--skip-missing")
    if opts.prev_frames:
        parts.append("--prev-frames")
    return " ".join(parts)
