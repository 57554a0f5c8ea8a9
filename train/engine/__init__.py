"""The engine: config and presets, runtime (device, AMP, compile, DDP), the trainer, checkpoints,
validation and the run log. It drives any :class:`train.methods.Method` without naming a network."""
