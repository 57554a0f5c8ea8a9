"""Monodepth2 M, S and MS give bitwise the numbers recorded before the methods refactor.

``tests/golden/monodepth2.json`` was written by the pre-refactor code (commit 7591857) on
:func:`tests.golden_monodepth2.fixed_batch`, on one CPU thread with deterministic algorithms (the
thread count changes how reductions are blocked, hence the last bits). The last bits also
depend on the torch build (recorded with torch 2.14.1): after a torch upgrade, re-record them
with the pre-refactor code, ``tests/golden/record_pre_refactor.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.golden_monodepth2 import golden_values

GOLDEN = json.loads((Path(__file__).parent / "golden" / "monodepth2.json").read_text())


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_monodepth2_losses_and_gradients_are_bitwise_unchanged(name: str) -> None:
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        got = golden_values(name)
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)
    want = GOLDEN[name]
    assert got["total"].hex() == want["total"]
    assert [v.hex() for v in got["per_scale"]] == want["per_scale"]
    assert {k: v.hex() for k, v in got["grad_norm"].items()} == want["grad_norm"]
