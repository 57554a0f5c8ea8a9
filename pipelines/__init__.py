"""Store schema, dask-driven writers, DeepLabv3 masks, streaming dataset and synthetic worlds.

Sub-packages: :mod:`pipelines.store` (schema, reader, writer, runner, info/verify),
:mod:`pipelines.prepare` (``prepare-kitti``, ``prepare-nyu``), :mod:`pipelines.passes` (arrays
added to finished stores: masks), :mod:`pipelines.loader` (streaming dataset, augmentation) and
:mod:`pipelines.synth` (synthetic worlds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.store.reader import Store, open_store
    from pipelines.store.writer import StoreWriter

__all__ = ["Store", "StoreWriter", "open_store"]


def __getattr__(name: str) -> Any:
    # Lazy so that importing a light submodule (e.g. pipelines.synth) does not import zarr.
    if name in ("Store", "open_store"):
        from pipelines.store import reader

        return getattr(reader, name)
    if name == "StoreWriter":
        from pipelines.store.writer import StoreWriter

        return StoreWriter
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
