"""The machinery every pass shares: refusals, tagging, resumable chunks, completion record."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from pipelines.passes.store_pass import StorePass
from pipelines.store import IncompleteStoreError, open_store, pending_frames, verify
from pipelines.store.passrecord import INVALIDATED, pass_refusal, read_record, tag_id
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import assert_opens_in_xarray, tree_bytes

SPEC = ToySpec(n_sequences=1, frames_per_sequence=10, image_size=(8, 12), chunk=4)
TAG = {"method": "test"}


def hints_of(rows: slice) -> np.ndarray:
    """Deterministic ``hint_depth`` values of frame rows ``rows`` (0 = no hint included)."""
    frames = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None, None, None]
    values = np.broadcast_to(frames + 1, (rows.stop - rows.start, 2, 8, 12)).copy()
    values[:, :, 0] = 0
    return values


class Dying:
    """A chunk function that raises on its ``n``-th call (a pass killed mid-way)."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self, rows: slice) -> np.ndarray:
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("killed")
        return hints_of(rows)


def _run(path: Path, fn=hints_of, **kw) -> object:
    job = StorePass(path, "hint_depth", "hints", TAG, label="hints", **kw)
    job.start()
    return job.run(fn, workers=1, progress=False)


def test_fills_every_chunk_and_records_completion(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    write_toy_store(path, SPEC)
    report = _run(path)
    assert (report.chunks, report.computed, report.skipped, report.frames) == (3, 3, 0, 10)
    assert report.images == 20 and "frames/s" in str(report)
    store = open_store(path)
    np.testing.assert_array_equal(store["hint_depth"][...], hints_of(slice(0, 10)))
    assert store.attrs["hints"] == TAG and store.attrs["computed"] == {"hint_depth": True}
    assert pending_frames(store, "hint_depth") == 0
    assert verify(store) == []
    assert_opens_in_xarray(path)  # the new array is in the consolidated metadata


def test_resumed_pass_is_identical_to_an_uninterrupted_one(tmp_path: Path) -> None:
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    write_toy_store(a, SPEC)
    shutil.copytree(a, b)
    _run(a)
    with pytest.raises(RuntimeError, match="killed"):
        _run(b, Dying(2))
    interrupted = open_store(b)
    assert interrupted.attrs["computed"] == {"hint_depth": False}
    assert 0 < pending_frames(interrupted, "hint_depth") < 10  # one chunk written, two NaN
    assert any("frames not computed" in p for p in verify(interrupted))
    report = _run(b)
    assert (report.computed, report.skipped) == (2, 1)
    assert tree_bytes(a) == tree_bytes(b)


def test_refuses_incomplete_store_and_another_tag(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    write_toy_store(path, SPEC)
    _run(path)
    with pytest.raises(ValueError, match="hint_depth was computed with"):
        StorePass(path, "hint_depth", "hints", {"method": "other"})
    before = tree_bytes(path)
    report = _run(path)  # same tag: every chunk already done
    assert (report.computed, report.skipped) == (0, 3)
    assert tree_bytes(path) == before
    job = StorePass(path, "hint_depth", "hints", {"method": "other"}, overwrite=True)
    job.start()
    assert job.run(lambda rows: hints_of(rows) * 2, workers=1, progress=False).computed == 3
    assert float(open_store(path)["hint_depth"][0, 0, 1, 0]) == 2.0
    zarr.open_group(str(path), mode="r+").attrs["complete"] = False
    with pytest.raises(IncompleteStoreError, match="incomplete"):
        StorePass(path, "hint_depth", "hints", TAG)


def test_pending_frames_scans_without_the_record(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    store = write_toy_store(path, SPEC)
    assert pending_frames(store, "seg") == 10  # absent: nothing computed
    _run(path)
    group = zarr.open_group(str(path), mode="r+")
    group.attrs["computed"] = {}  # e.g. a store written before the records existed
    del group["_written_hint_depth"]
    group["hint_depth"][4:8] = np.nan  # chunk 1 reset by hand
    assert pending_frames(open_store(path), "hint_depth") == 4
    with pytest.raises(ValueError, match="not filled by a pass"):
        pending_frames(open_store(path), "image")


def test_killed_overwrite_is_seen_refused_and_resumed(tmp_path: Path) -> None:
    """Issue 23 item 16: a killed --overwrite leaves old and new chunks; nothing may take the mix
    for finished values, and the next run recomputes exactly the old chunks."""
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    write_toy_store(a, SPEC)
    _run(a)
    shutil.copytree(a, b)
    new_tag = {"method": "test", "hint_size": [320, 1024]}

    def doubled(rows: slice) -> np.ndarray:
        return hints_of(rows) * 2

    for path, fn in ((a, doubled), (b, Dying(2))):
        job = StorePass(path, "hint_depth", "hints", new_tag, overwrite=True, label="hints")
        job.start()
        if path == a:
            job.run(fn, workers=1, progress=False)
            continue
        # invalidated before anything was written
        assert (read_record(open_store(b), "hint_depth") == INVALIDATED).all()
        with pytest.raises(RuntimeError, match="killed"):
            job.run(lambda rows, fn=fn: fn(rows) * 2, workers=1, progress=False)
    store = open_store(b)
    record = read_record(store, "hint_depth")
    assert sorted(record) == [tag_id(new_tag), INVALIDATED, INVALIDATED]  # one chunk written
    assert store.attrs["hints"] == new_tag and store.attrs["computed"] == {"hint_depth": False}
    assert pending_frames(store, "hint_depth") in (6, 8)  # two chunks hold the old values
    problems = verify(store)
    assert any("2 of 3 chunks hold values of other settings" in p for p in problems), problems
    refusal = pass_refusal(store, "hint_depth", "depthhints-s")
    assert refusal is not None and "the hints pass is rewriting hint_depth" in refusal
    assert "\n" not in refusal
    with pytest.raises(ValueError, match="hint_size 320x1024 .this run: hint_size unset."):
        StorePass(b, "hint_depth", "hints", TAG)  # the old settings: the store is not theirs
    job = StorePass(b, "hint_depth", "hints", new_tag, label="hints")
    job.start()
    report = job.run(doubled, workers=1, progress=False)
    assert (report.computed, report.skipped) == (2, 1)
    assert verify(open_store(b)) == [] and pass_refusal(open_store(b), "hint_depth", "x") is None
    assert tree_bytes(a) == tree_bytes(b)


def test_tag_change_refused_in_one_readable_line(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    write_toy_store(path, SPEC)
    job = StorePass(path, "hint_depth", "hints", {"method": "sgm", "hint_size": [128, 384]})
    job.start()
    job.run(hints_of, workers=1, progress=False)
    with pytest.raises(ValueError) as err:
        StorePass(path, "hint_depth", "hints", {"method": "sgm", "hint_size": [320, 1024]})
    message = str(err.value)
    assert message.endswith(
        "hint_depth was computed with hint_size 128x384 (this run: hint_size 320x1024); pass "
        "--overwrite to recompute it"
    )
    assert "{" not in message and "\n" not in message


def test_store_filled_before_chunk_records_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    write_toy_store(path, SPEC)
    _run(path)
    group = zarr.open_group(str(path), mode="r+")
    del group["_written_hint_depth"]
    group["hint_depth"][4:8] = np.nan  # one chunk never written
    group.attrs["computed"] = {"hint_depth": False}
    report = _run(path)  # same tag: the chunks holding values are taken as written with it
    assert (report.computed, report.skipped) == (1, 2)
    assert list(read_record(open_store(path), "hint_depth")) == [tag_id(TAG)] * 3
    del zarr.open_group(str(path), mode="r+")["_written_hint_depth"]
    job = StorePass(path, "hint_depth", "hints", {"method": "other"}, overwrite=True)
    job.start()
    assert (read_record(open_store(path), "hint_depth") == INVALIDATED).all()


def test_a_pass_filling_two_arrays(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    write_toy_store(path, SPEC)
    names = ("hint_depth", "hint_depth_flipped")
    job = StorePass(path, names, "hints", TAG, label="hints")
    job.start()
    report = job.run(lambda rows: (hints_of(rows), hints_of(rows) + 1), workers=1, progress=False)
    assert report.computed == 3
    store = open_store(path)
    np.testing.assert_array_equal(store["hint_depth_flipped"][...], hints_of(slice(0, 10)) + 1)
    assert store.attrs["computed"] == {"hint_depth": True, "hint_depth_flipped": True}
    assert verify(store) == [] and pending_frames(store, "hint_depth_flipped") == 0
    assert_opens_in_xarray(path)
