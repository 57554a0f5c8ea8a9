"""Resumable writing: kill and re-run gives a byte-identical store; fingerprints; ``complete``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from pipelines import open_store
from pipelines.store import IncompleteStoreError, require_complete
from pipelines.store.runner import write_blocks
from pipelines.store.schema import DONE_ARRAY
from pipelines.store.toystore import ToySpec, create_toy_writer, write_toy_store

SPEC = ToySpec(n_sequences=2, frames_per_sequence=9, chunk=2, frames_per_block=4)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file of a local store, by relative path: the strictest identity check."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def assert_identical(a: Path, b: Path) -> None:
    left, right = tree_bytes(a), tree_bytes(b)
    assert sorted(left) == sorted(right)
    for key in left:
        assert left[key] == right[key], key


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ref") / "s.zarr"
    write_toy_store(path, SPEC)
    return path


def test_kill_and_resume_is_identical(tmp_path: Path, reference: Path) -> None:
    path = tmp_path / "s.zarr"
    writer = create_toy_writer(path, SPEC)
    assert writer.n_blocks == 5 and writer.pending_blocks() == [0, 1, 2, 3, 4]
    for block in (0, 3):
        writer.write_block(block, **SPEC.block(writer.block_frames(block)))
    del writer  # "killed"
    assert not open_store(path).complete

    writer = create_toy_writer(path, SPEC)
    assert writer.pending_blocks() == [1, 2, 4]
    written: list[int] = []
    write_blocks(writer, lambda b, frames: written.append(b) or SPEC.block(frames))
    assert sorted(written) == [1, 2, 4]
    writer.write_samples(SPEC.samples())
    writer.finish()
    assert_identical(path, reference)


def test_crash_inside_a_block_is_redone(tmp_path: Path, reference: Path) -> None:
    path = tmp_path / "s.zarr"
    writer = create_toy_writer(path, SPEC)

    def failing(block: int, frames: slice) -> dict[str, np.ndarray]:
        if block == 2:
            raise RuntimeError("worker died")
        return SPEC.block(frames)

    with pytest.raises(RuntimeError, match="worker died"):
        write_blocks(writer, failing, scheduler="sync")
    # Block 4: data half written (garbage image) when the process died, no done marker.
    group = zarr.open_group(str(path), mode="r+")
    group["image"][writer.block_frames(4)] = 7
    group[DONE_ARRAY][4] = False

    writer = create_toy_writer(path, SPEC)
    assert set(writer.pending_blocks()) >= {2, 4}
    write_blocks(writer, lambda _b, frames: SPEC.block(frames))
    writer.write_samples(SPEC.samples())
    writer.finish()
    assert_identical(path, reference)


def test_other_fingerprint_refused_overwrite_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    write_toy_store(path, SPEC)
    other = ToySpec(n_sequences=1, frames_per_sequence=5, chunk=2, seed=3)
    with pytest.raises(ValueError, match=r"s\.zarr.*other arguments.*overwrite"):
        create_toy_writer(path, other)
    assert open_store(path).complete  # refused without touching the store
    writer = create_toy_writer(path, other, overwrite=True)
    assert writer.pending_blocks() == [0, 1, 2]
    assert not open_store(path).complete
    store = write_toy_store(path, other)
    assert store.complete and store.n_frames == 5


def test_complete_only_after_finish(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    writer = create_toy_writer(path, SPEC)
    write_blocks(writer, lambda _b, frames: SPEC.block(frames))
    assert not open_store(path).complete
    with pytest.raises(ValueError, match="verification failed.*sample center"):
        writer.finish()  # samples never written: every row still -1
    assert not open_store(path).complete
    writer.write_samples(SPEC.samples())
    assert writer.finish().complete
    create_toy_writer(path, SPEC)  # a re-run marks it incomplete until it finishes again
    assert not open_store(path).complete


def test_crash_while_creating_arrays_resumes(tmp_path: Path, reference: Path) -> None:
    path = tmp_path / "s.zarr"
    create_toy_writer(path, SPEC)
    group = zarr.open_group(str(path), mode="r+")
    del group["image"], group[DONE_ARRAY]  # died before these were created
    write_toy_store(path, SPEC)
    assert_identical(path, reference)


def test_incomplete_store_is_refused_saying_how_to_finish(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    writer = create_toy_writer(path, SPEC)
    writer.write_block(0, **SPEC.block(writer.block_frames(0)))
    del writer  # "killed" after one block
    store = open_store(path)  # still opens: info and resuming need that
    with pytest.raises(IncompleteStoreError) as refused:
        require_complete(store)
    message = str(refused.value)
    assert isinstance(refused.value, ValueError) and "\n" not in message
    assert message.startswith(f"{path}: the store is incomplete (the prepare run")
    assert "interrupted, 1 of 5 blocks written" in message
    assert "re-run the same prepare command, which resumes" in message
    assert message.endswith("`toystore`")  # the command recorded in attrs["source"]
    with pytest.raises(IncompleteStoreError, match="incomplete"):
        open_store(path, require_complete=True)

    write_toy_store(path, SPEC)  # the re-run finishes it
    assert require_complete(open_store(path)).complete
    assert open_store(path, require_complete=True).complete


def test_done_markers_have_dimension_names_and_old_ones_get_them(
    tmp_path: Path, reference: Path
) -> None:
    path = tmp_path / "s.zarr"
    writer = create_toy_writer(path, SPEC)
    assert writer.group[DONE_ARRAY].metadata.dimension_names == ("block",)
    for block in (1, 3):
        writer.write_block(block, **SPEC.block(writer.block_frames(block)))
    # An interrupted store of an older version: the same markers without dimension names.
    group = zarr.open_group(str(path), mode="r+")
    group.create_array(DONE_ARRAY, shape=(5,), chunks=(1,), dtype="bool", overwrite=True)
    group[DONE_ARRAY][[1, 3]] = True

    writer = create_toy_writer(path, SPEC)
    assert writer.pending_blocks() == [0, 2, 4]  # markers kept
    assert writer.group[DONE_ARRAY].metadata.dimension_names == ("block",)
    write_toy_store(path, SPEC)
    assert_identical(path, reference)
