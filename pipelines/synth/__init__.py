"""Synthetic NYU / KITTI worlds written in the real raw formats, with exactly known ground truth.

``write_world(kind, out)`` is what ``python cli.py synth`` calls; the per-dataset writers
(:func:`write_nyu_raw`, :func:`write_nyu_labeled`, :func:`write_kitti`) return the truth
(true depth per RGB / camera-02 frame and camera poses) for tests.
"""

from __future__ import annotations

from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipelines.synth.kitti import DATES, write_kitti
from pipelines.synth.nyu import SCENES, write_nyu_raw
from pipelines.synth.nyu_labeled import write_nyu_labeled

KINDS = ("nyu-raw", "nyu-labeled", "kitti")
DEFAULT_FRAMES = {"nyu-raw": 24, "nyu-labeled": 24, "kitti": 12}

__all__ = ["KINDS", "write_kitti", "write_nyu_labeled", "write_nyu_raw", "write_world"]


def write_world(
    kind: str,
    out: str | Path,
    *,
    frames: int | None = None,
    seed: int = 0,
    corrupt: bool = False,
    truth: bool = True,
    progress: bool = True,
) -> str:
    """Write a synthetic world of ``kind`` (see :data:`KINDS`) under ``out``; return a summary."""
    if kind not in KINDS:
        raise ValueError(f"unknown world kind {kind!r}; choose one of {', '.join(KINDS)}")
    frames = DEFAULT_FRAMES[kind] if frames is None else frames
    if frames < 4:
        raise ValueError(f"--frames must be at least 4 (got {frames})")
    out = Path(out)
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
            drives = write_kitti(out, frames=frames, seed=seed, truth=truth, progress=tick)
            what = (
                f"KITTI raw world ({len(drives)} drives x {frames} frames, splits in {out}/splits)"
            )
    return f"wrote {what} to {out}"
