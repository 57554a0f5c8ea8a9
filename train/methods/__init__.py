"""Training methods as plug-ins: the :class:`~train.methods.base.Method` protocol and the method
and preset registries.

A method is one file: a :class:`Method` subclass decorated with :func:`register_method` and its
presets registered with :func:`register_preset`. The files of this package are found by
:func:`load_methods` (nothing lists them); files outside the repository are loaded as plug-ins
(:mod:`train.methods.plugins`: the ``depthkit.plugins`` entry points and ``DEPTHKIT_PLUGINS``).
See ``docs/extending.md``.
"""

from __future__ import annotations

from train.methods.base import (
    Forward,
    LoaderRequest,
    LossOutput,
    Method,
    Networks,
    OptimiserSpec,
    Predictor,
    Scaling,
    adam,
)
from train.methods.plugins import PluginError
from train.methods.registry import (
    build_method,
    config_from_dict,
    depth_presets,
    describe_presets,
    load_methods,
    method_class,
    method_origin,
    methods,
    preset,
    presets,
    register_method,
    register_preset,
    with_params,
)

__all__ = [
    "Forward",
    "LoaderRequest",
    "LossOutput",
    "Method",
    "Networks",
    "OptimiserSpec",
    "PluginError",
    "Predictor",
    "Scaling",
    "adam",
    "build_method",
    "config_from_dict",
    "depth_presets",
    "describe_presets",
    "load_methods",
    "method_class",
    "method_origin",
    "methods",
    "preset",
    "presets",
    "register_method",
    "register_preset",
    "with_params",
]
