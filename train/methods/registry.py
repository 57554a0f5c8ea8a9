"""The method and preset registries, filled by decorators, as torchvision's model registry is.

A method file (in this package, or a plug-in outside the repository) registers its class with
:func:`register_method` and its presets with :func:`register_preset`; nothing lists them by hand.
Lookups (:func:`method_class`, :func:`preset`, :func:`methods`, :func:`presets`) first import every
module of this package and then the plug-ins (:mod:`train.methods.plugins`), once.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from train.engine.config import TrainConfig
from train.methods.base import Method
from train.methods.plugins import load_plugins

M = TypeVar("M", bound=type[Method])

_METHODS: dict[str, type[Method]] = {}
_PRESETS: dict[str, TrainConfig] = {}
_PLACES: dict[tuple[str, str], str] = {}  # (kind, name) -> "file:line" of its registration
_INFRASTRUCTURE = {"base", "registry", "plugins"}
_loaded = False


def register_method(cls: M) -> M:
    """Class decorator: add a :class:`Method` subclass to the registry under ``cls.name``.

    Raises:
        ValueError: no ``name``, no ``Params``, or a name already registered (both places named).
    """
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ValueError(f"register_method: {cls!r} is not a Method subclass")
    if not cls.name or not isinstance(cls.name, str):
        raise ValueError(f"register_method: {cls.__qualname__} sets no `name`")
    if "Params" not in vars(cls) and cls.Params is object:
        raise ValueError(f"register_method: {cls.__qualname__} sets no `Params` dataclass")
    _claim("method", cls.name, _class_place(cls))
    _METHODS[cls.name] = cls
    return cls


def register_preset(config: TrainConfig) -> TrainConfig:
    """Add ``config`` to the presets under ``config.preset``; returns it.

    Its method must be registered first (the preset's ``params`` are checked against the
    method's ``Params``).

    Raises:
        ValueError: a preset name already registered (both places named), an unknown method, or
            params of another class.
    """
    if config.method not in _METHODS:
        raise ValueError(
            f"register_preset {config.preset!r}: method {config.method!r} is not registered "
            "(register the method class first)"
        )
    config = with_params(config)
    _claim("preset", config.preset, _caller_place())
    _PRESETS[config.preset] = config
    return config


def load_methods() -> None:
    """Import every module of :mod:`train.methods` and then the plug-ins (once).

    Raises:
        ValueError: a plug-in that fails to import (one line naming it and the exception).
    """
    global _loaded
    if _loaded:
        return
    package = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(package)]), key=lambda i: i.name):
        if info.name not in _INFRASTRUCTURE:
            importlib.import_module(f"{__package__}.{info.name}")
    load_plugins()
    _loaded = True


def methods() -> dict[str, type[Method]]:
    """Every registered method by name (built-ins, then plug-ins, in registration order)."""
    load_methods()
    return dict(_METHODS)


def presets() -> dict[str, TrainConfig]:
    """Every registered preset by name, in registration order."""
    load_methods()
    return dict(_PRESETS)


def method_class(name: str) -> type[Method]:
    """The registered method called ``name``; ValueError listing the methods otherwise."""
    registered = methods()
    if name not in registered:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(sorted(registered))}")
    return registered[name]


def preset(name: str) -> TrainConfig:
    """The preset called ``name``; ValueError listing the presets otherwise."""
    registered = presets()
    if name not in registered:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(registered)}")
    return registered[name]


def with_params(config: TrainConfig) -> TrainConfig:
    """``config`` with ``params`` set: the method's default ``Params()`` when None.

    Raises:
        ValueError: unknown method, or params that are not the method's ``Params``.
    """
    params_cls = _method(config.method).Params
    if config.params is None:
        return replace(config, params=params_cls())
    if not isinstance(config.params, params_cls):
        raise ValueError(
            f"params of method {config.method!r} must be {params_cls.__name__}, "
            f"not {type(config.params).__name__}"
        )
    return config


def build_method(config: TrainConfig) -> Method:
    """An instance of ``config.method`` for ``config`` (default params filled in)."""
    config = with_params(config)
    return method_class(config.method)(config)


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """:meth:`TrainConfig.from_dict` with the params class of the stored method."""
    name = values.get("method", TrainConfig.method)
    return with_params(TrainConfig.from_dict(values, method_class(name).Params))


def depth_presets(method: str) -> list[str]:
    """The presets of ``method`` that train a depth network (not an auto-encoder stage)."""
    return [
        name
        for name, config in presets().items()
        if config.method == method and build_method(config).predicts_depth
    ]


def describe_presets() -> str:
    """One line per preset: name, method, dataset, input size (for ``train --help``)."""
    return "\n".join(
        f"{name}: {c.method} on {c.dataset}, {c.height}x{c.width}" for name, c in presets().items()
    )


def method_origin(cls: type[Method]) -> dict[str, str] | None:
    """Where a plug-in method comes from (``module`` and ``file``), None for a built-in one:
    recorded in checkpoints so an error can say which plug-in to load."""
    if cls.__module__.startswith(f"{__package__}."):
        return None
    try:
        file = inspect.getfile(cls)
    except (TypeError, OSError):
        file = ""
    return {"module": cls.__module__, "file": file}


def _method(name: str) -> type[Method]:
    # registered already (also while the package is being discovered), else look it up
    return _METHODS[name] if name in _METHODS else method_class(name)


def _claim(kind: str, name: str, place: str) -> None:
    first = _PLACES.get((kind, name))
    if first is not None:
        raise ValueError(f"{kind} {name!r} is registered twice: at {first} and at {place}")
    _PLACES[(kind, name)] = place


def _class_place(cls: type) -> str:
    try:
        return f"{inspect.getsourcefile(cls)}:{inspect.getsourcelines(cls)[1]}"
    except (TypeError, OSError):
        return cls.__module__


def _caller_place() -> str:
    frame = sys._getframe(2)  # the register_preset call
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"
