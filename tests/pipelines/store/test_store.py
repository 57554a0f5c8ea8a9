"""Store schema v1: round trip through the writer and the reader, xarray / dask views, errors."""

from __future__ import annotations

import pickle
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import zarr

from pipelines import StoreWriter, open_store
from pipelines.store.runner import write_blocks
from pipelines.store.schema import ARRAYS, SCHEMA, SEG_NOT_COMPUTED, StoreLayout, numpy_dtype
from pipelines.store.toystore import ToySpec, create_toy_writer, write_toy_store


@pytest.mark.parametrize("dataset", ["kitti-raw", "nyu-raw"])
def test_round_trip(tmp_path: Path, dataset: str) -> None:
    spec = ToySpec(dataset=dataset, n_sequences=2, frames_per_sequence=7, chunk=4)
    store = write_toy_store(tmp_path / "s.zarr", spec)
    assert store.complete
    store = open_store(tmp_path / "s.zarr")
    assert store.attrs["schema"] == SCHEMA
    assert (store.dataset, store.split, store.image_size) == (dataset, "train", (16, 24))
    assert store.sequences == ["seq_00", "seq_01"]
    assert store.source["command"] == "toystore" and store.camera == {"toy": True}
    assert (store.n_frames, store.views, store.chunk) == (14, spec.views, 4)
    expected = spec.block(slice(0, spec.n_frames))
    assert set(store.arrays) == set(expected) | {"samples"}
    for name, values in expected.items():
        arr = store[name]
        assert arr.dtype == numpy_dtype(name), name
        assert arr.chunks[0] == 4 and arr.chunks[1:] == arr.shape[1:], name
        np.testing.assert_array_equal(arr[...], values.astype(numpy_dtype(name)), err_msg=name)
    np.testing.assert_array_equal(store.samples, spec.samples())
    assert store.samples.dtype == np.int32 and store.n_samples == len(spec.samples())
    assert not store.has("seg") and store.done_blocks.all()


def test_codecs_and_chunks_follow_schema(tmp_path: Path) -> None:
    store = write_toy_store(tmp_path / "s.zarr")
    assert "blosc" in type(store["image"].compressors[0]).__name__.lower()
    assert store["image"].compressors[0].cname.value == "lz4"
    assert "zstd" in type(store["gt_depth"].compressors[0]).__name__.lower()
    layout = StoreLayout(n_frames=20, n_samples=40, views=2, image_size=(16, 24), chunk=4)
    assert layout.shape("seg") == (20, 2, 16, 24) and layout.chunks("samples") == (40, 4)
    assert ARRAYS["seg"].fill_value == SEG_NOT_COMPUTED


def test_to_xarray_and_dask(tmp_path: Path) -> None:
    store = write_toy_store(tmp_path / "s.zarr")
    ds = store.to_xarray()
    assert ds["image"].dims == ("frame", "view", "y", "x", "channel")
    assert ds["samples"].dims == ("sample", "field")
    np.testing.assert_array_equal(ds["frame"].values, np.arange(20))  # the global index
    np.testing.assert_array_equal(ds["frame_in_sequence"].values, store["frame"][...])
    np.testing.assert_array_equal(ds["image"][3].values, store["image"][3])
    assert ds.attrs["dataset"] == "kitti-raw"
    lazy = store.to_dask()
    assert lazy["image"].chunks[0] == (4,) * 5
    assert int(lazy["gt_size"][:, 0].sum().compute()) == 20 * 19


def test_fsspec_memory_url_and_pickling() -> None:
    url = "memory://depthkit-test/toy.zarr"
    spec = ToySpec(n_sequences=1, frames_per_sequence=6, chunk=2)
    store = write_toy_store(url, spec, overwrite=True)
    assert open_store(url).complete and store.n_frames == 6
    writer = pickle.loads(pickle.dumps(create_toy_writer(url, spec)))
    assert writer.pending_blocks() == []  # resumed store: every block done


def test_open_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nowhere.zarr"):
        open_store(tmp_path / "nowhere.zarr")
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w", attributes={"schema": "x/9"})
    with pytest.raises(ValueError, match=r"other\.zarr.*not a depthstore/1"):
        open_store(tmp_path / "other.zarr")


