"""Expected values kept in files and compared with stated tolerances.

The practice of torchvision's ``test/test_models.py`` (``_assert_expected``) and kornia's
``BaseTester``: a test computes named float values, and :func:`assert_expected` compares them
with the ones recorded in a JSON file, with an ``(rtol, atol)`` per group of values (the group
is the key up to its first ``/``), ``|got - want| <= atol + rtol * |want|``. Running the tests
with ``DEPTHKIT_RECORD_EXPECTED=1`` writes the files instead (review the diff, then commit).
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path

import torch

RECORD_ENV = "DEPTHKIT_RECORD_EXPECTED"


def recording() -> bool:
    """True when ``DEPTHKIT_RECORD_EXPECTED`` asks to re-record the expected files."""
    return os.environ.get(RECORD_ENV, "") not in ("", "0")


def mismatches(
    got: Mapping[str, float],
    want: Mapping[str, float],
    tolerances: Mapping[str, tuple[float, float]],
) -> list[str]:
    """One line per value of ``got`` outside its group's tolerance of ``want`` (or missing)."""
    problems = [f"{key}: not computed" for key in sorted(set(want) - set(got))]
    problems += [f"{key}: not in the expected file" for key in sorted(set(got) - set(want))]
    for key in sorted(set(got) & set(want)):
        rtol, atol = tolerances[key.split("/")[0]]
        error = abs(got[key] - want[key])
        if not error <= atol + rtol * abs(want[key]):
            rel = error / abs(want[key]) if want[key] else float("inf")
            problems.append(
                f"{key}: got {got[key]!r}, expected {want[key]!r} (relative {rel:.2e}; "
                f"rtol {rtol:g}, atol {atol:g})"
            )
    return problems


def assert_expected(
    got: Mapping[str, float],
    path: Path,
    tolerances: Mapping[str, tuple[float, float]],
) -> None:
    """Compare ``got`` with the values in ``path`` (or record them there, see the module).

    Raises:
        AssertionError: listing every value out of tolerance, or when ``path`` is missing.
    """
    if recording():
        record = {
            "recorded_with": {
                "torch": torch.__version__,
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "machine": platform.machine(),
            },
            "values": dict(got),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")
        return
    if not path.is_file():
        raise AssertionError(f"{path} does not exist: record it with {RECORD_ENV}=1")
    want = json.loads(path.read_text())["values"]
    problems = mismatches(got, want, tolerances)
    assert not problems, f"{path.name}: values differ from the recorded ones\n" + "\n".join(
        problems
    )
