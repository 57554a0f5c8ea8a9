"""``make test`` re-runs the numerics tests under the other ATen CPU capabilities of the machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cpu_capabilities import other_capabilities

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("machine", "current", "others"),
    [
        ("AVX512", None, ["default", "avx2"]),
        ("AVX512", "avx2", ["default", "avx512"]),
        ("AVX512", "default", ["avx2", "avx512"]),
        ("AVX2", None, ["default"]),
        ("DEFAULT", None, []),
        ("NO AVX", None, []),
        ("SVE256", None, ["default"]),
    ],
)
def test_other_capabilities(machine: str, current: str | None, others: list[str]) -> None:
    assert other_capabilities(machine, current) == others


def test_module_prints_capabilities_torch_accepts() -> None:
    env = os.environ | {"ATEN_CPU_CAPABILITY": "default"}
    run = [sys.executable, "-m", "tests.cpu_capabilities"]
    out = subprocess.run(run, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    names = out.stdout.split()
    assert "default" not in names  # the main run's own
    assert set(names) <= {"avx2", "avx512", "sve256", "vsx", "zvector"}


def test_make_test_runs_them() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "-m tests.cpu_capabilities" in makefile
    assert "ATEN_CPU_CAPABILITY=$$cap $(PY) -m pytest -q -m numerics" in makefile
