"""Store attributes of ``prepare-nyu``: camera, per-frame meanings, provenance.

What a reader of a store needs to interpret it without this code: the intrinsics convention and
resize filters, what ``frame`` / ``timestamp`` / ``accel`` / ``depth`` hold, the canonical command
line, the input files, the scenes excluded as test scenes and the frames skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nyutools import camera
from pipelines.prepare.common import mask_args, package_version
from pipelines.prepare.nyu.blocks import NATIVE, nyu_intrinsics
from pipelines.prepare.nyu.labeled_plan import LabeledInputs, LabeledPlan
from pipelines.prepare.nyu.options import NyuPrepareOptions
from pipelines.prepare.nyu.plan import RawPlan, SceneSplit
from pipelines.store.constants import NYU_FILLED_DEPTH as FILLED_DEPTH

RAW_DEPTH = "projected Kinect depth (project_depth), nearest-neighbour resize, 0 = none"


def raw_attrs(
    root: Path, plan: RawPlan, split: SceneSplit, opts: NyuPrepareOptions
) -> dict[str, Any]:
    """Attributes of a raw store (``sequences``, ``camera``, ``frames``, ``source``)."""
    return {
        "sequences": list(plan.sequences),
        "camera": camera_attrs(opts.size, raw=True),
        "frames": {
            "frame_in_sequence": "synced frame index inside the scene (get_synched_frames order)",
            "timestamp": "host time of the RGB file, seconds",
            "accel": "raw accelerometer counts x, y, z (819 per g) and tilt (half-degrees); "
            "NaN when the scene has no accelerometer file",
            "stride": opts.stride,
            "neighbour_gap": opts.neighbour_gap,
            "neighbours": "synced index -/+ neighbour_gap*stride in the same scene; samples "
            "only where both neighbours are stored",
            **(
                {
                    "sample": opts.sample,
                    "seed": opts.seed,
                    "sampling": "sample synced frames drawn uniformly without replacement "
                    "(numpy default_rng(seed)) among those with both neighbours, each stored "
                    "with its neighbours; only the drawn frames are sample centres",
                }
                if opts.sample
                else {}
            ),
            "depth": FILLED_DEPTH if opts.fill else RAW_DEPTH,
        },
        "source": {
            "command": command_line(root, opts),
            "version": package_version(),
            "input_root": str(root.resolve()),
            "scenes": {s.source.name: relative_path(s.source.path, root) for s in plan.scenes},
            "excluded_test_scenes": list(split.excluded),
            "skipped_frames": [str(item) for item in plan.skipped],
        },
    }


def labeled_attrs(
    inputs: LabeledInputs, plan: LabeledPlan, opts: NyuPrepareOptions
) -> dict[str, Any]:
    """Attributes of a labeled store (adds ``ground_truth``)."""
    mat = inputs.mat_path.resolve()
    return {
        "sequences": list(plan.sequences),
        "camera": camera_attrs(NATIVE, raw=False),
        "frames": {
            "frame_in_sequence": "0-based row of the frame in nyu_depth_v2_labeled.mat",
            "timestamp": "host time in the frame's rawRgbFilenames entry, seconds",
            "accel": "accelData of the labeled set",
            "depth": "rawDepths (projected, not in-painted; float16), 0 = none",
            "gt_depth": "depths (in-painted by NYU)",
        },
        "source": {
            "command": command_line(None, opts, inputs),
            "version": package_version(),
            "labeled": str(mat),
            "labeled_bytes": mat.stat().st_size,
            "split_file": str(inputs.splits_path.resolve()),
            "split_sha256": {inputs.splits_path.name: inputs.splits_sha256},
        },
        "ground_truth": {"kind": "nyu-labeled", "protocol": "nyu", "in_painted": True},
    }


def camera_attrs(size: tuple[int, int], raw: bool) -> dict[str, Any]:
    """``camera`` attribute: K_RGB, the stored K at ``size`` and (raw stores) the filters."""
    k = nyu_intrinsics(size)
    attrs: dict[str, Any] = {
        "model": "NYU Depth V2 Kinect (toolbox camera_params.m)",
        "native_size": list(NATIVE),
        "K_rgb": camera.K_RGB.tolist(),
        "K": k.tolist(),
        "max_depth": camera.MAX_DEPTH,
        "undistorted": "toolbox undistort (K kept; white 255 border where invalid)",
    }
    if raw:
        attrs["intrinsics"] = (
            "K_rgb resized: fx*sx, fy*sy, cx'=(cx+0.5)*sx-0.5, cy'=(cy+0.5)*sy-0.5"
        )
        attrs["resize"] = (
            "image cv2.INTER_AREA shrinking / INTER_CUBIC enlarging; depth "
            "cv2.INTER_NEAREST_EXACT (never blurred)"
        )
    return attrs


def relative_path(path: str, root: Path) -> str:
    """``path`` relative to ``root`` when inside it (else unchanged)."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return path


def command_line(
    root: Path | None, opts: NyuPrepareOptions, inputs: LabeledInputs | None = None
) -> str:
    """Canonical command line of the options that shape a store (not workers/scheduler)."""
    if inputs is not None:
        return " ".join(
            ["prepare-nyu", "RAW_ROOT", "OUT_DIR", "--labeled", str(inputs.mat_path),
             "--splits", str(inputs.splits_path), "--chunk", str(opts.chunk)]
        )  # fmt: skip
    parts = ["prepare-nyu", str(root), "OUT_DIR", "--size", f"{opts.size[0]}x{opts.size[1]}"]
    parts += ["--stride", str(opts.stride), "--neighbour-gap", str(opts.neighbour_gap)]
    if opts.sample:
        parts += ["--sample", str(opts.sample), "--seed", str(opts.seed)]
    parts += ["--fill" if opts.fill else "--no-fill", "--val-fraction", str(opts.val_fraction)]
    if opts.include_test_scenes:
        parts.append("--include-test-scenes")
    if opts.glob:
        parts += ["--glob", opts.glob]
    parts += ["--chunk", str(opts.chunk), *mask_args(opts.masks, opts.seg_arch, opts.seg_weights)]
    return " ".join(parts)
