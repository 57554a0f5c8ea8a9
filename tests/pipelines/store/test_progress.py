"""Progress and summaries (issue 23, item 10): plural words, no "- frames/s", plain lines when
stderr is not a terminal."""

from __future__ import annotations

import pytest

from pipelines.store.progress import ProgressBars
from pipelines.store.runner import RunSummary, SkippedItem


def test_summary_counts_are_plural_only_when_they_should_be() -> None:
    skipped = (SkippedItem("line 1", "missing"),)
    one = RunSummary("s.zarr", frames=1, samples=1, frames_written=1, blocks_written=1,
                     blocks_skipped=1, seconds=1.0, skipped=skipped)  # fmt: skip
    text = str(one)
    assert "1 frame, 1 sample; wrote 1 frame in 1 block (" in text
    assert "1 block already done" in text and "1 item skipped" in text
    many = RunSummary("s.zarr", frames=8, samples=4, frames_written=8, blocks_written=2,
                      blocks_skipped=0, seconds=1.0)  # fmt: skip
    assert "8 frames, 4 samples; wrote 8 frames in 2 blocks (" in str(many)
    assert "0 blocks already done" in str(many)


def test_plain_lines_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressBars(True, ["train.zarr", "val.zarr"], [8, 4], [0, 4], interval=0) as bars:
        bars.advance(0, 4)
        bars.advance(0, 4)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0].startswith("train.zarr: 4/8 frames (50 %)")
    assert lines[1].startswith("train.zarr: 8/8 frames (100 %)") and "left" not in lines[1]
    assert len(lines) == 2 and "- frames/s" not in err and "━" not in err


def test_plain_lines_are_throttled(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressBars(True, ["a.zarr"], [100], [0], interval=3600) as bars:
        for _ in range(100):
            bars.advance(0, 1)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "a.zarr: 1/100 frames",
        "a.zarr: 100/100 frames",
    ]


def test_disabled_progress_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressBars(False, ["a.zarr"], [4], [0]) as bars:
        bars.advance(0, 4)
    assert capsys.readouterr().err == ""


def test_rate_is_blank_before_the_first_block() -> None:
    from rich.progress import Progress

    from pipelines.store.progress import _RateColumn

    with Progress(disable=True) as progress:
        progress.add_task("train.zarr", total=4)
        assert _RateColumn().render(progress.tasks[0]).plain == ""
