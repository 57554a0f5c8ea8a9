"""Options of ``prepare-nyu`` (shared by the driver and the store attributes it records)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.store.options import check_count, check_fraction, check_size
from pipelines.store.schema import DEFAULT_CHUNK


@dataclass(frozen=True)
class NyuPrepareOptions:
    """Options of ``prepare-nyu`` (CLI defaults).

    ``size``, ``stride``, ``neighbour_gap``, ``sample``, ``seed``, ``fill``, ``val_fraction``,
    ``include_test_scenes``, ``glob`` and ``chunk`` shape the content (fingerprint);
    ``workers``, ``scheduler`` and ``progress`` only how it is computed. ``sample`` N: N synced
    frames drawn by ``seed`` across the kept scenes, each with its -/+ ``neighbour_gap`` synced
    neighbours, instead of the ``stride`` grid.
    """

    size: tuple[int, int] = (288, 384)
    stride: int = 1
    neighbour_gap: int = 1
    sample: int | None = None
    seed: int = 0
    fill: bool = False
    val_fraction: float = 0.0
    include_test_scenes: bool = False
    glob: str | None = None
    masks: str = "none"  # none | deeplabv3
    seg_arch: str = "mobilenet_v3_large"
    seg_weights: str | None = None  # None = torch hub cache
    workers: int | None = None  # None = all cores
    scheduler: str | None = None
    overwrite: bool = False
    chunk: int = DEFAULT_CHUNK
    progress: bool = True

    def __post_init__(self) -> None:
        """Sizes and counts are checked when the options are made, before any work."""
        check_size(self.size, "--size")
        for option, value in (("--stride", self.stride), ("--neighbour-gap", self.neighbour_gap),
                              ("--chunk", self.chunk), ("--workers", self.workers)):  # fmt: skip
            check_count(option, value)
        if self.sample is not None:
            check_count("--sample", self.sample)
            if self.stride != 1:
                raise ValueError(
                    "--sample draws synced frames (neighbours at -/+ --neighbour-gap synced "
                    "frames); --stride is for the grid setting: give one of them"
                )
        check_fraction("--val-fraction", self.val_fraction)
