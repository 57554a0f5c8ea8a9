"""Store schema, dask-driven writers, DeepLabv3 masks, streaming dataset and synthetic worlds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.store import Store, open_store
    from pipelines.writer import StoreWriter

__all__ = ["Store", "StoreWriter", "open_store"]


def __getattr__(name: str) -> Any:
    # Lazy so that importing a light submodule (e.g. pipelines.synth) does not import zarr.
    if name in ("Store", "open_store"):
        from pipelines import store

        return getattr(store, name)
    if name == "StoreWriter":
        from pipelines.writer import StoreWriter

        return StoreWriter
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