def test_writer_validates_arguments_and_blocks(tmp_path: Path) -> None:
    kwargs = dict(
        dataset="nyu-raw", split="train", n_frames=10, n_samples=1, image_size=(4, 6), views=1,
        arrays=["image", "sequence"], attrs={"sequences": ["a"]}, fingerprint="f", chunk=4,
    )  # fmt: skip
    with pytest.raises(ValueError, match="multiple of chunk"):
        StoreWriter.create(tmp_path / "a.zarr", **{**kwargs, "frames_per_block": 6})
    with pytest.raises(ValueError, match="dataset"):
        StoreWriter.create(tmp_path / "a.zarr", **{**kwargs, "dataset": "nyu"})
    with pytest.raises(ValueError, match="gt_size"):
        StoreWriter.create(
            tmp_path / "a.zarr", **{**kwargs, "arrays": ["image", "sequence", "gt_depth"]}
        )
    with pytest.raises(ValueError, match="sequences"):
        StoreWriter.create(tmp_path / "a.zarr", **{**kwargs, "attrs": {}})
    with pytest.raises(ValueError, match="unknown store array"):
        StoreWriter.create(
            tmp_path / "a.zarr", **{**kwargs, "arrays": ["image", "sequence", "rgb"]}
        )
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a zarr store"):
        StoreWriter.create(tmp_path / "notes", **kwargs)

    w = StoreWriter.create(tmp_path / "a.zarr", **{**kwargs, "frames_per_block": 8})
    assert w.n_blocks == 2 and w.block_frames(1) == slice(8, 10)
    image = np.zeros((2, 1, 4, 6, 3), np.uint8)
    with pytest.raises(ValueError, match="missing arrays"):
        w.write_block(1, image=image)
    with pytest.raises(ValueError, match="expected"):
        w.write_block(1, image=image[:1], sequence=np.zeros(1))
    with pytest.raises(ValueError, match="cannot store float64"):
        w.write_block(1, image=image.astype(float), sequence=np.zeros(2, int))
    w.write_block(1, image=image, sequence=np.zeros(2, int))
    assert w.pending_blocks() == [0]
    with pytest.raises(ValueError, match="1 blocks not written"):
        w.finish()
    assert not open_store(tmp_path / "a.zarr").complete


def _toy_block(spec: ToySpec, _block: int, frames: slice) -> dict[str, np.ndarray]:
    return spec.block(frames)


def test_blocks_written_from_worker_processes(tmp_path: Path) -> None:
    """The writer travels to other processes by pickle and re-opens the store there."""
    spec = ToySpec(n_sequences=1, frames_per_sequence=8, chunk=2)
    writer = create_toy_writer(tmp_path / "s.zarr", spec)
    assert write_blocks(writer, partial(_toy_block, spec), scheduler="processes") == 4
    writer.write_samples(spec.samples())
    store = writer.finish()
    np.testing.assert_array_equal(store["image"][...], spec.block(slice(0, 8))["image"])


def test_whole_frame_arrays_written_beside_the_blocks(tmp_path: Path) -> None:
    """Conversion.frames: metadata written whole by the runner; blocks carry only pixels."""
    from pipelines.store.runner import Conversion, run_conversions

    spec = ToySpec(n_sequences=2, frames_per_sequence=5, chunk=2)
    whole = spec.block(slice(0, spec.n_frames))
    meta = {k: whole[k] for k in ("intrinsics", "sequence", "frame", "timestamp") if k in whole}
    writer = create_toy_writer(tmp_path / "s.zarr", spec)
    writer.write_samples(spec.samples())

    def pixels(_block: int, rows: slice) -> dict[str, np.ndarray]:
        return {k: v for k, v in spec.block(rows).items() if k not in meta}

    (summary,) = run_conversions(
        [Conversion(writer, pixels, frames=meta)], workers=2, progress=False
    )
    assert summary.frames_written == spec.n_frames and set(meta) & set(writer.block_arrays) == set()
    store = open_store(tmp_path / "s.zarr")
    assert store.complete
    for name, values in whole.items():
        np.testing.assert_array_equal(store[name][...], values.astype(numpy_dtype(name)), name)
    with pytest.raises(ValueError, match="not a per-frame array"):
        writer.expect_frames("samples")
    with pytest.raises(ValueError, match="expected"):
        writer.write_frames(frame=np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="unexpected"):
        writer.write_block(0, **spec.block(slice(0, 2)))  # frame etc. no longer come in blocks
