"""Run logging: TensorBoard scalars and images when ``torch.utils.tensorboard`` imports,
otherwise (the tensorboard package is optional) a JSON-lines file plus PNG pictures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from train.colormap import colorize

if TYPE_CHECKING:
    from train.engine.step import StepResult
    from train.methods import OptimiserSpec


class RunLogger:
    """Scalars and pictures of a run under ``run_dir``.

    Always appends ``{"step", "tag", "value"}`` records to ``run_dir/log.jsonl`` (easy to read
    back in tests and notebooks). With TensorBoard available, also writes event files to
    ``run_dir/tensorboard``; without it, pictures go to ``run_dir/images/<tag>_<step>.png``.
    ``enabled=False`` (DDP ranks other than 0) makes every call a no-op.

    ``resume_step``: a resumed run restarts after that step; the records of later steps (logged
    before the interruption, redone now) are dropped from ``log.jsonl`` and TensorBoard purges
    its events past it, so no step is logged twice.
    """

    def __init__(
        self,
        run_dir: str | Path,
        enabled: bool = True,
        tensorboard: bool = True,
        resume_step: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._writer = None
        self._file = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            _drop_records_after(self.run_dir / "log.jsonl", resume_step)
        self._file = open(self.run_dir / "log.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                SummaryWriter = None  # noqa: N806
            if SummaryWriter is not None:
                purge = None if resume_step is None else resume_step + 1
                self._writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=purge)

    @property
    def backend(self) -> str:
        """``"tensorboard"``, ``"jsonl"`` or ``"off"``."""
        if not self.enabled:
            return "off"
        return "tensorboard" if self._writer is not None else "jsonl"

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Log ``{tag: value}`` at ``step``."""
        if not self.enabled:
            return
        for tag, value in values.items():
            assert self._file is not None
            self._file.write(json.dumps({"step": step, "tag": tag, "value": float(value)}) + "\n")
            if self._writer is not None:
                self._writer.add_scalar(tag, value, step)
        assert self._file is not None
        self._file.flush()

    def image(self, tag: str, rgb: np.ndarray, step: int) -> None:
        """Log a uint8 ``(H, W, 3)`` RGB picture."""
        if not self.enabled:
            return
        if self._writer is not None:
            self._writer.add_image(tag, rgb, step, dataformats="HWC")
            return
        folder = self.run_dir / "images"
        folder.mkdir(exist_ok=True)
        name = tag.replace("/", "_")
        cv2.imwrite(str(folder / f"{name}_{step:07d}.png"), rgb[:, :, ::-1])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()
            self._file = None


def log_step(
    logger: RunLogger,
    result: StepResult,
    step: int,
    optimisers: Sequence[OptimiserSpec],
    samples_per_s: float,
) -> None:
    """Log one training step: loss, learning rates, the method's scalars and images."""
    values = {"train/loss": float(result.loss), "train/samples_per_s": samples_per_s}
    for spec in optimisers:
        suffix = "" if spec.name == "main" else f"_{spec.name}"
        values[f"train/lr{suffix}"] = spec.optimiser.param_groups[0]["lr"]
    values |= {f"train/{k}": float(v) for k, v in result.scalars.items()}
    logger.scalars(values, step)
    for name, image in result.images.items():
        logger.image(f"train/{name}", colorize(image[0, 0].float().cpu().numpy()), step)


def _drop_records_after(path: Path, step: int) -> None:
    """Rewrite ``path`` (atomically) without the records of steps after ``step``."""
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(path)


def read_log(run_dir: str | Path) -> list[dict[str, float]]:
    """The records of ``run_dir/log.jsonl`` in order."""
    path = Path(run_dir) / "log.jsonl"
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
