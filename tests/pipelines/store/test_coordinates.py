"""xarray views of a store (issue 23, item 12): one unique frame index with ``sequence`` and
``frame_in_sequence`` coordinates, the same through ``xarray.open_zarr`` and ``to_xarray``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines import open_store
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import assert_opens_in_xarray

xr = pytest.importorskip("xarray")
SPEC = ToySpec(n_sequences=2, frames_per_sequence=6, chunk=4)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "toy.zarr"
    write_toy_store(path, SPEC)
    return path


def test_selecting_a_frame_returns_one_frame(store_path: Path) -> None:
    with xr.open_zarr(store_path) as ds:
        assert ds.indexes["frame"].is_unique
        one = ds.sel(frame=9)
        assert one["image"].dims == ("view", "y", "x", "channel")  # one frame, not two drives
        assert (int(one["sequence"]), int(one["frame_in_sequence"])) == (1, 3)
        where = ((ds["sequence"] == 1) & (ds["frame_in_sequence"] == 3)).values
        assert ds["frame"].values[where].tolist() == [9]


def test_open_zarr_and_to_xarray_are_the_same(store_path: Path) -> None:
    assert_opens_in_xarray(store_path)
    ds = open_store(store_path).to_xarray()
    assert set(ds.coords) == {"frame", "sequence", "frame_in_sequence", "timestamp"}
    np.testing.assert_array_equal(ds["frame"], np.arange(12))


def test_python_api_keeps_frame_as_the_frame_in_its_sequence(store_path: Path) -> None:
    store = open_store(store_path)
    expected = [0, 1, 2, 3, 4, 5] * 2
    assert store["frame"][...].tolist() == expected  # code written before keeps working
    assert store["frame_in_sequence"][...].tolist() == expected
    assert store.has("frame") and not store.legacy
