"""The methods layer end to end: presets and ``--help``, refusals, old checkpoints, TensorBoard,
and the import rules of the layout."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts, run_cli
from train.engine.checkpoint import (
    TrainState,
    checkpoint_config,
    load_networks,
    read_checkpoint,
    save_checkpoint,
)
from train.engine.config import apply_overrides
from train.engine.trainer import train
from train.methods import method_class, methods, preset, presets

ROOT = Path(__file__).resolve().parents[1]
TINY = {"pretrained": False, "height": 64, "width": 64, "batch_size": 4, "workers": 0}
TINY |= {"device": "cpu", "log_every": 1}


@pytest.fixture(scope="module")
def nyu_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("nyu_toy") / "raw_train.zarr"
    write_toy_store(
        path, ToySpec(dataset="nyu-raw", n_sequences=1, frames_per_sequence=6, image_size=(64, 64))
    )
    return str(path)


def test_train_help_lists_every_method_and_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["train", "--help"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in [*presets(), *methods()])
    assert "per process" in text


def test_preset_for_another_dataset_is_refused(nyu_store: str, tmp_path: Path) -> None:
    config = apply_overrides(preset("monodepth2-m"), TINY)
    with pytest.raises(ValueError, match="kitti-raw.*nyu-raw"):
        train(config, nyu_store, tmp_path / "r", progress=False)
    from pipelines.store import open_store

    allowed = apply_overrides(config, ["check_dataset=false"])
    method_class(allowed.method)(allowed).check_store(open_store(nyu_store))


def test_unknown_set_key_is_one_line(nyu_store: str, tmp_path: Path, capsys) -> None:
    argv = [
        "train",
        "--preset",
        "monodepth2-nyu-m",
        "--train",
        nyu_store,
        "--out",
        str(tmp_path),
        "--set",
        "disparity_smothness=1",
    ]
    assert run_cli(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown config key 'disparity_smothness'") and "\n" not in err


def test_checkpoint_of_version_1_loads(tmp_path: Path) -> None:
    """A checkpoint written before methods were plug-ins (flat config, one optimiser)."""
    config = apply_overrides(preset("monodepth2-s"), TINY)
    _, nets, optimisers = method_parts(config)
    path = save_checkpoint(tmp_path / "new.pt", config, nets, optimisers, TrainState(2, 9))
    payload = torch.load(path, weights_only=False)
    flat = {
        k: v for k, v in payload["config"].items() if k not in ("method", "params", "check_dataset")
    }
    flat |= payload["config"]["params"]
    old = {
        "format": "depthkit-checkpoint/1",
        "config": flat,
        "models": payload["models"],
        "optimiser": payload["optimisers"]["main"],
        "scheduler": payload["schedulers"]["main"],
        "epoch": 2,
        "step": 9,
        "batch_in_epoch": 0,
        "rng": payload["rng"],
    }
    torch.save(old, tmp_path / "old.pt")
    upgraded = read_checkpoint(tmp_path / "old.pt")
    assert checkpoint_config(upgraded) == config
    assert upgraded["optimisers"]["main"] == payload["optimisers"]["main"]
    _, other, _ = method_parts(apply_overrides(config, {"seed": 3}))
    load_networks(upgraded, other)
    new, old = other["depth"].state_dict(), nets["depth"].state_dict()
    assert all(torch.equal(new[k], old[k]) for k in old)


def test_checkpoint_of_unknown_version_is_refused(tmp_path: Path) -> None:
    torch.save({"format": "depthkit-checkpoint/9", "config": {}}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="written as depthkit-checkpoint/9"):
        read_checkpoint(tmp_path / "future.pt")


def test_tensorboard_events_hold_losses_and_depth_images(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    store = tmp_path / "train.zarr"
    write_toy_store(store, ToySpec(n_sequences=1, frames_per_sequence=6, image_size=(64, 64)))
    config = apply_overrides(preset("monodepth2-m"), TINY | {"max_steps": 2})
    train(config, store, tmp_path / "run", progress=False)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/loss_scale0", "train/lr"} <= set(tags["scalars"])
    assert "train/disp" in tags["images"]
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]


# ------------------------------------------------------------------ layout rules
def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_numpy_packages_never_import_torch() -> None:
    for path in _modules("nyutools") + _modules("kitti"):
        assert not {n for n in _imports(path) if n.split(".")[0] == "torch"}, path


def test_nyu_crop_has_one_value() -> None:
    import nyutools
    from pipelines.store.constants import NYU_EVAL_CROP

    rows, cols = nyutools.CROP_ROWS, nyutools.CROP_COLS
    assert NYU_EVAL_CROP == (rows.start, rows.stop, cols.start, cols.stop)


def test_no_module_is_too_long() -> None:
    for package in ("train", "pipelines", "nyutools", "kitti"):
        for path in _modules(package):
            lines = len(path.read_text().splitlines())
            assert lines <= 420, f"{path.relative_to(ROOT)} has {lines} lines"
    assert len((ROOT / "cli.py").read_text().splitlines()) <= 420
