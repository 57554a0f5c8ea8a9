"""Where the reference test vectors live: ``tests/data/vectors/`` in the repository, and
``../shared/testvectors/`` for the folders too large for it (``litemono/``, ``manydepth/``).

A test of a shared folder skips, with its reason, on a clone without ``../shared`` (every user's
clone); with ``DEPTHKIT_REQUIRE_SHARED=1`` (CI, ``.ci/run``) it fails instead, so that CI cannot
pass by skipping the evidence.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

VECTORS = Path(__file__).resolve().parent / "data" / "vectors"
SHARED_VECTORS = Path(__file__).resolve().parents[2] / "shared" / "testvectors"
REQUIRE_SHARED_ENV = "DEPTHKIT_REQUIRE_SHARED"


def shared_required() -> bool:
    """True when ``DEPTHKIT_REQUIRE_SHARED`` turns missing shared vectors into failures."""
    return os.environ.get(REQUIRE_SHARED_ENV, "") not in ("", "0")


def shared_folder(name: str, root: Path = SHARED_VECTORS) -> Path:
    """``root / name``; skips the calling test when that folder is missing, or fails it when
    :func:`shared_required`."""
    folder = root / name
    if folder.is_dir():
        return folder
    reason = (
        f"reference test vectors {name}/ not found at {folder} (kept in ../shared/testvectors, "
        "too large for the repository)"
    )
    if shared_required():
        pytest.fail(f"{reason}; {REQUIRE_SHARED_ENV}=1 requires them", pytrace=False)
    pytest.skip(reason)
