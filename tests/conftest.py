"""Shared fixtures: the reference test vectors (``tests/vectors.py``), synthetic worlds, stubs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.vectors import VECTORS, shared_folder

# Fixtures that synthesise a whole world: a test using one is end-to-end, so ``slow``.
WORLD_FIXTURES = ("kitti_world", "nyu_world")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test built on a synthetic world (:data:`WORLD_FIXTURES`), so the
    quick loop (``make quick``: ``-m "not slow"``) never waits for one to be written."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in WORLD_FIXTURES):
            item.add_marker(pytest.mark.slow)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs one worker per core) each worker, and each process
    it starts, computes on one thread: workers with a thread per core each would oversubscribe
    the CPU."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
        os.environ["OMP_NUM_THREADS"] = "1"  # and so do the commands the tests start


@pytest.fixture(scope="session")
def testvectors() -> Path:
    """``tests/data/vectors``: the reference test vectors kept in the repository."""
    if not VECTORS.is_dir():
        pytest.fail(f"reference test vectors missing from the checkout: {VECTORS}")
    return VECTORS


@pytest.fixture(scope="session")
def shared_vectors() -> Callable[[str], Path]:
    """``shared_vectors("litemono")``: a folder of ``../shared/testvectors`` too large for the
    repository; skips without it, fails with ``DEPTHKIT_REQUIRE_SHARED=1``."""
    return shared_folder


@pytest.fixture(scope="session")
def nyu_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic NYU world: ``raw/`` scenes (with truth.npz) + labeled .mat + splits.mat."""
    from pipelines.synth import write_nyu_labeled

    out = tmp_path_factory.mktemp("nyu_world")
    write_nyu_labeled(out, frames=6, seed=3)
    return out


@pytest.fixture(scope="session")
def kitti_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic KITTI raw world (two dates, three drives, splits, truth.npz)."""
    from pipelines.synth import write_kitti

    out = tmp_path_factory.mktemp("kitti_world")
    write_kitti(out, frames=5, seed=3)
    return out


@pytest.fixture
def stub_segmenter(monkeypatch: pytest.MonkeyPatch):
    """Replace DeepLabv3 by a model that predicts one VOC class everywhere.

    Call the fixture with the class index; ``pipelines.passes.masks.build_segmenter`` then
    returns it.
    """
    import torch

    import pipelines.passes.masks

    class Constant(torch.nn.Module):
        def __init__(self, label: int) -> None:
            super().__init__()
            self.label = label
            self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the model a device

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            out = torch.zeros(x.shape[0], 21, *x.shape[2:])
            out[:, self.label] = 1
            return {"out": out}

    def install(label: int) -> None:
        monkeypatch.setattr(
            pipelines.passes.masks, "build_segmenter", lambda *a, **k: Constant(label)
        )

    return install


@pytest.fixture
def kill_on_call(monkeypatch: pytest.MonkeyPatch):
    """Make a block-function class raise ``RuntimeError("killed")`` on its ``n``-th call.

    Simulates a conversion killed mid-way; ``monkeypatch.undo()`` in the test restores it.
    """

    def install(cls: type, n: int) -> None:
        original = cls.__call__
        calls: list[int] = []

        def dying(self: object, block: int, rows: slice) -> object:
            calls.append(block)
            if len(calls) == n:
                raise RuntimeError("killed")
            return original(self, block, rows)

        monkeypatch.setattr(cls, "__call__", dying)

    return install
