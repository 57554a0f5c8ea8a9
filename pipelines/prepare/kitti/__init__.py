"""``prepare-kitti``: plan (:mod:`.plan`), per-block pixel work (:mod:`.blocks`), driver
(:mod:`.prepare`)."""

from __future__ import annotations

from pipelines.prepare.kitti.prepare import KittiPrepareOptions, PrepareReport, prepare_kitti

__all__ = ["KittiPrepareOptions", "PrepareReport", "prepare_kitti"]
