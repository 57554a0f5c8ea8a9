"""Shared fixtures: the reference test vectors in ../shared/testvectors (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTVECTORS = ROOT.parent / "shared" / "testvectors"


@pytest.fixture(scope="session")
def testvectors() -> Path:
    """Path of ``../shared/testvectors``; skips the test when that folder is not there."""
    if not TESTVECTORS.is_dir():
        pytest.skip(f"reference test vectors not found at {TESTVECTORS}")
    return TESTVECTORS
