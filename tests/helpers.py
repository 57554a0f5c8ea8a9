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


def assert_opens_in_xarray(path: Path) -> None:
    """``xarray.open_zarr`` opens the store at ``path`` from its consolidated metadata, with every
    array (bookkeeping ``_done`` included) present under its own dimension names."""
    import zarr

    xr = pytest.importorskip("xarray")
    arrays = dict(zarr.open_group(str(path), mode="r", use_consolidated=False).arrays())
    consolidated = zarr.open_group(str(path), mode="r", use_consolidated=True)  # raises if absent
    assert sorted(consolidated.metadata.consolidated_metadata.metadata) == sorted(arrays)
    with xr.open_zarr(path, consolidated=True) as ds:
        assert sorted(ds.variables) == sorted(arrays)
        for name, arr in arrays.items():
            dims = arr.metadata.dimension_names
            assert dims is not None and None not in dims, name
            assert (ds[name].dims, ds[name].shape) == (tuple(dims), arr.shape), name
        assert ds.attrs["complete"] is True
        assert (ds["samples"].values == arrays["samples"][...]).all()


def validation_of_fresh_model(store: str, overrides: dict[str, Any]) -> dict[str, float]:
    """:func:`train.engine.validate.validate` of a seeded, untrained ``monodepth2-m``; under
    ``torchrun`` the process group is initialised first (validation runs on every rank)."""
    import torch

    from train.engine.config import apply_overrides
    from train.engine.distributed import init_distributed
    from train.engine.runtime import build_runtime
    from train.engine.validate import validate
    from train.methods import preset

    init_distributed("cpu")
    config = apply_overrides(preset("monodepth2-m"), overrides)
    method, nets, _ = method_parts(config)
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    return validate(runtime, method, nets, store)


TINY_MODEL = {"pretrained": False, "height": 64, "width": 96, "device": "cpu"}


def tiny_checkpoint(path: Path, preset_name: str = "monodepth2-m", **changes: Any) -> Path:
    """A weights-only checkpoint of ``preset_name`` with random weights at 64x96."""
    from train.engine.checkpoint import TrainState, save_weights
    from train.engine.config import apply_overrides
    from train.methods import preset

    config = apply_overrides(preset(preset_name), {**TINY_MODEL, **changes})
    _, nets, _ = method_parts(config)
    return save_weights(path, config, nets, TrainState())


def one_error_line(err: str) -> str:
    """The single ``error: ...`` line of a failed command's stderr (asserted to be alone)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]
