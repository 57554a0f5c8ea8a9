"""DDP on the CPU with two gloo processes under ``torchrun``: exact resume with per-rank random
state, and validation over the whole val store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from pipelines.store.toystore import ToySpec, write_toy_store
from tests.ddp.worker import TINY
from tests.helpers import validation_of_fresh_model
from train.engine.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def torchrun(*args: str) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    with tempfile.TemporaryDirectory() as scratch:  # torchrun's own files go there, then away
        env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TMPDIR": scratch}
        done = subprocess.run(
            [*cmd, str(ROOT / "tests" / "ddp" / "worker.py"), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ddp") / "train.zarr"
    write_toy_store(path, ToySpec(n_sequences=2, frames_per_sequence=6, image_size=(64, 64)))
    return str(path)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    payload = read_checkpoint(run / "checkpoints" / "last.pt")
    return {f"{n}.{k}": v for n, sd in payload["models"].items() for k, v in sd.items()}


def test_resume_gives_every_rank_its_own_random_state(store: str, tmp_path: Path) -> None:
    """An interrupted and resumed 2-rank run ends with the weights of an uninterrupted one (with
    rank 0's augmentation state restored on both ranks it would not); every rank's global
    random state is saved."""
    torchrun("train", store, f"{tmp_path / 'full'}:2", f"{tmp_path / 'split'}:1")
    torchrun("train", store, f"{tmp_path / 'split'}:2:resume")  # fresh processes
    full, split = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    assert all(torch.equal(full[k], split[k]) for k in full)
    ranks = read_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["rng"]["ranks"]
    assert len(ranks) == 2


def test_step_seeds_differ_by_rank_step_and_stream() -> None:
    from train.engine.distributed import step_seed

    seeds = {step_seed(0, r, s, g) for r in range(4) for s in range(50) for g in range(2)}
    assert len(seeds) == 4 * 50 * 2


def test_validation_covers_the_whole_store_on_two_ranks(store: str, tmp_path: Path) -> None:
    torchrun("validate", store, str(tmp_path / "v.json"))
    two = json.loads((tmp_path / "v.json").read_text())
    one = validation_of_fresh_model(store, TINY)
    assert two["val/loss"] == pytest.approx(one["val/loss"], rel=1e-6)
