"""``prepare-nyu``: NYU Depth V2 raw scenes (+ labeled set) -> schema v1 zarr stores.

Steps (:func:`prepare_nyu`):

1. plan before writing anything: the labeled ``.mat`` and ``splits.mat`` (when given,
   :mod:`pipelines.prepare.nyu.labeled_plan`), the scenes under the raw root, the scenes excluded
   because they hold labeled test images, the validation scenes, and every stride-grid frame's
   files (:mod:`pipelines.prepare.nyu.plan`; unreadable frames are skipped and listed);
2. refuse, before touching any store, an existing store made with other arguments (unless
   ``overwrite``);
3. convert every store in one dask graph with :func:`pipelines.store.runner.run_conversions`
   (blocks of whole chunks, resumable; block functions in :mod:`pipelines.prepare.nyu.blocks`):
   ``raw_train.zarr`` / ``raw_val.zarr`` (``nyu-raw``, V = 1, at ``size``) and
   ``labeled_train.zarr`` / ``labeled_test.zarr`` (``nyu-labeled``, 480x640);
4. optionally fill ``seg`` of the raw stores with DeepLabv3 (:mod:`pipelines.passes.masks`).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import nyutools
from pipelines.prepare.common import check_masks_option, mask_weights, run_masks
from pipelines.prepare.nyu.attrs import labeled_attrs, raw_attrs
from pipelines.prepare.nyu.blocks import NATIVE, NyuLabeledBlocks, NyuRawBlocks
from pipelines.prepare.nyu.labeled_plan import LabeledInputs, LabeledPlan, plan_labeled
from pipelines.prepare.nyu.options import NyuPrepareOptions
from pipelines.prepare.nyu.plan import (
    RawPlan,
    ScenePlan,
    SceneSplit,
    find_scenes,
    plan_scene,
    raw_plan,
    sample_centres,
    split_scenes,
)
from pipelines.store.runner import Conversion, RunSummary, run_conversions
from pipelines.store.writer import StoreWriter, make_fingerprint, refuse_other_store

log = logging.getLogger(__name__)

RAW_ARRAYS = ("image", "intrinsics", "baseline", "depth", "seg", "sequence", "frame_in_sequence",
              "timestamp", "accel")  # fmt: skip
LABELED_ARRAYS = ("image", "intrinsics", "baseline", "depth", "gt_depth", "gt_size", "sequence",
                  "frame_in_sequence", "timestamp", "accel")  # fmt: skip


@dataclass(frozen=True)
class RawOverview:
    """Counts over the raw scenes, for the printed summary."""

    root: Path
    glob: str | None
    found: int
    split: SceneSplit
    synced: int
    on_grid: int
    skipped: int
    stored: int
    samples: int
    fill: bool = False
    sample: int | None = None

    def __str__(self) -> str:
        glob = f" matching {self.glob!r}" if self.glob else ""
        lines = [
            f"raw scenes: {self.found} found under {self.root}{glob}; "
            f"{len(self.split.train)} train, {len(self.split.val)} val, "
            f"{len(self.split.excluded)} excluded (hold labeled test images)"
        ]
        if self.split.excluded:
            shown = ", ".join(self.split.excluded[:8])
            more = len(self.split.excluded) - 8
            lines.append(f"  excluded: {shown}" + (f", ... and {more} more" if more > 0 else ""))
        why = " (unreadable files, listed below)" if self.skipped else ""
        where = (
            f"{self.on_grid} drawn or their neighbours (--sample {self.sample})"
            if self.sample
            else f"{self.on_grid} on the stride grid"
        )
        lines.append(
            f"raw frames of those train/val scenes: {self.synced} synced, {where}, "
            f"{self.skipped} skipped{why}, {self.stored} stored, "
            f"{self.samples} samples" + (" (depth in-painted)" if self.fill else "")
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class PrepareReport:
    """What :func:`prepare_nyu` did: the raw overview, one summary per store, mask reports."""

    overview: RawOverview | None
    stores: tuple[RunSummary, ...]
    masks: tuple[Any, ...] = field(default=())  # pipelines.passes.masks.MaskReport

    def __str__(self) -> str:
        head = [str(self.overview)] if self.overview else []
        return "\n".join([*head, *map(str, self.stores), *map(str, self.masks)])


@dataclass(frozen=True, eq=False)
class _Job:
    """One store to write: where, what, and the block function."""

    url: str
    dataset: str
    split: str
    n_frames: int
    samples: np.ndarray
    image_size: tuple[int, int]
    arrays: tuple[str, ...]
    attrs: dict[str, Any]
    fingerprint: str
    blocks: Any
    gt_size: tuple[int, int] | None = None
    skipped: tuple[Any, ...] = ()


def prepare_nyu(
    raw_root: str | Path,
    out_dir: str | Path,
    labeled: str | Path | None = None,
    splits: str | Path | None = None,
    options: NyuPrepareOptions | None = None,
) -> PrepareReport:
    """Convert NYU raw scenes (and the labeled set) into stores (see the module docstring).

    Raises:
        ValueError (or a subclass): a missing path, a root without scenes, a corrupt ``.mat``,
            bad options, no readable frame, an existing store made with other arguments,
            missing DeepLabv3 weights. Nothing is written before these checks pass.
    """
    opts = options or NyuPrepareOptions()
    _check_options(opts, labeled, splits)
    raw_root, out_dir = Path(raw_root), Path(out_dir)
    weights = mask_weights(opts.masks, opts.seg_arch, opts.seg_weights)  # fails before converting

    inputs = None
    if labeled is not None and splits is not None:
        inputs = plan_labeled(Path(labeled), Path(splits))
    test_scenes = set(inputs.test_scenes) if inputs else set()
    overview, raw_plans = _plan_raw(raw_root, test_scenes, opts)
    split = overview.split

    jobs = [_raw_job(raw_root, out_dir, plan, split, opts) for plan in raw_plans]
    if inputs is not None:
        jobs += [_labeled_job(out_dir, inputs, p, opts) for p in inputs.plans if p.n_frames]
    for job in jobs:
        refuse_other_store(job.url, job.fingerprint, opts.overwrite)

    out_dir.mkdir(parents=True, exist_ok=True)
    conversions = []
    for job in jobs:
        writer = StoreWriter.create(
            job.url, dataset=job.dataset, split=job.split, n_frames=job.n_frames,
            n_samples=len(job.samples), image_size=job.image_size, views=1, arrays=job.arrays,
            attrs=job.attrs, fingerprint=job.fingerprint, gt_size=job.gt_size,
            overwrite=opts.overwrite, chunk=opts.chunk,
        )  # fmt: skip
        writer.write_samples(job.samples)
        conversions.append(Conversion(writer, job.blocks, Path(job.url).name, job.skipped))
    # One dask graph over the blocks of every store: no idle workers between stores.
    summaries = run_conversions(
        conversions, workers=opts.workers, scheduler=opts.scheduler, progress=opts.progress
    )

    raw = [job.url for job in jobs if job.dataset == "nyu-raw"]  # masks: raw stores only
    masks = run_masks(raw, opts.seg_arch, weights, opts.progress)
    return PrepareReport(overview, tuple(summaries), masks)


def _plan_raw(
    raw_root: Path, test_scenes: set[str], opts: NyuPrepareOptions
) -> tuple[RawOverview, list[RawPlan]]:
    """Scenes -> train / val / excluded -> checked frame tables (stores without frames dropped)."""
    scenes = find_scenes(raw_root, opts.glob)
    split = split_scenes(
        [s.name for s in scenes], test_scenes, opts.val_fraction, opts.include_test_scenes
    )
    used = [s for s in scenes if s.name not in split.excluded]
    with ThreadPoolExecutor(max(1, opts.workers or 4)) as pool:  # file checks, I/O bound
        if opts.sample:
            scene_plans = _plan_sampled(used, opts, pool)
        else:
            scene_plans = list(pool.map(lambda s: plan_scene(s, opts.stride), used))
    by_name = {p.source.name: p for p in scene_plans}
    gap = opts.neighbour_gap
    plans = [
        raw_plan(name, [by_name[n] for n in names if n in by_name], opts.stride, gap)
        for name, names in (("train", split.train), ("val", split.val))
        if names
    ]
    if not plans or plans[0].n_frames == 0:
        raise ValueError(f"{raw_root}: no readable frame in the training scenes")
    plans = [p for p in plans if p.n_frames]
    overview = RawOverview(
        root=raw_root,
        glob=opts.glob,
        found=len(scenes),
        split=split,
        synced=sum(p.n_synced for p in scene_plans),
        on_grid=sum(p.n_grid for p in scene_plans),
        skipped=sum(len(p.skipped) for p in scene_plans),
        stored=sum(p.n_frames for p in plans),
        samples=sum(len(p.samples) for p in plans),
        fill=opts.fill,
        sample=opts.sample,
    )
    return overview, plans


def _plan_sampled(
    scenes: list[nyutools.Scene], opts: NyuPrepareOptions, pool: ThreadPoolExecutor
) -> list[ScenePlan]:
    """``--sample``: sync every scene, draw the centres (scenes in name order), check the files
    of each centre and its neighbours; scenes without a drawn frame are left out."""

    def sync(scene: nyutools.Scene) -> list[nyutools.SyncedFrame]:
        try:
            return nyutools.sync_frames(scene)
        finally:
            scene.close()

    ordered = sorted(scenes, key=lambda s: s.name)
    synced = list(pool.map(sync, ordered))
    gap = opts.neighbour_gap
    centres = sample_centres([len(x) for x in synced], int(opts.sample or 0), gap, opts.seed)

    def plan(k: int) -> ScenePlan:
        wanted = np.unique(np.concatenate([centres[k] - gap, centres[k], centres[k] + gap]))
        return plan_scene(ordered[k], 1, wanted.tolist(), centres[k].tolist(), synced[k])

    return list(pool.map(plan, [k for k in range(len(ordered)) if len(centres[k])]))


def _check_options(
    opts: NyuPrepareOptions, labeled: str | Path | None, splits: str | Path | None
) -> None:
    if (labeled is None) != (splits is None):
        raise ValueError("--labeled and --splits go together: give both or neither")
    check_masks_option(opts.masks)


def _raw_job(
    root: Path, out_dir: Path, plan: RawPlan, split: SceneSplit, opts: NyuPrepareOptions
) -> _Job:
    sampled = (opts.sample, opts.seed) if opts.sample else ()  # grid stores hash as before
    fingerprint = make_fingerprint(
        "nyu-raw/1", plan.split, str(root.resolve()), plan.content_hash(), list(opts.size),
        opts.stride, opts.neighbour_gap, opts.fill, opts.chunk, *sampled,
    )  # fmt: skip
    blocks = NyuRawBlocks(
        scenes=tuple(s.source for s in plan.scenes),
        sequence=plan.sequence,
        frame=plan.frame,
        depth=plan.column("depth"),  # type: ignore[arg-type]
        rgb=plan.column("rgb"),  # type: ignore[arg-type]
        timestamp=plan.column("t_rgb"),  # type: ignore[arg-type]
        accel=plan.column("accel"),  # type: ignore[arg-type]
        size=opts.size,
        fill=opts.fill,
    )
    attrs = raw_attrs(root, plan, split, opts)
    return _Job(
        url=str(out_dir / f"raw_{plan.split}.zarr"), dataset="nyu-raw", split=plan.split,
        n_frames=plan.n_frames, samples=plan.samples, image_size=opts.size, arrays=RAW_ARRAYS,
        attrs=attrs, fingerprint=fingerprint, blocks=blocks, skipped=plan.skipped,
    )  # fmt: skip


def _labeled_job(
    out_dir: Path, inputs: LabeledInputs, plan: LabeledPlan, opts: NyuPrepareOptions
) -> _Job:
    mat = inputs.mat_path.resolve()
    fingerprint = make_fingerprint(
        "nyu-labeled/1", plan.split, str(mat), mat.stat().st_size, inputs.splits_sha256,
        plan.content_hash(), opts.chunk,
    )  # fmt: skip
    blocks = NyuLabeledBlocks(
        labeled=inputs.labeled,
        indices=plan.indices,
        sequence=plan.sequence,
        timestamp=plan.timestamp,
        accel=plan.accel,
    )
    attrs = labeled_attrs(inputs, plan, opts)
    return _Job(
        url=str(out_dir / f"labeled_{plan.split}.zarr"), dataset="nyu-labeled",
        split=plan.split, n_frames=plan.n_frames, samples=plan.samples, image_size=NATIVE,
        arrays=LABELED_ARRAYS, attrs=attrs, fingerprint=fingerprint, blocks=blocks,
        gt_size=NATIVE,
    )  # fmt: skip
