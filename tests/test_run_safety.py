"""Long runs never lose work (issue 23): existing runs are not overwritten, Ctrl-C saves and says
how to resume, --resume takes everything from the run folder, a second process is kept out,
epoch files come before last.pt, a resumed run logs each step once, a full disk keeps the
previous checkpoint."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train.engine.trainer as trainer
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import run_cli
from train.checkpoint_file import atomic_save
from train.engine.checkpoint import read_checkpoint
from train.engine.config import TrainConfig, apply_overrides
from train.engine.run_folder import LOCK_NAME, RunFolder, RunLock
from train.engine.runlog import read_log
from train.engine.trainer import train
from train.methods import build_method, preset

TINY = {
    "pretrained": False,
    "height": 64,
    "width": 64,
    "batch_size": 4,
    "workers": 0,
    "log_every": 1,
    "device": "cpu",
    "val_batches": 1,
}
CLI_TINY = ["--height", "64", "--width", "64", "--batch-size", "4", "--no-pretrained"]
CLI_TINY += ["--device", "cpu", "--workers", "0"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """KITTI-like toy store: 2 views, 1 sequence of 6 frames at 64x64."""
    path = tmp_path_factory.mktemp("safety") / "train.zarr"
    write_toy_store(path, ToySpec(n_sequences=1, frames_per_sequence=6, image_size=(64, 64)))
    return str(path)


def tiny(**changes: object) -> TrainConfig:
    return apply_overrides(preset("monodepth2-m"), TINY | changes)


def steps_logged(run: Path) -> list[int]:
    return [r["step"] for r in read_log(run) if r["tag"] == "train/loss"]


class TestExistingRuns:
    def test_a_run_folder_holding_a_run_is_refused(self, store: str, tmp_path: Path) -> None:
        train(tiny(max_steps=1), store, tmp_path, progress=False, echo=lambda _: None)
        last = RunFolder(tmp_path).last
        before, log = last.read_bytes(), (tmp_path / "log.jsonl").read_text()
        with pytest.raises(ValueError, match="already holds a run .*--resume.*--overwrite"):
            train(tiny(max_steps=2), store, tmp_path, progress=False, echo=lambda _: None)
        assert last.read_bytes() == before and (tmp_path / "log.jsonl").read_text() == log

    def test_overwrite_replaces_it(self, store: str, tmp_path: Path) -> None:
        (tmp_path / "notes.txt").write_text("mine")
        train(tiny(max_steps=2), store, tmp_path, progress=False, echo=lambda _: None)
        train(tiny(max_steps=1), store, tmp_path, overwrite=True, progress=False,
              echo=lambda _: None)  # fmt: skip
        assert steps_logged(tmp_path) == [1]
        assert read_checkpoint(RunFolder(tmp_path).last)["step"] == 1
        assert (tmp_path / "notes.txt").read_text() == "mine"  # not a run file: kept

    def test_a_refused_run_leaves_no_folder(self, tmp_path: Path, capsys) -> None:
        out = tmp_path / "never"
        args = ["train", "--preset", "monodepth2-m", "--train", str(tmp_path / "none.zarr")]
        assert run_cli([*args, "--out", str(out)]) == 1
        assert "error:" in capsys.readouterr().err and not out.exists()

    @pytest.mark.parametrize("bad", [["--max-steps", "0"], ["--max-steps", "-5"]])
    def test_non_positive_steps_are_refused_before_any_work(
        self, store: str, tmp_path: Path, bad: list[str], capsys
    ) -> None:
        args = ["train", "--preset", "monodepth2-m", "--train", store, "--out", str(tmp_path / "r")]
        assert run_cli([*args, *bad]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: max_steps must be >= 1") and err.count("\n") == 1
        assert not (tmp_path / "r").exists()


@pytest.mark.slow
class TestStopping:
    def test_sigint_finishes_the_step_saves_and_says_how_to_resume(
        self, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
    ) -> None:
        step = trainer._step

        def step_then_ctrl_c(*args, **kwargs):
            result = step(*args, **kwargs)
            signal.raise_signal(signal.SIGINT)  # Ctrl-C during the first step
            return result

        monkeypatch.setattr(trainer, "_step", step_then_ctrl_c)
        run = tmp_path / "run"
        args = ["train", "--preset", "monodepth2-m", "--train", store, "--out", str(run)]
        assert run_cli([*args, *CLI_TINY, "--epochs", "2"]) == 130
        out = capsys.readouterr().out
        assert f"stopped by SIGINT at step 1; resume with: python cli.py train --out {run}" in out
        payload = read_checkpoint(RunFolder(run).last)
        assert (payload["epoch"], payload["step"], payload["batch_in_epoch"]) == (0, 1, 1)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored

        monkeypatch.setattr(trainer, "_step", step)
        assert run_cli(["train", "--out", str(run), "--resume"]) == 0
        assert read_checkpoint(RunFolder(run).last)["epoch"] == 2
        logged = steps_logged(run)
        assert logged == sorted(set(logged)) and logged[0] == 1

    def test_time_based_checkpoints_inside_an_epoch(self, store: str, tmp_path: Path) -> None:
        saved: list[int] = []
        config = tiny(epochs=1, checkpoint_minutes=1e-9)  # due after every step
        original = trainer.Saver.save_last

        def record(self, state):  # noqa: ANN001
            saved.append(state.step)
            original(self, state)

        trainer.Saver.save_last = record  # type: ignore[method-assign]
        try:
            train(config, store, tmp_path, progress=False, echo=lambda _: None)
        finally:
            trainer.Saver.save_last = original  # type: ignore[method-assign]
        assert saved[:-1] == list(range(1, len(saved)))  # every step, then the epoch end


@pytest.mark.slow
class TestResume:
    def test_resume_takes_stores_preset_and_settings_from_the_folder(
        self, store: str, tmp_path: Path, capsys
    ) -> None:
        run = tmp_path / "run"
        args = ["train", "--preset", "monodepth2-m", "--train", store, "--val", store]
        assert (
            run_cli([*args, "--out", str(run), *CLI_TINY, "--lr", "3e-4", "--max-steps", "1"]) == 0
        )
        assert run_cli(["train", "--out", str(run), "--resume", "--max-steps", "2"]) == 0
        payload = read_checkpoint(RunFolder(run).last)
        assert payload["step"] == 2 and payload["config"]["lr"] == 3e-4
        assert json.loads((run / "run.json").read_text())["stores"] == {
            "train": store,
            "val": store,
        }
        capsys.readouterr()

        assert run_cli(["train", "--out", str(run), "--resume", "--lr", "1e-3"]) == 1
        err = capsys.readouterr().err
        assert "--lr cannot change" in err and err.count("\n") == 1
        assert run_cli(["train", "--out", str(run), "--resume", "--preset", "monodepth2-s"]) == 1
        assert "started with --preset monodepth2-m" in capsys.readouterr().err

    def test_resume_without_a_checkpoint_says_so(self, tmp_path: Path, capsys) -> None:
        assert run_cli(["train", "--out", str(tmp_path), "--resume"]) == 1
        assert "holds no run to resume" in capsys.readouterr().err

    def test_redone_steps_are_logged_once(self, store: str, tmp_path: Path) -> None:
        train(tiny(max_steps=2), store, tmp_path, progress=False, echo=lambda _: None)
        with open(tmp_path / "log.jsonl", "a") as log:  # logged, then killed before a save
            for step in (3, 4):
                log.write(json.dumps({"step": step, "tag": "train/loss", "value": 9.0}) + "\n")
        train(tiny(max_steps=4), store, tmp_path, resume=True, progress=False,
              echo=lambda _: None)  # fmt: skip
        assert steps_logged(tmp_path) == [1, 2, 3, 4]
        assert all(r["value"] != 9.0 for r in read_log(tmp_path))


class TestLock:
    def test_a_second_process_on_the_folder_is_refused(self, store: str, tmp_path: Path) -> None:
        with RunLock(tmp_path):  # this process holds it, as another run would
            with pytest.raises(ValueError, match="in use by another training process"):
                train(tiny(max_steps=1), store, tmp_path, progress=False, echo=lambda _: None)
        assert not (tmp_path / "checkpoints").exists()

    def test_a_stale_lock_of_a_dead_process_is_taken_over(self, store: str, tmp_path: Path) -> None:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        holder = {"host": os.uname().nodename, "pid": int(dead.stdout), "since": 0}
        (tmp_path / LOCK_NAME).write_text(json.dumps(holder))
        train(tiny(max_steps=1), store, tmp_path, progress=False, echo=lambda _: None)
        assert RunFolder(tmp_path).last.is_file() and not (tmp_path / LOCK_NAME).exists()


class TestCheckpointFiles:
    def test_the_epoch_file_is_written_before_last_pt(
        self, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        order: list[str] = []
        real = atomic_save

        def recording(payload, path):  # noqa: ANN001
            order.append(Path(path).name)
            return real(payload, path)

        monkeypatch.setattr("train.engine.checkpoint.atomic_save", recording)
        train(tiny(epochs=1), store, tmp_path, progress=False, echo=lambda _: None)
        assert order[-2:] == ["epoch_000.pt", "last.pt"]

    def test_a_full_disk_keeps_the_previous_checkpoint(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "last.pt"
        atomic_save({"format": "depthkit-checkpoint/2", "x": torch.zeros(3)}, path)
        before = path.read_bytes()

        def full(payload, f):  # noqa: ANN001
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("train.checkpoint_file.torch.save", full)
        with pytest.raises(OSError, match=f"{path}: disk full while writing the checkpoint"):
            atomic_save({"x": torch.zeros(1000)}, path)
        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary left


def test_stages_all_trains_the_autoencoder_with_its_own_schedule() -> None:
    config = apply_overrides(preset("featdepth-m"), {"lr": 2e-4, "height": 96, "width": 128})
    method = build_method(config)
    ae, depth = method.stage_config("autoencoder"), method.stage_config("depth", "ae.pt")
    assert (ae.preset, ae.epochs, ae.params.lr_steps, ae.batch_size) == ("featdepth-ae", 30,
                                                                          (10, 20), 5)  # fmt: skip
    assert (depth.preset, depth.epochs, depth.params.lr_steps) == ("featdepth-m", 40, (20, 30))
    assert ae.lr == depth.lr == 2e-4 and ae.height == 96  # the run's own changes carried over
    assert depth.params.extractor == "ae.pt" and ae.params.stage == "autoencoder"
