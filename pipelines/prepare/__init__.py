"""``prepare-kitti`` and ``prepare-nyu``: raw datasets -> schema v1 stores.

:mod:`pipelines.prepare.common` holds what both commands share; :mod:`pipelines.prepare.kitti`
and :mod:`pipelines.prepare.nyu` the per-dataset plan, block functions, attributes and driver.
The entry points are re-exported here (imported on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
    from pipelines.prepare.nyu.prepare import NyuPrepareOptions, prepare_nyu

__all__ = ["KittiPrepareOptions", "NyuPrepareOptions", "prepare_kitti", "prepare_nyu"]


def __getattr__(name: str) -> Any:
    # Lazy: importing pipelines.prepare.common must not import both dataset drivers.
    if name in ("KittiPrepareOptions", "prepare_kitti"):
        from pipelines.prepare.kitti import prepare

        return getattr(prepare, name)
    if name in ("NyuPrepareOptions", "prepare_nyu"):
        from pipelines.prepare.nyu import prepare

        return getattr(prepare, name)
    raise AttributeError(f"module 'pipelines.prepare' has no attribute {name!r}")
