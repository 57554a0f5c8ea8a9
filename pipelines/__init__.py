"""Store schema, dask-driven writers, DeepLabv3 masks, streaming dataset and synthetic worlds."""
