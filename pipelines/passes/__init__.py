"""Computations that add an array to a finished store (imports torch).

* :mod:`~pipelines.passes.masks`: DeepLabv3 class masks into ``seg``.
"""

from __future__ import annotations

from pipelines.passes.masks import (
    MaskReport,
    MissingWeightsError,
    build_segmenter,
    check_weights,
    compute_masks,
    segment,
    weights_file,
)

__all__ = [
    "MaskReport",
    "MissingWeightsError",
    "build_segmenter",
    "check_weights",
    "compute_masks",
    "segment",
    "weights_file",
]
