"""Streaming dataset: sharding, determinism, values against direct store reads, buffers, pinning."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines import open_store
from pipelines.loader.batch import Batch, collate
from pipelines.loader.dataset import StoreDataset, make_loader
from pipelines.loader.sharding import slot_buffers
from pipelines.store.arrays import create_schema_array
from pipelines.store.schema import StoreLayout
from pipelines.store.toystore import ToySpec, write_toy_store

ALL_FRAMES = ("prev", "next", "stereo")


@pytest.fixture(scope="module")
def kitti_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """KITTI-like toy store (2 views, gt) with a seg array; 2 x 11 frames in chunks of 4."""
    path = tmp_path_factory.mktemp("ds") / "kitti.zarr"
    spec = ToySpec(dataset="kitti-raw", n_sequences=2, frames_per_sequence=11, chunk=4)
    store = write_toy_store(path, spec)
    layout = StoreLayout(
        n_frames=store.n_frames, n_samples=store.n_samples, views=2,
        image_size=store.image_size, chunk=4,
    )  # fmt: skip
    seg = create_schema_array(open_store(path, mode="r+").group, "seg", layout)
    seg[...] = np.random.default_rng(1).integers(0, 21, seg.shape, dtype=np.uint8)
    return path


@pytest.fixture(scope="module")
def nyu_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ds") / "nyu.zarr"
    write_toy_store(path, ToySpec(dataset="nyu-raw", n_sequences=2, frames_per_sequence=9, chunk=4))
    return path


@functools.cache
def store_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a (tiny) store, read once."""
    store = open_store(path)
    return {name: np.asarray(arr[...]) for name, arr in store.arrays.items()}


def expected(path: Path, index: int) -> dict[str, np.ndarray | None]:
    """What sample ``index`` must contain, read directly from the store (HWC images)."""
    arrays = store_arrays(path)
    c, p, n, v = (int(x) for x in arrays["samples"][index])
    image = arrays["image"]
    out: dict[str, np.ndarray | None] = {
        "target": image[c, v],
        "prev": image[p, v] if p >= 0 else np.zeros_like(image[c, v]),
        "next": image[n, v] if n >= 0 else np.zeros_like(image[c, v]),
        "K": arrays["intrinsics"][c, v],
        "baseline": arrays["baseline"][c],
        "side": np.int64(v),
        "row": np.int64(c),
    }
    if image.shape[1] == 2:
        out["stereo"] = image[c, 1 - v]
    for name in ("seg", "depth"):
        out[name] = arrays[name][c, v] if name in arrays else None
    if "gt_depth" in arrays:
        out["gt_depth"], out["gt_size"] = arrays["gt_depth"][c], arrays["gt_size"][c]
    return out


def check_batch(path: Path, batch: Batch) -> None:
    for b, index in enumerate(batch.index.tolist()):
        want = expected(path, index)
        for name, value in want.items():
            got = getattr(batch, name)
            if value is None or got is None:
                assert got is None, name  # never a field the store lacks; unasked may be None
                continue
            got = got[b]
            if name in ("target", "prev", "next", "stereo"):
                got = got.permute(1, 2, 0)  # CHW view -> HWC like the store
            np.testing.assert_array_equal(got.numpy(), value, err_msg=f"{name} of {index}")


def indices(loader) -> list[int]:
    return [i for batch in loader for i in batch.index.tolist()]


# ------------------------------------------------------------------ sharding and order
@pytest.mark.parametrize("even", ["none", "drop", "pad"])
def test_slot_buffers_partition(even: str) -> None:
    rows = np.r_[np.arange(37), np.arange(37)]  # two views, 10 chunks of 4 frames
    slots = [
        np.concatenate(
            slot_buffers(
                rows,
                4,
                seed=3,
                epoch=1,
                shuffle=True,
                slot=s,
                n_slots=4,
                shuffle_chunks=2,
                even=even,
            )  # fmt: skip
        )
        for s in range(4)
    ]
    sizes = {len(s) for s in slots}
    every = np.concatenate(slots)
    if even == "none":
        assert sorted(every.tolist()) == list(range(74)) and max(sizes) - min(sizes) <= 1
    elif even == "drop":
        assert sizes == {18} and len(set(every.tolist())) == 72
    else:
        assert sizes == {19} and set(every.tolist()) == set(range(74))


