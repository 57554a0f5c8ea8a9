"""``prepare-nyu --sample N --seed S``: N synced frames drawn at random across the kept scenes,
each stored with its -/+ G synced neighbours (the feature-metric study's NYU sampling, issue 21
item 5); deterministic by seed, resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nyutools
from pipelines import open_store
from pipelines.prepare.nyu.blocks import NyuRawBlocks
from pipelines.prepare.nyu.plan import sample_centres
from pipelines.prepare.nyu.prepare import NyuPrepareOptions, prepare_nyu
from pipelines.store.inspect import verify
from tests.helpers import run_cli, tree_bytes

OPTS = NyuPrepareOptions(size=(48, 64), chunk=2, workers=1, progress=False, sample=4, seed=1)


def test_sample_centres_are_uniform_over_frames_with_both_neighbours() -> None:
    counts = [10, 3, 7]  # with gap 2: 6, 0 and 3 frames have both neighbours
    a = sample_centres(counts, 5, gap=2, seed=5)
    assert sum(len(x) for x in a) == 5 and len(a[1]) == 0
    for c, x in zip(counts, a, strict=True):
        assert ((x >= 2) & (x < c - 2)).all() and (np.diff(x) > 0).all()
    again = sample_centres(counts, 5, 2, 5)
    assert all(np.array_equal(x, y) for x, y in zip(a, again, strict=True))
    draws = {tuple(np.concatenate(sample_centres(counts, 3, 1, s)).tolist()) for s in range(20)}
    assert len(draws) > 10  # the seed matters
    every = sample_centres(counts, 9, 2, 0)
    assert [x.tolist() for x in every] == [[2, 3, 4, 5, 6, 7], [], [2, 3, 4]]
    with pytest.raises(ValueError, match="--sample 10: only 9 synced frames"):
        sample_centres(counts, 10, gap=2, seed=0)


def test_sampled_store_holds_centres_with_their_neighbours(nyu_world: Path, tmp_path: Path) -> None:
    report = prepare_nyu(nyu_world / "raw", tmp_path / "a", options=OPTS)
    assert "(--sample 4)" in str(report) and "4 samples" in str(report)
    store = open_store(tmp_path / "a" / "raw_train.zarr")
    assert verify(store) == [] and store.n_samples == 4
    seq, frame = store["sequence"][...], store["frame"][...]
    s = store.samples
    assert (seq[s[:, 1]] == seq[s[:, 0]]).all() and (seq[s[:, 2]] == seq[s[:, 0]]).all()
    assert (frame[s[:, 1]] == frame[s[:, 0]] - 1).all()  # G = 1 synced frame, not a kept one
    assert (frame[s[:, 2]] == frame[s[:, 0]] + 1).all()
    centres = set(s[:, 0].tolist())
    neighbours = set(s[:, 1].tolist()) | set(s[:, 2].tolist())
    assert set(range(store.n_frames)) == centres | neighbours  # nothing else stored
    attrs = store.attrs["frames"]
    assert (attrs["sample"], attrs["seed"], attrs["neighbour_gap"]) == (4, 1, 1)
    assert "--sample 4 --seed 1" in store.source["command"]
    # the drawn frames are those of sample_centres over the kept scenes (all three: no
    # --labeled, so no test scene excluded), in name order
    kept = sorted(nyutools.list_scenes(nyu_world / "raw"), key=lambda x: x.name)
    counts = [len(nyutools.sync_frames(x)) for x in kept]
    expected = sample_centres(counts, 4, 1, 1)
    got = {(store.sequences[seq[r]], int(frame[r])) for r in s[:, 0]}
    want = {(x.name, int(i)) for x, c in zip(kept, expected, strict=True) for i in c}
    assert got == want

    gap2 = NyuPrepareOptions(size=(48, 64), chunk=2, workers=1, progress=False, sample=3, seed=0,
                             neighbour_gap=2)  # fmt: skip
    prepare_nyu(nyu_world / "raw", tmp_path / "g2", options=gap2)
    store = open_store(tmp_path / "g2" / "raw_train.zarr")
    seq, frame, s = store["sequence"][...], store["frame"][...], store.samples
    assert len(s) == 3 and (frame[s[:, 2]] - frame[s[:, 0]] == 2).all()
    assert (frame[s[:, 0]] - frame[s[:, 1]] == 2).all()


def test_same_seed_same_store_and_resume_after_kill(
    nyu_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill_on_call
) -> None:
    prepare_nyu(nyu_world / "raw", tmp_path / "a", options=OPTS)
    kill_on_call(NyuRawBlocks, 2)
    with pytest.raises(RuntimeError, match="killed"):
        prepare_nyu(nyu_world / "raw", tmp_path / "b", options=OPTS)
    monkeypatch.undo()
    report = prepare_nyu(nyu_world / "raw", tmp_path / "b", options=OPTS)
    assert report.stores[0].blocks_skipped >= 1
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    other = NyuPrepareOptions(size=(48, 64), chunk=2, workers=1, progress=False, sample=4, seed=2)
    prepare_nyu(nyu_world / "raw", tmp_path / "c", options=other)
    a, c = (open_store(tmp_path / x / "raw_train.zarr") for x in "ac")
    assert a.samples.tolist() != c.samples.tolist() or not np.array_equal(
        a["frame"][...], c["frame"][...]
    )


def test_cli_sample_options(
    nyu_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    base = ["prepare-nyu", str(nyu_world / "raw"), str(out), "--size", "48x64", "--chunk", "2"]
    for extra, needle in (
        (["--sample", "4", "--stride", "2"], "--stride is for the grid setting"),
        (["--sample", "0"], "--sample must be positive"),
        (["--sample", "1000"], "--sample 1000: only"),
    ):
        assert run_cli([*base, *extra]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and needle in err and err.count("\n") == 1, err
    assert not out.exists()
    assert run_cli([*base, "--sample", "4", "--seed", "1"]) == 0
    assert "4 samples" in capsys.readouterr().out
    assert run_cli([*base, "--sample", "4", "--seed", "1"]) == 0  # done: skipped
    assert run_cli([*base, "--sample", "4", "--seed", "2"]) == 1  # other frames: refused
    assert "--overwrite" in capsys.readouterr().err
