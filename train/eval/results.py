"""What an evaluation produces: the predictions over a store and the report of its metrics.

Apart from :mod:`train.eval.evaluate` (which computes them) and :mod:`train.eval.report` (which
draws them), so that neither imports the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from train.eval.metrics import format_metrics
from train.eval.protocols import Protocol


@dataclass
class Predictions:
    """Predictor outputs over a store, in store sample order.

    Attributes:
        depths: float32 ``(N, h, w)`` depth in the method's units at network resolution.
        gt_depths: N float32 ground-truth maps, un-padded with ``gt_size`` (metres).
        images: uint8 ``(N, h, w, 3)`` network inputs (kept only when asked for).
    """

    depths: np.ndarray
    gt_depths: list[np.ndarray]
    images: np.ndarray | None = None


@dataclass
class EvalReport:
    """Metrics of one evaluation and how they were obtained."""

    protocol: Protocol
    metrics: dict[str, float]
    n_images: int
    store: str
    checkpoint: str | None = None
    post_process: bool = False
    seconds: float = 0.0
    images_written: list[str] = field(default_factory=list)
    per_image: list[dict[str, float]] = field(default_factory=list)
    report_dir: str | None = None

    def table(self) -> str:
        """The printed metrics table."""
        return format_metrics(self.metrics, self.protocol.metric_names)

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol.name,
            "scaling": self.protocol.scaling.name,
            "metrics": self.metrics,
            "n_images": self.n_images,
            "store": self.store,
            "checkpoint": self.checkpoint,
            "post_process": self.post_process,
            "seconds": self.seconds,
        }

    def __str__(self) -> str:
        s = self.protocol.scaling
        scaling = "per-image median" if s.median else f"x{s.factor:g} (fixed)"
        ratio = ""
        if "ratio_median" in self.metrics:
            ratio = (
                f", ratio median {self.metrics['ratio_median']:.3f}"
                f" std {self.metrics['ratio_std']:.3f}"
            )
        done = ", post-processed" if self.post_process else ""
        done += ", flip-averaged" if self.protocol.flip_average else ""
        head = (
            f"{self.store}: {self.n_images} images, protocol {self.protocol.name}, "
            f"scaling {scaling}{ratio}{done}"
        )
        tail = f"\nreport: {self.report_dir}" if self.report_dir else ""
        return f"{head}\n{self.table()}{tail}"


def write_json(report: EvalReport, path: str | Path) -> Path:
    """Write ``report.to_dict()`` as indented JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path