def test_buffers_hold_few_chunks() -> None:
    rows = np.arange(64)
    buffers = slot_buffers(rows, 4, seed=0, epoch=0, shuffle=True, slot=0, n_slots=1,
                           shuffle_chunks=3)  # fmt: skip
    assert len(buffers) == 6
    assert all(len(np.unique(rows[b] // 4)) <= 3 for b in buffers)


def test_two_workers_two_ranks_cover_every_sample_once(kitti_store: Path) -> None:
    seen = []
    for rank in range(2):
        loader = make_loader(
            kitti_store, 3, workers=2, seed=5, rank=rank, world_size=2, frames=ALL_FRAMES,
            persistent_workers=False,
        )  # fmt: skip
        got = indices(loader)
        assert len(got) == sum(loader.dataset.slot_sizes())
        seen += got
    assert sorted(seen) == list(range(44))


def test_even_drop_gives_equal_batches_per_rank(kitti_store: Path) -> None:
    counts = []
    for rank in range(3):
        ds = StoreDataset(kitti_store, batch_size=4, drop_last=True, rank=rank, world_size=3,
                          even="drop")  # fmt: skip
        counts.append((len(list(ds)), len(ds)))
    assert counts == [(3, 3)] * 3  # 44 // 3 = 14 samples each -> 3 full batches of 4


def test_deterministic_per_seed_and_epoch(kitti_store: Path) -> None:
    ds = StoreDataset(kitti_store, batch_size=4, seed=1, shuffle_chunks=2)
    first = indices(ds)
    assert indices(ds) == first and sorted(first) == list(range(44))
    ds.set_epoch(1)
    assert indices(ds) != first
    assert indices(StoreDataset(kitti_store, batch_size=4, seed=2, shuffle_chunks=2)) != first
    ordered = indices(StoreDataset(kitti_store, batch_size=4, shuffle=False))
    chunks = open_store(kitti_store).samples[ordered, 0] // 4
    assert sorted(ordered) == list(range(44)) and (np.diff(chunks) >= 0).all()


def test_set_epoch_reaches_persistent_workers(kitti_store: Path) -> None:
    loader = make_loader(kitti_store, 4, workers=2, seed=0, persistent_workers=True)
    runs = []
    for epoch in (0, 1, 0):
        loader.dataset.set_epoch(epoch)
        runs.append(indices(loader))
    assert runs[0] == runs[2] != runs[1]
    assert len(loader) == sum(-(-n // 4) for n in loader.dataset.slot_sizes())


# ------------------------------------------------------------------ values
@pytest.mark.parametrize("store_name", ["kitti_store", "nyu_store"])
def test_values_match_direct_reads(request: pytest.FixtureRequest, store_name: str) -> None:
    path = request.getfixturevalue(store_name)
    frames = ALL_FRAMES if store_name == "kitti_store" else ("prev", "next")
    ds = StoreDataset(path, frames=frames, extras=("seg", "depth", "gt"), batch_size=5)
    batches = list(ds)
    for batch in batches:
        check_batch(path, batch)
        assert batch.target.is_contiguous(memory_format=torch.channels_last)
        np.testing.assert_array_equal(batch.has_prev.numpy(), open_store(path).samples[
            batch.index.numpy(), 1] >= 0)  # fmt: skip
    assert sum(len(b) for b in batches) == open_store(path).n_samples


def test_neighbour_from_next_chunk(kitti_store: Path) -> None:
    # One chunk per buffer: a sample on a chunk edge must still get its neighbours.
    ds = StoreDataset(kitti_store, frames=ALL_FRAMES, batch_size=1, shuffle_chunks=1)
    samples = open_store(kitti_store).samples
    edge = [b for b in ds if samples[b.index[0], 0] % 4 in (0, 3) and b.has_next[0]]
    crossing = [b for b in edge if samples[b.index[0], 2] // 4 != samples[b.index[0], 0] // 4]
    assert crossing, "the toy store must have samples whose next frame is in the next chunk"
    for batch in edge:
        check_batch(kitti_store, batch)


def test_absent_neighbours_are_zero_and_flagged(nyu_store: Path) -> None:
    ds = StoreDataset(nyu_store, batch_size=None, shuffle=False, extras=())
    first = next(iter(ds))  # row 0 starts a sequence: no previous frame
    assert first.index.item() == 0 and not first.has_prev and first.has_next
    assert first.prev.sum() == 0 and first.stereo is None and first.seg is None


@pytest.mark.parametrize("persistent", [True, False])
def test_recycled_worker_buffers_keep_values_right(kitti_store: Path, persistent: bool) -> None:
    loader = make_loader(
        kitti_store, 4, workers=2, frames=ALL_FRAMES, extras=("gt",), persistent_workers=persistent
    )
    for epoch in range(3):  # batches are dropped at once, so workers reuse their buffers
        loader.dataset.set_epoch(epoch)
        for batch in loader:
            check_batch(kitti_store, batch)
    kept = list(loader)  # all held at once: nothing may be overwritten
    for batch in kept:
        check_batch(kitti_store, batch)


def test_collate_of_samples_equals_batch(kitti_store: Path) -> None:
    samples = list(StoreDataset(kitti_store, frames=ALL_FRAMES, shuffle=False))[:6]
    batch = collate(samples)
    assert len(batch) == 6 and batch.target.shape == (6, 3, 16, 24)
    check_batch(kitti_store, batch)
    assert batch.sample(2).index == samples[2].index


def test_pin_memory_and_to(monkeypatch: pytest.MonkeyPatch, kitti_store: Path) -> None:
    from torch.utils.data._utils.pin_memory import pin_memory

    batch = next(iter(StoreDataset(kitti_store, frames=ALL_FRAMES, batch_size=4)))
    pinned: list[tuple[int, ...]] = []

    def fake_pin(self: torch.Tensor, *args: object) -> torch.Tensor:
        pinned.append(tuple(self.shape))
        assert self.is_contiguous()
        return self.clone()

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    out = pin_memory(batch)  # what DataLoader(pin_memory=True) calls
    assert isinstance(out, Batch) and len(pinned) == 12  # every tensor field that is set (seg too)
    check_batch(kitti_store, out)
    assert out.target.is_contiguous(memory_format=torch.channels_last)
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and torch.equal(moved.stereo, batch.stereo)


def test_bad_arguments(kitti_store: Path, nyu_store: Path) -> None:
    with pytest.raises(ValueError, match="unknown"):
        StoreDataset(kitti_store, frames=("left",))
    with pytest.raises(ValueError, match="2 views"):
        StoreDataset(nyu_store, frames=("stereo",))
    with pytest.raises(ValueError, match="rank"):
        StoreDataset(kitti_store, rank=2, world_size=2)
    with pytest.raises(ValueError, match="nowhere"):
        StoreDataset(kitti_store.parent / "nowhere.zarr")


def test_batches_are_as_diverse_as_a_random_samplers() -> None:
    """On a split shaped like a real one (uneven drives, both views of most frames, chunks of
    16), batches of 12 from 4 workers: no frame twice, about 12 chunks and as many drives as
    random batches have; every sample once per epoch, the same order for the same epoch."""
    from benchmarks import batch_diversity as bd

    rng = np.random.default_rng(0)
    sizes = np.r_[rng.integers(80, 400, 14), 900, 1500]  # a few long drives, many short ones
    drives = {f"d{i:02d}": (1, int(n)) for i, n in enumerate(sizes)}
    shape = bd.split_shape(drives, int(1.8 * sizes.sum()), seed=1)
    ours = bd.loader_batches(shape, 12, 4, 16, epoch=0)
    random = bd.random_batches(shape, 12, epoch=0)
    previous = bd.loader_batches(shape, 12, 4, 8, epoch=0, previous=True)
    fig, rnd, old = (bd.batch_figures(shape, b) for b in (ours, random, previous))
    assert fig.duplicate_rate == 0 and old.duplicate_rate > 0.1
    assert fig.chunks > 11.8 and abs(fig.drives - rnd.drives) < 0.05 * rnd.drives
    assert fig.overlap_rate <= max(rnd.overlap_rate, 0.01) and old.drives < 0.8 * rnd.drives
    every = np.concatenate(ours)
    assert len(np.unique(every)) == len(every)
    assert [b.tolist() for b in bd.loader_batches(shape, 12, 4, 16, epoch=0)] == [
        b.tolist() for b in ours
    ]


def test_two_views_of_a_frame_are_half_a_buffer_apart() -> None:
    rows = np.repeat(np.arange(64), 2)  # both views of 64 frames, chunks of 4 frames
    (buffer,) = slot_buffers(rows, 4, seed=0, epoch=0, shuffle=True, slot=0, n_slots=1,
                             shuffle_chunks=16)  # fmt: skip
    assert sorted(buffer.tolist()) == list(range(128))
    where = np.empty(128, np.int64)
    where[buffer] = np.arange(128)
    gap = np.abs(where[0::2] - where[1::2])
    assert gap.min() >= 24  # of 128: no batch of up to 24 holds both views of a frame
    chunk_of = rows[buffer] // 4
    assert all(len(set(chunk_of[i : i + 12])) >= 11 for i in range(0, 116))
