"""Helpers shared by the test modules (fixtures live in ``conftest.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cli


def run_cli(args: list[str]) -> int:
    """``cli.main(args)``'s exit code (Typer always exits: SystemExit is required)."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    return int(exit_.value.code or 0)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative path -> bytes): two stores are identical when equal."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def method_parts(config: Any) -> tuple[Any, Any, list[Any]]:
    """``(method, networks, optimisers)`` of a training config, on the CPU."""
    from train.methods import method_class

    method = method_class(config.method)(config)
    nets = method.build_networks("cpu")
    return method, nets, method.optimisers(nets)
