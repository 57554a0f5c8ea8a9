"""Dataset constants shared by the stores' writers and their readers (training, evaluation).

One definition each; ``nyutools`` keeps the toolbox's own crop slices (it imports nothing of
ours), and a test checks that they agree with :data:`NYU_EVAL_CROP`.
"""

from __future__ import annotations

KITTI_NORMALISED_INTRINSICS: tuple[tuple[float, ...], ...] = (
    (0.58, 0.0, 0.5, 0.0),
    (0.0, 1.92, 0.5, 0.0),
    (0.0, 0.0, 1.0, 0.0),
    (0.0, 0.0, 0.0, 1.0),
)
"""monodepth2's KITTI intrinsics: row 0 = (fx, cx) / image width, row 1 = (fy, cy) / height."""

NYU_SIZE = (480, 640)
"""Height and width of NYU Depth V2 RGB and labeled depth."""

NYU_EVAL_CROP = (44, 471, 40, 601)
"""NYU evaluation crop on 480x640 as (top, bottom, left, right): rows [44, 471), cols [40, 601)."""

NYU_FILLED_DEPTH = "colorization in-painted (fill_depth), then nearest-neighbour resize"
"""``attrs["frames"]["depth"]`` of an NYU raw store prepared with ``prepare-nyu --fill`` (its
``depth`` is then dense: what supervised methods train on)."""
