"""Lite-Mono's reference vectors (``../shared/testvectors/litemono``, spec modern_methods.md 3.2).

The folder (14 MB) stays in ``../shared/testvectors``: the repository's own vectors
(``tests/data/vectors``) would pass the 25 MB budget with it. ``vectors_root`` skips without it
and fails under ``DEPTHKIT_REQUIRE_SHARED=1`` (CI). The loaders return float32 tensors of the
float16-valued weights (spec 3.1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.vectors import shared_folder

VARIANTS_WITH_VECTORS = ("lite-mono", "lite-mono-tiny")


@pytest.fixture(scope="session")
def vectors_root() -> Path:
    """``../shared/testvectors``, holding ``litemono/`` (kept there: too large for the
    repository); skips without it, fails with ``DEPTHKIT_REQUIRE_SHARED=1``
    (:func:`tests.vectors.shared_folder`)."""
    return shared_folder("litemono").parent


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
