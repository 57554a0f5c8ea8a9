"""Synthetic NYU / KITTI worlds written in the real raw formats, with exactly known ground truth.

``write_world(kind, out)`` is what ``python cli.py synth`` calls; the per-dataset writers
(:func:`write_nyu_raw`, :func:`write_nyu_labeled`, :func:`write_kitti`) return the truth
(true depth per RGB / camera-02 frame and camera poses) for tests.

``write_world`` refuses a folder that is not empty unless ``overwrite``, and then clears it only
when it holds a world it wrote (its :data:`MARKER` file): it never deletes anything else.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipelines.synth.kitti import DATES, write_kitti
from pipelines.synth.nyu import SCENES, write_nyu_raw
from pipelines.synth.nyu_labeled import write_nyu_labeled

KINDS = ("nyu-raw", "nyu-labeled", "kitti")
DEFAULT_FRAMES = {"nyu-raw": 24, "nyu-labeled": 24, "kitti": 12}
MARKER = "synth.json"  # written first into every world: kind and options

__all__ = ["KINDS", "write_kitti", "write_nyu_labeled", "write_nyu_raw", "write_world"]


def write_world(
    kind: str,
    out: str | Path,
    *,
    frames: int | None = None,
    seed: int = 0,
    corrupt: bool = False,
    truth: bool = True,
    masks: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> str:
    """Write a synthetic world of ``kind`` (see :data:`KINDS`) under ``out``; return a summary.

    ``masks`` (``kitti`` only) also writes ``masks.npz``, the true object masks
    (:func:`pipelines.passes.true_masks.fill_true_masks` or ``prepare-kitti --masks truth`` put
    them into a store). Raises ValueError, before writing anything, for bad options and for a
    non-empty ``out`` (without ``overwrite``, or not a world written here).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown world kind {kind!r}; choose one of {', '.join(KINDS)}")
    frames = DEFAULT_FRAMES[kind] if frames is None else frames
    if frames < 4:
        raise ValueError(f"--frames must be at least 4 (got {frames})")
    if seed < 0:
        raise ValueError(f"--seed must be 0 or more (got {seed})")
    if masks and kind != "kitti":
        raise ValueError(f"--masks: only the kitti world has object masks (not {kind})")
    if corrupt and kind != "nyu-raw":
        raise ValueError(f"--corrupt: only the nyu-raw world has corrupt files (not {kind})")
    out = Path(out)
    _clear(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    options = {"kind": kind, "frames": frames, "seed": seed, "corrupt": corrupt, "masks": masks}
    (out / MARKER).write_text(json.dumps(options) + "\n")
    total = frames * (len(SCENES) if kind.startswith("nyu") else sum(len(d.drives) for d in DATES))
    columns = (
        TextColumn(f"synth {kind}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("frames", total=total)
        tick = lambda: bar.advance(task)  # noqa: E731
        if kind == "nyu-raw":
            write_nyu_raw(
                out, frames=frames, seed=seed, corrupt=corrupt, truth=truth, progress=tick
            )
            what = f"{len(SCENES)} NYU raw scenes ({frames} depth frames each)"
        elif kind == "nyu-labeled":
            lab = write_nyu_labeled(out, frames=frames, seed=seed, truth=truth, progress=tick)
            what = (
                f"NYU labeled set ({len(lab.scenes)} frames, {int(lab.test.sum())} test) "
                f"with its raw world in {out / 'raw'}"
            )
        else:
            drives = write_kitti(
                out, frames=frames, seed=seed, truth=truth, progress=tick, masks=masks
            )
            what = (
                f"KITTI raw world ({len(drives)} drives x {frames} frames, splits in {out}/splits"
                + (", true object masks in masks.npz" if masks else "")
                + ")"
            )
    return f"wrote {what} to {out}"


def _clear(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless ``overwrite`` and it holds a world written here (then
    empty it)."""
    if out.is_file():
        raise ValueError(f"{out}: is a file, not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise ValueError(
            f"{out}: folder is not empty; pass --overwrite to replace the world in it, "
            "or choose another folder"
        )
    if not (out / MARKER).is_file():
        raise ValueError(
            f"{out}: not empty and not a synthetic world (no {MARKER}); refusing to clear it "
            "even with --overwrite: choose another folder"
        )
    shutil.rmtree(out)
