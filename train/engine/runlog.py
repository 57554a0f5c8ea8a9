"""Run logging: TensorBoard scalars and images when ``torch.utils.tensorboard`` imports,
otherwise (the tensorboard package is optional) a JSON-lines file plus PNG pictures."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


class RunLogger:
    """Scalars and pictures of a run under ``run_dir``.

    Always appends ``{"step", "tag", "value"}`` records to ``run_dir/log.jsonl`` (easy to read
    back in tests and notebooks). With TensorBoard available, also writes event files to
    ``run_dir/tensorboard``; without it, pictures go to ``run_dir/images/<tag>_<step>.png``.
    ``enabled=False`` (DDP ranks other than 0) makes every call a no-op.
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._writer = None
        self._file = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.run_dir / "log.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                SummaryWriter = None  # noqa: N806
            if SummaryWriter is not None:
                self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))

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


def read_log(run_dir: str | Path) -> list[dict[str, float]]:
    """The records of ``run_dir/log.jsonl`` in order."""
    path = Path(run_dir) / "log.jsonl"
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
