"""``cli.py info [--verify]``: description of a store and detection of corrupted stores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr

import cli
from pipelines import open_store
from pipelines.store.arrays import consolidate
from pipelines.store.inspect import verify
from pipelines.store.toystore import ToySpec, write_toy_store

NYU = ToySpec(dataset="nyu-raw", n_sequences=2, frames_per_sequence=6, chunk=4)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        cli.main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "nyu.zarr"
    write_toy_store(path, NYU)
    return path


def test_info_describes_store(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(["info", str(store_path)], capsys)
    assert code == 0
    for text in ("nyu-raw", "split train", "12 x 1 view(s) at 16x24", "samples    12",
                 "seq_00, seq_01", "complete   yes", "command: toystore", "depth"):  # fmt: skip
        assert text in out, text
    code, out = run_cli(["info", str(store_path), "--verify"], capsys)
    assert code == 0 and out.rstrip().endswith("ok")


def _nan_depth(g: zarr.Group) -> None:
    g["depth"][5, 0, 2, 3] = np.nan


def _sample_out_of_range(g: zarr.Group) -> None:
    g["samples"][2, 0] = 99


def _neighbour_other_sequence(g: zarr.Group) -> None:
    g["samples"][5, 2] = 6  # frame 5 ends seq_00; row 6 starts seq_01


def _negative_depth(g: zarr.Group) -> None:
    g["depth"][0, 0, 0, 0] = -1.0


def _bad_seg(g: zarr.Group) -> None:
    seg = g.create_array(
        "seg", shape=(12, 1, 16, 24), chunks=(4, 1, 16, 24), dtype="uint8",
        dimension_names=("frame", "view", "y", "x"),
    )  # fmt: skip
    seg[0, 0, 0, 0] = 42
    consolidate(g)


def _unnamed_dims(g: zarr.Group) -> None:
    values = g["frame_in_sequence"][...]
    del g["frame_in_sequence"]
    g.create_array("frame_in_sequence", shape=(12,), chunks=(4,), dtype="int32")[...] = values
    consolidate(g)


def _stale_consolidated(g: zarr.Group) -> None:
    g.create_array("seg", shape=(12, 1, 16, 24), chunks=(4, 1, 16, 24), dtype="uint8",
                   fill_value=255, dimension_names=("frame", "view", "y", "x"))  # fmt: skip


def _not_consolidated(g: zarr.Group) -> None:
    zarr.open_group(g.store, mode="r+", use_consolidated=False).attrs["note"] = "hand edit"


def _incomplete(g: zarr.Group) -> None:
    g.attrs["complete"] = False


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_nan_depth, "depth: NaN values (1)"),
        (_sample_out_of_range, "sample center outside 0..11: 1 row(s), e.g. 2"),
        (_neighbour_other_sequence, "sample next frame in another sequence: 1 row(s), e.g. 5"),
        (_negative_depth, "depth: negative values (1)"),
        (_bad_seg, "seg: values outside 0..20 and 255 (1)"),
        (_unnamed_dims, "frame_in_sequence: no dimension names (xarray cannot open the store)"),
        (_stale_consolidated, "consolidated metadata is stale for ['seg']"),
        (_not_consolidated, "consolidated metadata missing (a complete store has it)"),
        (_incomplete, "store is not complete"),
    ],
)
def test_verify_catches_corruption(
    store_path: Path,
    capsys: pytest.CaptureFixture[str],
    corrupt: Callable[[zarr.Group], None],
    message: str,
) -> None:
    corrupt(zarr.open_group(str(store_path), mode="r+"))
    code, out = run_cli(["info", str(store_path), "--verify"], capsys)
    assert code == 1
    assert f"problem: {message}" in out
    assert "1 problem(s) found" in out


def test_verify_checks_shapes_and_dtypes(store_path: Path) -> None:
    g = zarr.open_group(str(store_path), mode="r+")
    del g["baseline"]
    g.create_array("baseline", shape=(12, 2), chunks=(4, 2), dtype="float64")
    problems = verify(open_store(store_path))
    assert "baseline: dtype float64, expected float32" in problems
    assert "baseline: shape (12, 2), expected (12,)" in problems


def test_info_on_missing_store_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(["info", str(tmp_path / "none.zarr")], capsys)
    assert code == 1
    assert out.startswith("error: ") and "none.zarr" in out and out.count("\n") == 1


def test_verify_reports_missing_attributes(store_path: Path) -> None:
    g = zarr.open_group(str(store_path), mode="r+")
    g.attrs.put({k: v for k, v in g.attrs.items() if k not in ("sequences", "split")})
    problems = verify(open_store(store_path))
    assert "attribute 'split' missing" in problems
    assert "attribute 'sequences' missing" in problems
