"""Lite-Mono's reference vectors (``../shared/testvectors/litemono``, spec modern_methods.md 3.2).

``shared_vectors`` is a stand-in for the shared ``tests/conftest.py`` fixture of the same name
(being added elsewhere; remove this one when it lands): the path of ``../shared/testvectors``,
skipping the test when the folder is absent, failing instead when ``DEPTHKIT_REQUIRE_SHARED=1``
(CI). The loaders return float32 tensors of the float16-valued weights (spec 3.1).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_VECTORS = ROOT.parent / "shared" / "testvectors"
VARIANTS_WITH_VECTORS = ("lite-mono", "lite-mono-tiny")


@pytest.fixture(scope="session")
def shared_vectors() -> Path:
    """``../shared/testvectors``: skip when absent, fail with ``DEPTHKIT_REQUIRE_SHARED=1``."""
    if not SHARED_VECTORS.is_dir():
        message = f"reference test vectors not found at {SHARED_VECTORS}"
        if os.environ.get("DEPTHKIT_REQUIRE_SHARED") == "1":
            pytest.fail(message + " (DEPTHKIT_REQUIRE_SHARED=1)")
        pytest.skip(message)
    return SHARED_VECTORS


def state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A stored state dict: floating arrays as float32 tensors, integers unchanged."""
    out = {}
    for key, array in np.load(path).items():
        tensor = torch.from_numpy(np.array(array))
        out[key] = tensor.float() if tensor.is_floating_point() else tensor
    return out


def litemono_net(folder: Path, variant: str, drop_path_rate: float = 0.2) -> torch.nn.Module:
    """``litemono_depth`` of ``variant`` at 192x640 with the vectors' encoder and decoder."""
    from train.models import build_network

    net = build_network("litemono_depth", variant=variant, drop_path_rate=drop_path_rate)
    net.encoder.load_state_dict(state_dict(folder / "litemono" / f"{variant}_encoder.npz"))
    net.decoder.load_state_dict(state_dict(folder / "litemono" / f"{variant}_depth.npz"))
    return net
