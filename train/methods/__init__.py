"""Training methods as plug-ins: the :class:`~train.methods.base.Method` protocol and a registry.

Add a method by writing one file here with a :class:`Method` subclass and listing it in
:data:`METHODS`; presets that use it go in :mod:`train.engine.presets`.
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
)
from train.methods.densedepth import DenseDepth, DenseDepthParams
from train.methods.featdepth import FeatDepth, FeatDepthParams
from train.methods.manydepth import ManyDepth, ManyDepthParams  # temporary, until issue 20
from train.methods.monodepth2 import Monodepth2, Monodepth2Params
from train.methods.segdepth import SegDepth, SegDepthParams

METHODS: dict[str, type[Method]] = {
    m.name: m for m in (Monodepth2, FeatDepth, SegDepth, DenseDepth, ManyDepth)
}


def method_class(name: str) -> type[Method]:
    """The registered method called ``name``; ValueError listing the methods otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(sorted(METHODS))}")
    return METHODS[name]


__all__ = [
    "METHODS",
    "DenseDepth",
    "DenseDepthParams",
    "FeatDepth",
    "FeatDepthParams",
    "Forward",
    "LoaderRequest",
    "LossOutput",
    "ManyDepth",
    "ManyDepthParams",
    "Method",
    "Monodepth2",
    "Monodepth2Params",
    "Networks",
    "OptimiserSpec",
    "Predictor",
    "Scaling",
    "SegDepth",
    "SegDepthParams",
    "method_class",
]
