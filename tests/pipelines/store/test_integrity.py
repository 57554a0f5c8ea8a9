"""Silent corruption (issue 23, item 17): checksummed chunks, missing chunks of a complete store,
``info --verify`` reading every chunk, loader errors naming the chunk, damaged ``zarr.json``;
stores written before checksums still open and train."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import Crc32cCodec

from pipelines import open_store
from pipelines.loader import make_loader
from pipelines.store.inspect import verify
from pipelines.store.integrity import MissingChunkError, StoreDataError
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import one_error_line, run_cli

SPEC = ToySpec(n_sequences=2, frames_per_sequence=6, image_size=(32, 48), chunk=4, seg=True)
LEGACY = Path(__file__).parent / "data" / "legacy_toy_store.zip"


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "toy.zarr"
    write_toy_store(path, SPEC)
    return path


def flip_byte(path: Path, at: int = 40) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_every_array_ends_its_chunks_with_a_checksum(store_path: Path) -> None:
    group = zarr.open_group(str(store_path), mode="r")
    for name, array in group.arrays():
        assert any(isinstance(c, Crc32cCodec) for c in array.metadata.codecs), name


@pytest.mark.parametrize(
    ("array", "chunk", "selection"),
    [("image", "image/c/2/0/0/0/0", np.s_[:]), ("intrinsics", "intrinsics/c/1/0/0/0", 5)],
)
def test_a_flipped_byte_is_an_error_naming_array_and_chunk(
    store_path: Path, array: str, chunk: str, selection: object
) -> None:
    flip_byte(store_path / chunk)  # blosc (image) and zstd (intrinsics) chunks
    store = open_store(store_path)
    with pytest.raises(StoreDataError) as err:
        store[array][selection]
    message = str(err.value)
    assert f"array '{array}' chunk {chunk}" in message and "checksum mismatch" in message
    assert "\n" not in message
    with pytest.raises(StoreDataError, match=chunk):  # through dask too
        store.to_dask()[array].sum().compute()
    problems = verify(store)
    assert len(problems) == 1 and chunk in problems[0] and "damaged" in problems[0]


def test_a_missing_chunk_of_a_complete_store_is_an_error(store_path: Path) -> None:
    (store_path / "image" / "c" / "1" / "0" / "0" / "0" / "0").unlink()
    store = open_store(store_path)
    with pytest.raises(
        MissingChunkError, match=r"array 'image' chunk image/c/1/0/0/0/0 \(frames 4..7\) is missing"
    ):
        store["image"][4]
    assert verify(store, deep=False) == [
        "array 'image' chunk image/c/1/0/0/0/0 (frames 4..7) is missing from a complete store; "
        "restore the store from a copy or write it again"
    ]


def test_info_verify_reads_every_chunk_and_quick_does_not(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flip_byte(store_path / "gt_depth" / "c" / "0" / "0" / "0")
    (store_path / "timestamp" / "c" / "2").unlink()
    assert run_cli(["info", str(store_path), "--verify"]) == 1
    out = capsys.readouterr()
    problems = [line for line in out.out.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 2, out.out
    assert "gt_depth/c/0/0/0 (frames 0..3) is damaged (checksum mismatch)" in problems[1]
    assert "timestamp/c/2 (frames 8..11) is missing" in problems[0]
    assert "Error" not in out.out + out.err and "2 problem(s) found" in out.out
    assert run_cli(["info", str(store_path), "--verify", "--quick"]) == 1
    out = capsys.readouterr().out
    assert "timestamp/c/2" in out and "gt_depth/c" not in out and "1 problem(s) found" in out


def test_loader_errors_name_the_array_and_the_chunk(store_path: Path) -> None:
    flip_byte(store_path / "image" / "c" / "1" / "0" / "0" / "0" / "0")
    loader = make_loader(store_path, 4, workers=1, shuffle=False, pin_memory=False)
    with pytest.raises(StoreDataError) as err:
        for _ in loader:
            pass
    message = str(err.value)
    assert message == (
        f"{store_path}: array 'image' chunk image/c/1/0/0/0/0 (frames 4..7) is damaged "
        "(checksum mismatch); restore the store from a copy or write it again "
        "(in DataLoader worker process 0)"
    )


@pytest.mark.parametrize("metadata", ["zarr.json", "image/zarr.json"])
def test_a_truncated_zarr_json_names_the_file(
    store_path: Path, metadata: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = store_path / metadata
    path.write_bytes(path.read_bytes()[:200])
    assert run_cli(["info", str(store_path)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {path}: damaged store metadata (not valid JSON at byte")


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A store written by depthkit before checksums and the frame index (commit 33f39eb,
    ``write_toy_store(path, ToySpec(frames_per_sequence=6, seg=True))``)."""
    with zipfile.ZipFile(LEGACY) as archive:
        archive.extractall(tmp_path)
    return tmp_path / "toy.zarr"


def test_a_store_written_before_checksums_still_opens_and_trains(
    legacy: Path, tmp_path: Path
) -> None:
    from train.engine.config import apply_overrides
    from train.engine.trainer import train
    from train.methods import preset

    group = zarr.open_group(str(legacy), mode="r")
    assert not any(isinstance(c, Crc32cCodec) for c in group["image"].metadata.codecs)
    store = open_store(legacy, require_complete=True)
    assert store.legacy and verify(store) == []
    assert store["frame"][...].tolist() == [0, 1, 2, 3, 4, 5] * 2  # frame in its sequence
    assert (store["frame_in_sequence"][...] == store["frame"][...]).all()
    ds = store.to_xarray()
    assert ds.indexes["frame"].is_unique and int(ds.sel(frame=3)["frame_in_sequence"]) == 3
    batch = next(iter(make_loader(legacy, 4, workers=0, pin_memory=False)))
    assert batch.target.shape == (4, 3, 16, 24)
    tiny = {"pretrained": False, "height": 64, "width": 64, "batch_size": 4, "workers": 0,
            "device": "cpu", "max_steps": 2}  # fmt: skip
    config = apply_overrides(preset("monodepth2-m"), tiny)
    train(config, str(legacy), tmp_path / "run", progress=False, echo=lambda _: None)
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


def test_an_old_store_is_not_resumed_by_the_new_writer(legacy: Path) -> None:
    from pipelines.store.toystore import create_toy_writer

    store = open_store(legacy)
    spec = ToySpec(frames_per_sequence=6, seg=True)
    with pytest.raises(ValueError, match="earlier depthkit.*--overwrite"):
        create_toy_writer(legacy, spec)
    assert open_store(legacy).complete and store.legacy  # untouched
    shutil.rmtree(legacy)
