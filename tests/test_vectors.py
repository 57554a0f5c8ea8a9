"""The reference test vectors: the repository's copy, and the ``shared_vectors`` fixture's rule
(skip on a user's clone, fail in CI) for the folders that stay in ``../shared``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vectors import REQUIRE_SHARED_ENV, shared_folder

ROOT = Path(__file__).resolve().parents[1]
IN_REPOSITORY = {"densedepth", "featdepth", "hints", "kitti", "nyu", "nyu_eval", "segdepth"}


def test_repository_holds_the_vectors_under_25_mb(testvectors: Path) -> None:
    assert {p.name for p in testvectors.iterdir() if p.is_dir()} == IN_REPOSITORY
    assert (testvectors / "README.md").is_file()
    size = sum(f.stat().st_size for f in testvectors.rglob("*") if f.is_file())
    assert size < 25_000_000


def test_shared_folder_found(tmp_path: Path) -> None:
    (tmp_path / "litemono").mkdir()
    assert shared_folder("litemono", tmp_path) == tmp_path / "litemono"


def test_missing_shared_folder_skips_on_a_users_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REQUIRE_SHARED_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"manydepth/ not found at .*too large"):
        shared_folder("manydepth", tmp_path)
    monkeypatch.setenv(REQUIRE_SHARED_ENV, "0")
    with pytest.raises(pytest.skip.Exception):
        shared_folder("manydepth", tmp_path)


def test_missing_shared_folder_fails_when_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REQUIRE_SHARED_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="manydepth/.*DEPTHKIT_REQUIRE_SHARED=1"):
        shared_folder("manydepth", tmp_path)


def test_ci_requires_the_shared_vectors() -> None:
    assert f"export {REQUIRE_SHARED_ENV}=1" in (ROOT / ".ci" / "run").read_text()
