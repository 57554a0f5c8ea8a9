"""What an evaluation produces: the predictions over a store and the report of its metrics.

Apart from :mod:`train.eval.evaluate` (which computes them) and :mod:`train.eval.report` (which
draws them), so that neither imports the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from train.eval.files import atomic_bytes, check_output_path
from train.eval.metrics import format_metrics
from train.eval.protocols import Protocol


@dataclass
class Predictions:
    """Predictor outputs over a store, in store sample order.

    Attributes:
        depths: float32 ``(N, h, w)`` depth in the method's units at network resolution.
        gt_depths: N float32 ground-truth maps, un-padded with ``gt_size`` (metres).
        images: uint8 ``(N, h, w, 3)`` network inputs (kept only when asked for).
        names: N dicts naming each sample (``sequence``, ``frame``, ``view``).
        missing_previous: samples given a black previous frame (two-frame predictors).
    """

    depths: np.ndarray
    gt_depths: list[np.ndarray]
    images: np.ndarray | None = None
    names: list[dict[str, object]] = field(default_factory=list)
    missing_previous: int = 0


@dataclass
class EvalReport:
    """Metrics of one evaluation and how they were obtained (``names``: what each image of
    ``per_image`` is; ``method``, ``preset``, ``network_size``: the model evaluated;
    ``warnings``: the ``warning:`` lines printed; ``missing_previous``: test images given a black
    previous frame, None for a one-frame model)."""

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
    names: list[dict[str, object]] = field(default_factory=list)
    method: str | None = None
    preset: str | None = None
    network_size: tuple[int, int] | None = None
    warnings: list[str] = field(default_factory=list)
    missing_previous: int | None = None

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
            "method": self.method,
            "preset": self.preset,
            "network_size": list(self.network_size) if self.network_size else None,
            "post_process": self.post_process,
            "flip_average": self.protocol.flip_average,
            "seconds": self.seconds,
            "warnings": self.warnings,
        } | ({} if self.missing_previous is None else {"missing_previous": self.missing_previous})

    def name(self, i: int) -> str:
        """Image ``i`` in words: ``DRIVE frame F (view V)``, or ``#i``."""
        info = self.names[i] if i < len(self.names) else {}
        if "sequence" not in info:
            return f"#{i}"
        view = f", view {info['view']}" if info.get("view") else ""
        return f"{info['sequence']} frame {info['frame']}{view}"

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
        if self.missing_previous is not None:
            done += (
                f", previous frames: {self.missing_previous} missing (black image, as the "
                "reference)"
            )
        head = (
            f"{self.store}: {self.n_images} images, protocol {self.protocol.name}, "
            f"scaling {scaling}{ratio}{done}"
        )
        tail = f"\nreport: {self.report_dir}" if self.report_dir else ""
        return f"{head}\n{self.table()}{tail}"


def write_json(report: EvalReport, path: str | Path) -> Path:
    """Write ``report.to_dict()`` as indented JSON, atomically; returns the path.

    Raises:
        ValueError: a parent of ``path`` is a file (:func:`train.eval.files.check_output_path`).
    """
    path = check_output_path(path, "file")
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_bytes(path, (json.dumps(report.to_dict(), indent=2) + "\n").encode("utf-8"))
