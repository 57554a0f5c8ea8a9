"""Depth Hints pass speed: our pass on the dask runner vs a reference-style loop, and the floor.

All three on the same frames of a synthetic KITTI world (``BENCH_HINTS_FRAMES`` per drive,
default 5: a train store of 2 drives x 5 = 10 frames, both views, hints at 320 x 1024):

* **ours**: :func:`pipelines.passes.hints_pass.compute_hints` (one dask task per chunk of 2
  frames, ``BENCH_HINTS_WORKERS`` threads = all cores, OpenCV / torch on one thread each), from
  the raw PNGs into ``hint_depth``;
* **reference style** (written here after ``precompute_depth_hints.py``'s ``run()``): per frame,
  PIL open + LANCZOS resize, the 12 SGBM matchers in turn per view (OpenCV's and torch's default
  threads), then per candidate one warp and one photometric error, argmin, ``np.save``;
* **floor**: the 2 x 12 ``StereoSGBM.compute`` calls alone, one after another (SGBM runs on one
  thread), and that time divided by the cores: what a pass that did nothing else would take.

Each is timed in wall-clock seconds and in CPU seconds of the process (all its threads): on a
shared machine the wall-clock figures move with the other load, the CPU figures much less; the
CPU ratio to the floor says how much work the pass adds to the SGBM calls it cannot avoid.
The world and its store are cached in ``BENCH_HINTS_DIR`` (default ``/tmp/depthkit_bench_hints``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import kitti
from pipelines.passes.hints import stereo_matchers
from pipelines.passes.hints_pass import compute_hints
from pipelines.store import open_store


def _world(root: Path, frames: int) -> Path:
    from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
    from pipelines.synth import write_kitti

    world, stores = root / f"world_{frames}", root / f"stores_{frames}"
    if not (world / "truth.npz").is_file():
        write_kitti(world, frames=frames, seed=0)
    options = KittiPrepareOptions(size=(192, 640), chunk=2, progress=False)
    prepare_kitti(world, world / "splits" / "eigen_zhou", stores, options)
    return world


def _pairs(world: Path, store_path: Path) -> list[tuple[Path, Path]]:
    store = open_store(store_path)
    rows = zip(store["sequence"][...], store["frame"][...], strict=True)
    return [
        tuple(kitti.image_path(world, store.sequences[q], int(f), s) for s in "lr")  # type: ignore[misc]
        for q, f in rows
    ]


# ------------------------------------------------------------------ reference style


def _reference_warp(source: torch.Tensor, depth: torch.Tensor, tx: float) -> torch.Tensor:
    """Backproject, translate, project, normalise, sample: one candidate at a time."""
    _, _, h, w = source.shape
    K = torch.tensor([[0.58 * w, 0, w / 2, 0], [0, 1.92 * h, h / 2, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    inv_K = torch.linalg.pinv(K)
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    pix = torch.stack([xs.flatten(), ys.flatten(), torch.ones(h * w)])
    cam = depth.view(1, -1) * (inv_K[:3, :3] @ pix)
    cam = torch.cat([cam, torch.ones(1, h * w)])
    T = torch.eye(4)
    T[0, 3] = tx
    p = (K @ T)[:3] @ cam
    uv = p[:2] / (p[2:3] + 1e-7)
    uv = uv.view(2, h, w).permute(1, 2, 0)[None]
    uv = (uv / torch.tensor([w - 1, h - 1]) - 0.5) * 2
    return F.grid_sample(source, uv, padding_mode="border", align_corners=True)


def _reference_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    def pool(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, 1)

    mu_x, mu_y = pool(pred), pool(target)
    sx, sy = pool(pred**2) - mu_x**2, pool(target**2) - mu_y**2
    sxy = pool(pred * target) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sx + sy + c2))
    ssim = torch.clamp((1 - ssim) / 2, 0, 1).mean(1, True)
    return 0.85 * ssim + 0.15 * (target - pred).abs().mean(1, True)


def reference_frame(left_path: Path, right_path: Path, out: Path) -> None:
    """One frame the way ``run()`` does it, into ``out/{left,right}.npy``."""
    images = []
    for path in (left_path, right_path):
        with Image.open(path) as im:
            images.append(np.array(im.convert("RGB").resize((1024, 320), Image.LANCZOS)))
    left, right = images
    fx, base = 0.58 * 1024, 0.1
    for name, a, b, tx, mirror in (("left", left, right, -0.1, False),
                                   ("right", right, left, 0.1, True)):  # fmt: skip
        candidates = []
        for matcher in stereo_matchers():
            if mirror:
                disp = matcher.compute(b[:, ::-1].copy(), a[:, ::-1].copy())[:, ::-1]
            else:
                disp = matcher.compute(a, b)
            disp = disp.astype(np.float32) / 16
            candidates.append(np.where(disp > 0, fx * base / (disp + 1e-7), 0).astype(np.float32))
        target = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
        source = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            errors = torch.cat(
                [_reference_error(_reference_warp(source, torch.from_numpy(c), tx), target)
                 for c in candidates]
            )  # fmt: skip
        index = errors[:, 0].argmin(0).numpy()  # (12, 1, H, W) -> (H, W)
        hint = np.take_along_axis(np.stack(candidates), index[None], 0)
        np.save(out / f"{name}.npy", hint)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def floor_seconds(pairs: list[tuple[Path, Path]]) -> tuple[float, float]:
    """The 24 SGBM calls per frame alone, one after another (images read beforehand)."""
    images = []
    for pair in pairs:
        hint = [
            np.array(Image.open(p).convert("RGB").resize((1024, 320), Image.LANCZOS)) for p in pair
        ]
        images.append(hint)
    matchers = stereo_matchers()
    t = _clock()
    for left, right in images:
        lm, rm = np.ascontiguousarray(left[:, ::-1]), np.ascontiguousarray(right[:, ::-1])
        for m in matchers:
            m.compute(left, right)
            m.compute(rm, lm)
    return _since(t)


def main() -> None:
    root = Path(os.environ.get("BENCH_HINTS_DIR", "/tmp/depthkit_bench_hints"))
    frames = int(os.environ.get("BENCH_HINTS_FRAMES", "5"))
    cores = int(os.environ.get("BENCH_HINTS_WORKERS", str(os.cpu_count() or 1)))
    world = _world(root, frames)
    store = root / f"stores_{frames}" / "train.zarr"
    pairs = _pairs(world, store)
    n = len(pairs)
    print(f"{n} frames (both views) of {store}, hints at 320x1024, {cores} cores")

    scratch = Path(tempfile.mkdtemp(prefix="bench_hints_"))
    try:
        work = scratch / "train.zarr"
        shutil.copytree(store, work)
        t = _clock()
        compute_hints(work, world, workers=cores, progress=False, overwrite=True)
        ours, ours_cpu = _since(t)

        t = _clock()
        for k, (left, right) in enumerate(pairs):
            out = scratch / f"ref_{k}"
            out.mkdir()
            reference_frame(left, right, out)
        reference, reference_cpu = _since(t)
        # same hints? (ours are float16 at the store size; compare frame 0 at 320x1024 sizes)
        ref0 = np.load(scratch / "ref_0" / "left.npy")[0]
        small = cv2.resize(ref0, (640, 192), interpolation=cv2.INTER_NEAREST_EXACT)
        mine = open_store(work)["hint_depth"][0, 0].astype(np.float32)
        agree = float(np.mean(np.abs(mine - small) <= 2e-3 * np.abs(small) + 1e-6))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    floor, floor_cpu = floor_seconds(pairs)

    def line(name: str, wall: float, cpu: float) -> str:
        return f"{name:<28} {wall:6.1f} s wall ({n / wall:5.2f} frames/s), {cpu:6.1f} s CPU"

    print(line(f"ours (dask, {cores} threads)", ours, ours_cpu))
    print(line("reference style", reference, reference_cpu))
    print(line("floor: the SGBM calls alone", floor, floor_cpu))
    ideal = floor / cores
    print(
        f"speed-up over the reference style: x{reference / ours:.2f} wall, "
        f"x{reference_cpu / ours_cpu:.2f} CPU; the floor on {cores} cores would take "
        f"{ideal:.1f} s: ours reaches {100 * ideal / ours:.0f} % of it in wall-clock time, "
        f"{100 * floor_cpu / ours_cpu:.0f} % in CPU time (the rest: reading, LANCZOS, the "
        f"photometric choice); hints equal to the reference style on {100 * agree:.1f} % of "
        "frame 0's pixels"
    )


if __name__ == "__main__":
    main()
