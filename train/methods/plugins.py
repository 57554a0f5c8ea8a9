"""Plug-ins: method files outside the repository, imported before any method or preset is resolved.

Two sources, in this order:

* the entry-point group ``depthkit.plugins`` of installed distributions (each entry names a
  module, e.g. ``my_method = my_package.my_method``);
* the environment variable ``DEPTHKIT_PLUGINS``: entries separated by ``os.pathsep``, each a path
  to a ``.py`` file or an importable module name.

A plug-in registers its methods and presets at import (``@register_method``,
``register_preset(...)``). One that fails to import is one :class:`PluginError` naming it and the
exception.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

ENTRY_POINT_GROUP = "depthkit.plugins"
ENV_VAR = "DEPTHKIT_PLUGINS"
FILE_MODULE_PREFIX = "depthkit_plugin_"


class PluginError(ValueError):
    """A plug-in could not be imported."""


def plugin_entries() -> list[str]:
    """The ``DEPTHKIT_PLUGINS`` entries (paths or module names), empty ones dropped."""
    return [e.strip() for e in os.environ.get(ENV_VAR, "").split(os.pathsep) if e.strip()]


def load_plugins() -> list[str]:
    """Import every entry-point plug-in, then every ``DEPTHKIT_PLUGINS`` entry; returns the
    names of the modules imported.

    Raises:
        PluginError: one that fails to import (missing file, syntax error, exception at import).
    """
    loaded = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        loaded.append(_guarded(f"entry point {point.name} ({point.value})", point.load).__name__)
    for entry in plugin_entries():
        loaded.append(
            _guarded(f"{ENV_VAR} entry {entry}", lambda e=entry: import_plugin(e)).__name__
        )
    return loaded


def import_plugin(entry: str):
    """Import one plug-in: a ``.py`` file (as module ``depthkit_plugin_<stem>``, once per
    resolved path) or a module name."""
    if not (entry.endswith(".py") or os.sep in entry or (os.altsep and os.altsep in entry)):
        return importlib.import_module(entry)
    path = Path(entry).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == str(path):
            return module  # imported already (e.g. by a checkpoint's recorded path)
    name = FILE_MODULE_PREFIX + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _guarded(what: str, load):
    try:
        return load()
    except Exception as e:  # noqa: BLE001 - any failure of a user's file is reported as one line
        raise PluginError(f"plug-in {what} failed to import: {type(e).__name__}: {e}") from e
