"""Multi-stage runs (``train --stages``): a method's stages in order, each into its own run folder,
each stage after the first taking the last checkpoint of the one before it.

``--stages all`` with FeatDepth trains the auto-encoder into ``OUT/autoencoder`` and then the
depth stage into ``OUT/depth`` with ``extractor = OUT/autoencoder/checkpoints/last.pt``; each stage
gets its own preset's schedule (:meth:`~train.methods.Method.stage_config`), with the settings the
run changed from its preset carried over. One stage (``--stages autoencoder``) is the run with that
stage, into ``OUT`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.store import open_store, require_complete
from train.engine.config import TrainConfig
from train.engine.run_folder import RunFolder
from train.engine.trainer import TrainSummary, train
from train.engine.validate import Scorer
from train.methods import build_method

ALL = "all"


@dataclass
class StageRun:
    """One trained stage: its name, run folder and what :func:`train` reported."""

    stage: str
    run_dir: Path
    summary: TrainSummary

    def __str__(self) -> str:
        return f"stage {self.stage} ({self.run_dir}):\n{self.summary}"


def chosen_stages(config: TrainConfig, stages: str) -> tuple[str, ...]:
    """The stages ``stages`` names (``"all"`` or one stage of the method), in training order.

    Raises:
        ValueError: a stage the method does not have.
    """
    names = tuple(build_method(config).stages)
    if stages == ALL:
        return names
    if stages not in names:
        raise ValueError(
            f"--stages {stages!r}: {config.method} has the stages {', '.join(names)} (or {ALL})"
        )
    return (stages,)


def train_stages(
    config: TrainConfig,
    stages: str,
    train_store: str | Path,
    out: str | Path,
    val_store: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    init: str | Path | None = None,
    scorer: Scorer | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> list[StageRun]:
    """Train the ``stages`` of ``config``'s method (see the module docstring).

    Every stage's config and its store check run before the first stage starts, so a store
    the last stage cannot use (e.g. no stereo view) is refused before hours of stage 1. With
    ``resume``, a stage whose folder has a ``last.pt`` continues from it; the others start (a
    stage folder without a checkpoint is started again). ``init`` (weights of another run)
    applies to the first stage.

    Raises:
        ValueError: an unknown stage, a store a stage cannot use, or what :func:`train` raises.
    """
    out = Path(out)
    names = chosen_stages(config, stages)
    method = build_method(config)
    options = {"progress": progress, "echo": echo, "scorer": scorer}
    if len(names) == 1:
        one = method.stage_config(names[0], None)
        summary = train(
            one, train_store, out, val_store, resume=resume, overwrite=overwrite, init=init,
            **options,
        )  # fmt: skip
        return [StageRun(names[0], out, summary)]
    store = require_complete(open_store(train_store))
    placeholder = str(out / names[0] / "checkpoints" / "last.pt")
    for i, name in enumerate(names):  # fail before training anything
        build_method(method.stage_config(name, placeholder if i else None)).check_store(store)
    runs: list[StageRun] = []
    previous: str | None = None
    for name in names:
        staged = method.stage_config(name, previous)
        folder = RunFolder(out / name)
        again = resume and folder.last.is_file()
        echo(f"stage {name}: {folder.path}" + (" (resumed)" if again else ""))
        summary = train(
            staged, train_store, folder.path, val_store, resume=again,
            overwrite=overwrite or resume, init=init if not runs else None, **options,
        )  # fmt: skip
        runs.append(StageRun(name, folder.path, summary))
        if summary.stopped:
            break
        previous = str(folder.last)
    return runs
